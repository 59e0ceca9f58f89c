# Copyright (c) mmembed authors. All rights reserved.
# EmbedMask R-101-FPN, two-scale training, 36 epochs, paper behaviour (the
# paper's headline model): the pure-Python twin of
# configs/embedmask/embedmask_r101_3x.py.
from mmengine.config import read_base

with read_base():
    from .embedmask_r50_fpn_ms_3x_coco import *  # noqa: F401,F403

model.backbone.update(  # noqa: F405
    dict(
        depth=101,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='open-mmlab://detectron2/resnet101_caffe')))
