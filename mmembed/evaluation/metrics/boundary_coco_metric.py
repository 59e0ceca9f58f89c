# Copyright (c) mmembed authors. All rights reserved.
"""COCO mask AP and boundary AP side by side.

Boundary AP (Cheng et al., CVPR 2021, arXiv 2103.16562) is COCO mask AP
with the IoU of a detection and a ground truth replaced by
``min(mask IoU, boundary IoU)`` (the reference
``bowenc0221/boundary-iou-api`` ``coco_instance_api/cocoeval.py``
``computeBoundaryIoU``; the min keeps a detection that only matches the
boundary band of a GT from scoring). Crowd GTs keep the mask IoU (with
pycocotools' crowd rule, intersection over the detection's area), also as
the reference. Everything else (matching, area ranges, max detections,
IoU thresholds) is pycocotools' COCOeval unchanged.
"""
import os.path as osp
import tempfile
from collections import OrderedDict
from typing import Dict, List, Sequence

import numpy as np
import pycocotools.mask as mask_utils
from mmdet.datasets.api_wrappers import COCOeval
from mmdet.registry import METRICS
from mmengine.fileio import load
from mmengine.logging import MMLogger

from ..functional import mask_to_boundary
from .checked_coco_metric import CheckedCocoMetric

# indices of COCOeval.stats, as mmdet's CocoMetric
STATS_INDEX = dict(mAP=0, mAP_50=1, mAP_75=2, mAP_s=3, mAP_m=4, mAP_l=5)


def _boundary_rles(rles: List[dict], dilation_ratio: float) -> List[dict]:
    """Compressed RLEs of masks -> compressed RLEs of their boundary bands
    (all masks of one image decoded and eroded in one call)."""
    if not rles:
        return []
    masks = mask_utils.decode(rles)  # (H, W, N) uint8
    bands = mask_to_boundary(
        np.ascontiguousarray(masks.transpose(2, 0, 1)), dilation_ratio)
    return mask_utils.encode(
        np.asfortranarray(bands.transpose(1, 2, 0).astype(np.uint8)))


class BoundaryCOCOeval(COCOeval):
    """pycocotools' COCOeval with ``min(mask IoU, boundary IoU)`` as the
    IoU of ``iouType='segm'`` (boundary AP).

    Args:
        cocoGt, cocoDt: as COCOeval.
        dilation_ratio: boundary width d as a fraction of the image
            diagonal (the paper's 2 %).
    """

    def __init__(self, cocoGt=None, cocoDt=None,
                 dilation_ratio: float = 0.02) -> None:
        super().__init__(cocoGt, cocoDt, iouType='segm')
        self.dilation_ratio = dilation_ratio

    def computeIoU(self, imgId: int, catId: int):  # noqa: N802 (pycocotools)
        """Mirrors pycocotools 2.0 ``COCOeval.computeIoU`` (same GT / DT
        selection and order); only the IoU differs."""
        p = self.params
        if p.iouType != 'segm':
            raise ValueError('BoundaryCOCOeval evaluates masks only '
                             f"(iouType 'segm'), got {p.iouType!r}")
        if p.useCats:
            gt = self._gts[imgId, catId]
            dt = self._dts[imgId, catId]
        else:
            gt = [g for c in p.catIds for g in self._gts[imgId, c]]
            dt = [d for c in p.catIds for d in self._dts[imgId, c]]
        if len(gt) == 0 and len(dt) == 0:
            return []
        order = np.argsort([-d['score'] for d in dt], kind='mergesort')
        dt = [dt[i] for i in order][:p.maxDets[-1]]
        g_rles = [g['segmentation'] for g in gt]
        d_rles = [d['segmentation'] for d in dt]
        iscrowd = [int(o['iscrowd']) for o in gt]
        mask_ious = mask_utils.iou(d_rles, g_rles, iscrowd)
        if len(gt) == 0 or len(dt) == 0:
            return mask_ious
        boundary_ious = mask_utils.iou(
            _boundary_rles(d_rles, self.dilation_ratio),
            _boundary_rles(g_rles, self.dilation_ratio), iscrowd)
        ious = np.array(mask_ious, dtype=np.float64)
        plain = np.array(iscrowd) == 0
        ious[:, plain] = np.minimum(ious[:, plain],
                                    np.asarray(boundary_ious)[:, plain])
        return ious


@METRICS.register_module()
class BoundaryCocoMetric(CheckedCocoMetric):
    """mmdet's :class:`CocoMetric` plus boundary AP (and the image
    coverage check of :class:`CheckedCocoMetric`).

    Computes what ``CocoMetric`` computes for ``metric`` (which must include
    ``'segm'``), then boundary AP on the same mask results, reported as
    ``boundary_mAP``, ``boundary_mAP_50``, ... (``coco/boundary_mAP`` in the
    logs; ``metric_items`` selects, as for ``segm``). Use it in a config as
    ``val_evaluator = dict(type='BoundaryCocoMetric', ann_file=...,
    metric=['bbox', 'segm'])``.

    Args:
        dilation_ratio: boundary width d as a fraction of the image
            diagonal (0.02 = the paper's default; d >= 1 pixel).
        **kwargs: :class:`CocoMetric` arguments. ``classwise`` applies to
            bbox / segm only; ``use_mp_eval`` is not supported for the
            boundary pass (it runs single-process).
    """

    def __init__(self, *, dilation_ratio: float = 0.02, **kwargs) -> None:
        super().__init__(**kwargs)
        if 'segm' not in self.metrics:
            raise ValueError(
                f"BoundaryCocoMetric needs 'segm' in metric (boundary AP "
                f'is computed on the mask results), got {self.metrics}')
        if not 0 < dilation_ratio < 1:
            raise ValueError(
                f'dilation_ratio must be in (0, 1), got {dilation_ratio}')
        if self.metric_items is not None:
            unknown = set(self.metric_items) - set(STATS_INDEX)
            if unknown:
                raise KeyError(f'metric_items {sorted(unknown)} have no '
                               f'boundary AP; use {list(STATS_INDEX)}')
        self.dilation_ratio = dilation_ratio

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """CocoMetric's results, then ``boundary_*`` for the masks."""
        eval_results = super().compute_metrics(results)
        if self.format_only:
            return eval_results
        eval_results.update(self._boundary_metrics(results))
        return eval_results

    def _boundary_metrics(self, results: Sequence) -> Dict[str, float]:
        logger: MMLogger = MMLogger.get_current_instance()
        logger.info('Evaluating boundary AP '
                    f'(dilation_ratio {self.dilation_ratio})...')
        _, preds = zip(*results)
        # CocoMetric's temporary files are gone by now; the results are
        # written again (a json dump, cheap next to the evaluation)
        with tempfile.TemporaryDirectory() as tmp_dir:
            result_files = self.results2json(preds,
                                             osp.join(tmp_dir, 'results'))
            if 'segm' not in result_files:
                raise KeyError('BoundaryCocoMetric: the predictions have no '
                               'masks (pred_instances.masks)')
            predictions = load(result_files['segm'])
        if not predictions:
            logger.error('The testing results of the whole dataset is empty.')
            return OrderedDict()
        for pred in predictions:
            # as CocoMetric: without the box, COCO takes the mask area for
            # the small / medium / large ranges
            pred.pop('bbox')
        coco_dt = self._coco_api.loadRes(predictions)
        coco_eval = BoundaryCOCOeval(self._coco_api, coco_dt,
                                     self.dilation_ratio)
        coco_eval.params.catIds = self.cat_ids
        coco_eval.params.imgIds = self.img_ids
        coco_eval.params.maxDets = list(self.proposal_nums)
        coco_eval.params.iouThrs = self.iou_thrs
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
        items = self.metric_items or list(STATS_INDEX)
        eval_results = OrderedDict(
            (f'boundary_{item}',
             float(f'{round(coco_eval.stats[STATS_INDEX[item]], 3)}'))
            for item in items)
        stats = coco_eval.stats[:6]
        logger.info('boundary_mAP_copypaste: ' +
                    ' '.join(f'{v:.3f}' for v in stats))
        return eval_results
