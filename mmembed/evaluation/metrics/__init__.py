# Copyright (c) mmembed authors. All rights reserved.
from .boundary_coco_metric import BoundaryCocoMetric, BoundaryCOCOeval
from .checked_coco_metric import (CheckedCocoMetric, EvalCoverageError,
                                  EvalCoverageWarning)
from .segment_proposal_metric import SegmentProposalMetric

__all__ = [
    'BoundaryCocoMetric', 'BoundaryCOCOeval', 'CheckedCocoMetric',
    'EvalCoverageError', 'EvalCoverageWarning', 'SegmentProposalMetric'
]
