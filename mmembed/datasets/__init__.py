# Copyright (c) mmembed authors. All rights reserved.
from .checked_coco import (AnnotationError, AnnotationWarning,
                           CheckedCocoDataset)
from .deepmask_sampler import DeepMaskPatchSampler
from .transforms import ImageLoadError, LoadImageFromFileChecked

__all__ = [
    'AnnotationError', 'AnnotationWarning', 'CheckedCocoDataset',
    'DeepMaskPatchSampler',
    'ImageLoadError', 'LoadImageFromFileChecked'
]
