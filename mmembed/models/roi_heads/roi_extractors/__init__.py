# Copyright (c) mmembed authors. All rights reserved.
from .mask_map_roi_extractor import MaskMapRoIExtractor

__all__ = ['MaskMapRoIExtractor']
