# Synthetic textured shapes (disc, square, triangle, ring), 256x256 images,
# written by `python tools/misc/make_synthetic_coco.py --out-dir
# data/synthetic`. Small enough to train and evaluate on a CPU; used by the
# demo (`make demo`). Polygon and RLE masks both occur in its annotations.
# Every path below is built from `data_root`; to move the data elsewhere use
# `mmembed.utils.update_data_root(cfg, new_root)`.
dataset_type = 'CocoDataset'
data_root = 'data/synthetic/'

backend_args = None

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
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]

train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/val.json',
        data_prefix=dict(img='val/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/val.json',
    metric=['bbox', 'segm'],
    format_only=False,
    backend_args=backend_args)
test_evaluator = val_evaluator
