# Copyright (c) mmembed authors. All rights reserved.
# EmbedMask (paper behaviour), ResNet-18 from scratch, on the synthetic
# shapes set (tools/misc/make_synthetic_coco.py): the pure-Python twin of
# configs/embedmask/embedmask_r18_fpn_synthetic.py (`make demo`).
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.synthetic_instance import *  # noqa: F401,F403
    from .._base_.models.embedmask_r18_fpn_small import *  # noqa: F401,F403
    from .._base_.default_runtime import *  # noqa: F401,F403
    from .._base_.schedules.cpu_adamw_12e import *  # noqa: F401,F403

model.bbox_head.num_classes = 4  # noqa: F405
default_hooks.update(  # noqa: F405
    dict(
        logger=dict(interval=10),
        checkpoint=dict(interval=1, max_keep_ckpts=1)))
