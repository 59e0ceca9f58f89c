# Copyright (c) mmembed authors. All rights reserved.
from .mask_map_roi_extractor import MaskMapRoIExtractor
from .separable_roi_extractor import (SeparableRoIExtractor,
                                      channels_last_for_pooling)

__all__ = [
    'MaskMapRoIExtractor', 'SeparableRoIExtractor',
    'channels_last_for_pooling'
]
