# Copyright (c) mmembed authors. All rights reserved.
"""Pure-Python (``read_base``) configs, mmengine's "new config" style.

Use them from your own config file::

    from mmengine.config import read_base

    with read_base():
        from mmembed.configs.embedmask.embedmask_r50_fpn_1x_coco import *

    model.bbox_head.num_classes = 3   # edit the imported dicts in place

They mirror the classic configs in ``configs/`` (shipped in the package as
``mmembed/.mim/configs``); ``tests/test_packaging/test_pure_python_configs.py``
checks that both resolve to the same settings. They are read by mmengine's
config parser, not imported as modules.
"""
