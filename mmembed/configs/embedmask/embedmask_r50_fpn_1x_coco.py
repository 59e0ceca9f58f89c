# Copyright (c) mmembed authors. All rights reserved.
# EmbedMask R-50-FPN 1x on COCO, paper (v1) behaviour: the pure-Python twin
# of configs/embedmask/embedmask_r50_fpn_1x_coco.py. Use it with
#     with read_base():
#         from mmembed.configs.embedmask.embedmask_r50_fpn_1x_coco import *
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.coco_instance import *  # noqa: F401,F403
    from .._base_.models.embedmask_r50_fpn import *  # noqa: F401,F403
    from .._base_.default_runtime import *  # noqa: F401,F403
    from .._base_.schedules.embedmask_1x import *  # noqa: F401,F403
