# Copyright (c) mmembed authors. All rights reserved.
from .bbox_heads import ISTRStageHead
from .istr_roi_head import ISTRRoIHead, sanitize_boxes

__all__ = ['ISTRStageHead', 'ISTRRoIHead', 'sanitize_boxes']
