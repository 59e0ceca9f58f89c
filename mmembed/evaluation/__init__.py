# Copyright (c) mmembed authors. All rights reserved.
"""Evaluation: boundary IoU and a COCO metric with boundary AP."""
from .functional import *  # noqa: F401,F403
from .metrics import *  # noqa: F401,F403
