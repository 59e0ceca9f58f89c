# Copyright (c) mmembed authors. All rights reserved.
from .boundary_coco_metric import BoundaryCocoMetric, BoundaryCOCOeval

__all__ = ['BoundaryCocoMetric', 'BoundaryCOCOeval']
