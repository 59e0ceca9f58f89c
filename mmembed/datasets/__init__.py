# Copyright (c) mmembed authors. All rights reserved.
from .checked_coco import (AnnotationError, AnnotationWarning,
                           CheckedCocoDataset)
from .coco_split import (FRUITS_NUTS_HELDOUT_IDS, coco_subset,
                         write_heldout_split)
from .deepmask_sampler import DeepMaskPatchSampler
from .transforms import ImageLoadError, LoadImageFromFileChecked

__all__ = [
    'AnnotationError', 'AnnotationWarning', 'CheckedCocoDataset',
    'DeepMaskPatchSampler', 'FRUITS_NUTS_HELDOUT_IDS', 'coco_subset',
    'write_heldout_split',
    'ImageLoadError', 'LoadImageFromFileChecked'
]
