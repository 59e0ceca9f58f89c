# Synthetic textured shapes (disc, square, triangle, ring), 256x256 images,
# written by `python tools/misc/make_synthetic_coco.py --out-dir
# data/synthetic`. Small enough to train and evaluate on a CPU; used by the
# demo (`make demo`). Polygon and RLE masks both occur in its annotations.
# Everything not set here is coco_instance.py.
# Every path below is built from `data_root`; to move the data elsewhere pass
# `--cfg-options data_root=...` to tools/train.py / tools/test.py.
_base_ = './coco_instance.py'
data_root = 'data/synthetic/'
# Must match SYNTHETIC_CLASSES in tools/misc/make_synthetic_coco.py
# (category ids 1..4 in this order).
metainfo = dict(
    classes=('disc', 'square', 'triangle', 'ring'),
    palette=[(220, 20, 60), (0, 130, 200), (60, 180, 75), (255, 180, 0)])
# The images are generated at 256x256; the Resize is a no-op for them but
# keeps `scale_factor` in the metadata and makes sets generated with another
# --img-size usable unchanged.
img_scale = (256, 256)

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
train_dataloader = dict(
    batch_size=8,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/train.json',
        data_prefix=dict(img='train/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/val.json',
        data_prefix=dict(img='val/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
