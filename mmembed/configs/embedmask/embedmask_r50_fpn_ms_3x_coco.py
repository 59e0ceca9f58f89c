# Copyright (c) mmembed authors. All rights reserved.
# EmbedMask R-50-FPN, two-scale training (640 or 800), 3x, paper behaviour:
# the pure-Python twin of configs/embedmask/embedmask_r50_fpn_ms-3x_coco.py
# (a module name cannot hold "-", hence "ms_3x")
# (the official schedule and scale choice are explained there).
from mmcv.transforms import LoadImageFromFile, RandomChoiceResize
from mmdet.datasets.transforms import (LoadAnnotations, PackDetInputs,
                                       RandomFlip)
from mmengine.config import read_base
from mmengine.optim import ConstantLR, MultiStepLR

with read_base():
    from .embedmask_r50_fpn_1x_coco import *  # noqa: F401,F403

train_pipeline = [
    dict(type=LoadImageFromFile, backend_args=backend_args),  # noqa: F405
    dict(type=LoadAnnotations, with_bbox=True, with_mask=True),
    dict(
        type=RandomChoiceResize,
        scales=[(1333, 640), (1333, 800)],
        keep_ratio=True),
    dict(type=RandomFlip, prob=0.5),
    dict(type=PackDetInputs)
]
train_dataloader.update(dict(dataset=dict(pipeline=train_pipeline)))  # noqa: F405,E501

max_epochs = 36
train_cfg.update(dict(max_epochs=max_epochs))  # noqa: F405
param_scheduler = [
    dict(type=ConstantLR, factor=1.0 / 3, by_epoch=False, begin=0, end=500),
    dict(
        type=MultiStepLR,
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[28, 33],
        gamma=0.1)
]
