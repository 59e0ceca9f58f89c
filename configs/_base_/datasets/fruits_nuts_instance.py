# fruits_nuts: 18 photos (800x600) of dates, figs and hazelnuts with polygon
# masks, from the shared read-only data folder (paths are relative to the
# repository root, where tools and tests run). It is a toy set, so train and
# val/test use the same annotation file; images are scaled down to 400x300
# so a CPU can handle them. Everything else is coco_instance.py.
# Every path below is built from `data_root`; to move the data elsewhere pass
# `--cfg-options data_root=...` to tools/train.py / tools/test.py
# (`mmembed.utils.update_data_root`).
_base_ = './coco_instance.py'
data_root = '../shared/data/fruits_nuts/'
metainfo = dict(
    classes=('date', 'fig', 'hazelnut'),
    palette=[(220, 20, 60), (119, 11, 32), (0, 0, 142)])
img_scale = (400, 300)

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
fruits_nuts_dataset = dict(
    data_root=data_root,
    metainfo=metainfo,
    ann_file='trainval.json',
    data_prefix=dict(img='images/'))
train_dataloader = dict(dataset=dict(**fruits_nuts_dataset, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(**fruits_nuts_dataset, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'trainval.json')
test_evaluator = val_evaluator
