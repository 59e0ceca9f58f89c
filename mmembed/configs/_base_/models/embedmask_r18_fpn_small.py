# Copyright (c) mmembed authors. All rights reserved.
# A CPU-sized EmbedMask (paper behaviour) trained from scratch: the
# pure-Python twin of configs/_base_/models/embedmask_r18_fpn_small.py.
from mmengine.config import read_base

with read_base():
    from .embedmask_r50_fpn import *  # noqa: F401,F403

norm_cfg = dict(type='GN', num_groups=16, requires_grad=True)
model.update(  # noqa: F405
    dict(
        data_preprocessor=dict(
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True),
        backbone=dict(
            depth=18,
            frozen_stages=-1,
            norm_cfg=dict(type='BN', requires_grad=True),
            norm_eval=False,
            style='pytorch',
            init_cfg=None),
        neck=dict(in_channels=[64, 128, 256, 512], out_channels=64),
        bbox_head=dict(
            in_channels=64,
            feat_channels=64,
            stacked_convs=2,
            norm_cfg=norm_cfg),
        mask_head=dict(
            in_channels=64,
            feat_channels=64,
            stacked_convs=2,
            norm_cfg=norm_cfg)))
