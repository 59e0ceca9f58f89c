# Copyright (c) mmembed authors. All rights reserved.
# Synthetic textured shapes written by `python tools/misc/make_synthetic_coco.py
# --out-dir data/synthetic`: the pure-Python twin of
# configs/_base_/datasets/synthetic_instance.py. Set `data_root` and the
# paths derived from it (see below) to use a set elsewhere.
from mmcv.transforms import LoadImageFromFile
from mmdet.datasets.transforms import (LoadAnnotations, PackDetInputs,
                                       RandomFlip, Resize)
from mmengine.config import read_base

with read_base():
    from .coco_instance import *  # noqa: F401,F403

data_root = 'data/synthetic/'
# must match SYNTHETIC_CLASSES in tools/misc/make_synthetic_coco.py
metainfo = dict(
    classes=('disc', 'square', 'triangle', 'ring'),
    palette=[(220, 20, 60), (0, 130, 200), (60, 180, 75), (255, 180, 0)])
img_scale = (256, 256)

train_pipeline = [
    dict(type=LoadImageFromFile, backend_args=backend_args),  # noqa: F405
    dict(type=LoadAnnotations, with_bbox=True, with_mask=True),
    dict(type=Resize, scale=img_scale, keep_ratio=True),
    dict(type=RandomFlip, prob=0.5),
    dict(type=PackDetInputs),
]
test_pipeline = [
    dict(type=LoadImageFromFile, backend_args=backend_args),  # noqa: F405
    dict(type=Resize, scale=img_scale, keep_ratio=True),
    dict(type=LoadAnnotations, with_bbox=True, with_mask=True),
    dict(
        type=PackDetInputs,
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
train_dataloader.update(  # noqa: F405
    dict(
        batch_size=8,
        dataset=dict(
            data_root=data_root,
            metainfo=metainfo,
            ann_file='annotations/train.json',
            data_prefix=dict(img='train/'),
            pipeline=train_pipeline)))
val_dataloader.update(  # noqa: F405
    dict(
        batch_size=8,
        dataset=dict(
            data_root=data_root,
            metainfo=metainfo,
            ann_file='annotations/val.json',
            data_prefix=dict(img='val/'),
            pipeline=test_pipeline)))
test_dataloader = val_dataloader
val_evaluator.update(dict(ann_file=data_root + 'annotations/val.json'))  # noqa: F405,E501
test_evaluator = val_evaluator
