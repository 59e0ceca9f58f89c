# coco128: the first 128 COCO train2017 images with their real instance
# annotations (80 classes, including a few crowd RLE masks), from the shared
# read-only data folder (paths are relative to the repository root). Train
# and val/test use the same file. Two images have no annotations: training
# filters them out (126 images), evaluation keeps all 128 (test_mode skips
# filter_cfg). Pipelines, metric and the 80 COCO classes: coco_instance.py.
# Every path below is built from `data_root`; to move the data elsewhere pass
# `--cfg-options data_root=...` to tools/train.py / tools/test.py.
_base_ = './coco_instance.py'
data_root = '../shared/data/coco128/'
coco128_dataset = dict(
    data_root=data_root,
    ann_file='annotations/instances_train2017.json',
    data_prefix=dict(img='train2017/'))
train_dataloader = dict(dataset=coco128_dataset)
val_dataloader = dict(dataset=coco128_dataset)
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root +
                     'annotations/instances_train2017.json')
test_evaluator = val_evaluator
