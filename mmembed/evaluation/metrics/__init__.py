# Copyright (c) mmembed authors. All rights reserved.
from .boundary_coco_metric import BoundaryCocoMetric, BoundaryCOCOeval
from .segment_proposal_metric import SegmentProposalMetric

__all__ = ['BoundaryCocoMetric', 'BoundaryCOCOeval', 'SegmentProposalMetric']
