# Copyright (c) mmembed authors. All rights reserved.
from .boundary_iou import (boundary_dilation, boundary_iou, mask_iou,
                           mask_to_boundary)

__all__ = ['boundary_dilation', 'mask_to_boundary', 'boundary_iou',
           'mask_iou']
