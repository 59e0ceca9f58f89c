# Copyright (c) mmembed authors. All rights reserved.
from .checked_coco import (AnnotationError, AnnotationWarning,
                           CheckedCocoDataset)
from .transforms import ImageLoadError, LoadImageFromFileChecked

__all__ = [
    'AnnotationError', 'AnnotationWarning', 'CheckedCocoDataset',
    'ImageLoadError', 'LoadImageFromFileChecked'
]
