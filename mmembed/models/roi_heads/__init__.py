# Copyright (c) mmembed authors. All rights reserved.
from .bbox_heads import ISTRStageHead
from .istr_roi_head import ISTRRoIHead, sanitize_boxes
from .roi_extractors import MaskMapRoIExtractor, SeparableRoIExtractor

__all__ = [
    'ISTRStageHead', 'ISTRRoIHead', 'MaskMapRoIExtractor',
    'SeparableRoIExtractor', 'sanitize_boxes'
]
