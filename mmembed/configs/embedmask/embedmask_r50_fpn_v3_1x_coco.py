# Copyright (c) mmembed authors. All rights reserved.
# EmbedMask R-50-FPN 1x with the behaviour of the released code (official
# v3): the pure-Python twin of configs/embedmask/embedmask_r50_fpn_v3_1x_coco.py.
# Checkpoints converted with tools/model_converters/embedmask_to_mmembed.py
# load into it.
from mmengine.config import read_base

with read_base():
    from .._base_.models.embedmask_v3_keys import *  # noqa: F401,F403
    from .embedmask_r50_fpn_1x_coco import *  # noqa: F401,F403

model.update(  # noqa: F405
    dict(
        # maskrcnn-benchmark's pixel means (MSRA caffe weights)
        data_preprocessor=dict(mean=[102.9801, 115.9465, 122.7717]),
        bbox_head=embedmask_v3_bbox_head,  # noqa: F405
        mask_head=embedmask_v3_mask_head,  # noqa: F405
        test_cfg=embedmask_v3_test_cfg))  # noqa: F405
