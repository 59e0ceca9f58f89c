# Copyright (c) mmembed authors. All rights reserved.
"""Class-agnostic average recall of segment proposals (AR@10/100/1000).

The evaluation DeepMask and SharpMask report (COCO segmentation AR over
IoU 0.5:0.95, categories ignored): pycocotools' ``COCOeval`` with
``iouType='segm'``, ``useCats=0`` and ``maxDets`` set to the proposal
numbers. mmdet's ``CocoMetric(metric='proposal')`` computes the same recall
for boxes only.
"""
from collections import OrderedDict
from typing import Dict, Optional, Sequence

import numpy as np
import pycocotools.mask as mask_utils
from mmdet.datasets.api_wrappers import COCO, COCOeval
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.fileio import get_local_path
from mmengine.logging import MMLogger


@METRICS.register_module()
class SegmentProposalMetric(BaseMetric):
    """AR@n of class-agnostic segment proposals against a COCO json.

    Logs ``coco/AR@10``, ``coco/AR@100``, ``coco/AR@1000`` and the size
    breakdown at the largest number, ``coco/AR_s@1000``, ``AR_m``, ``AR_l``
    (the numbers follow ``proposal_nums``). Masks are RLE-encoded as each
    batch arrives, so only the encodings are kept.

    Args:
        ann_file: the ground-truth COCO json.
        proposal_nums: three numbers of proposals (pycocotools summarises
            three ``maxDets``).
    """
    default_prefix: Optional[str] = 'coco'

    def __init__(self,
                 ann_file: str,
                 proposal_nums: Sequence[int] = (10, 100, 1000),
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 backend_args: Optional[dict] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if len(proposal_nums) != 3 or sorted(proposal_nums) != list(
                proposal_nums):
            raise ValueError('SegmentProposalMetric: proposal_nums must be '
                             f'three increasing numbers, got {proposal_nums}')
        self.proposal_nums = tuple(int(n) for n in proposal_nums)
        with get_local_path(ann_file, backend_args=backend_args) as path:
            self._coco_api = COCO(path)

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            pred = sample['pred_instances']
            if 'masks' not in pred:
                raise KeyError('SegmentProposalMetric: predictions carry no '
                               '\'masks\' (a segment-proposal model is '
                               'needed)')
            masks = pred['masks'].cpu().numpy()
            scores = pred['scores'].cpu().numpy()
            order = np.argsort(-scores, kind='stable')[:self.proposal_nums[-1]]
            rles = mask_utils.encode(
                np.asfortranarray(masks[order].transpose(1, 2, 0),
                                  dtype=np.uint8)) if len(order) else []
            for rle in rles:
                rle['counts'] = rle['counts'].decode()
            self.results.append(
                dict(img_id=sample['img_id'], rles=rles,
                     scores=scores[order].tolist()))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        logger = MMLogger.get_current_instance()
        category = self._coco_api.get_cat_ids()[0]
        dets = [
            dict(image_id=res['img_id'], category_id=category,
                 segmentation=rle, score=score) for res in results
            for rle, score in zip(res['rles'], res['scores'])
        ]
        names = [f'AR@{n}' for n in self.proposal_nums] + [
            f'AR_{size}@{self.proposal_nums[-1]}' for size in 'sml'
        ]
        if not dets:
            logger.warning('SegmentProposalMetric: no proposals at all')
            return OrderedDict((name, 0.) for name in names)
        coco_dt = self._coco_api.loadRes(dets)
        coco_eval = COCOeval(self._coco_api, coco_dt, 'segm')
        coco_eval.params.imgIds = sorted({res['img_id'] for res in results})
        coco_eval.params.useCats = 0
        coco_eval.params.maxDets = list(self.proposal_nums)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
        # stats 6-8: AR at the three maxDets; 9-11: small/medium/large
        return OrderedDict(
            (name, round(float(value), 4))
            for name, value in zip(names, coco_eval.stats[6:12]))
