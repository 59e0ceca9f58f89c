# Copyright (c) mmembed authors. All rights reserved.
"""COCO mask AP and boundary AP side by side.

Boundary AP (Cheng et al., CVPR 2021, arXiv 2103.16562) is COCO mask AP
with the IoU of a detection and a ground truth replaced by
``min(mask IoU, boundary IoU)`` (the reference
``bowenc0221/boundary-iou-api`` ``coco_instance_api/cocoeval.py``
``computeBoundaryIoU``; the min keeps a detection that only matches the
boundary band of a GT from scoring). Crowd GTs keep the mask IoU (with
pycocotools' crowd rule, intersection over the detection's area), also as
the reference. Everything else (matching, area ranges, IoU thresholds) is
pycocotools' COCOeval unchanged, and the per-image detection limits are the
reference's (pycocotools' defaults, 1 / 10 / 100), not the 100 / 300 / 1000
of mmdet's ``CocoMetric``: every AP row counts the top 100 detections of an
image, the recall rows AR@1, AR@10 and AR@100. (At mmdet's limits
pycocotools' summarize takes mAP at 100 detections but AP@50, AP@75, the
AP-by-area and the last recall rows at 1000.)
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

# the official per-image detection limits (pycocotools' defaults, which
# the reference API's evaluation keeps)
OFFICIAL_MAX_DETS = (1, 10, 100)
AP_ITEMS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')
# the row names mmdet 3.3's CocoMetric accepts in metric_items
# (coco_metric_names in compute_metrics; its AR names assume 100/300/1000)
MMDET_ITEMS = AP_ITEMS + ('AR@100', 'AR@300', 'AR@1000', 'AR_s@1000',
                          'AR_m@1000', 'AR_l@1000')


def stats_index(max_dets: Sequence[int]) -> Dict[str, int]:
    """Key -> index of ``COCOeval.stats`` for detection limits
    ``max_dets`` (m0, m1, m2): the AP rows (at m2) with mmdet's names, then
    ``AR@m0``, ``AR@m1``, ``AR@m2``, ``AR_s@m2``, ``AR_m@m2``, ``AR_l@m2``
    (mmdet's naming, with the limits actually used)."""
    low, mid, high = max_dets
    names = list(AP_ITEMS) + [
        f'AR@{low}', f'AR@{mid}', f'AR@{high}', f'AR_s@{high}',
        f'AR_m@{high}', f'AR_l@{high}'
    ]
    return {name: i for i, name in enumerate(names)}


def _boundary_rles(rles: List[dict], dilation_ratio: float) -> List[dict]:
    """Compressed RLEs of masks -> compressed RLEs of their boundary bands
    (all masks of one image decoded and eroded in one call)."""
    if not rles:
        return []
    masks = mask_utils.decode(rles)  # (H, W, N) uint8, Fortran order
    # mask_to_boundary erodes these column-major masks in place of a copy
    # and returns column-major bands, so neither direction copies
    bands = mask_to_boundary(masks.transpose(2, 0, 1), dilation_ratio)
    return mask_utils.encode(
        np.asfortranarray(bands.transpose(1, 2, 0).view(np.uint8)))


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
    ``'segm'``), then boundary AP on the same mask results, with the
    official detection limits: the 12 rows the reference API prints,
    ``boundary_mAP``, ``boundary_mAP_50``, ``_75``, ``_s``, ``_m``, ``_l``
    (AP at ``max_dets[-1]``) and ``boundary_AR@1``, ``boundary_AR@10``,
    ``boundary_AR@100``, ``boundary_AR_s@100``, ``_m@100``, ``_l@100``
    (``coco/boundary_mAP`` in the logs). ``metric_items``, shared with the
    ``segm`` rows, selects among the names both passes know (the AP rows
    and, at the official limits, ``AR@100``). Use it in a config as
    ``val_evaluator = dict(type='BoundaryCocoMetric', ann_file=...,
    metric=['bbox', 'segm'])``.

    Args:
        dilation_ratio: boundary width d as a fraction of the image
            diagonal (0.02 = the paper's default; d >= 1 pixel).
        max_dets: the boundary pass's per-image detection limits (COCOeval
            ``maxDets``), three increasing counts including 100: the AP rows
            count the top ``max_dets[2]`` detections of each image (but
            ``mAP``, which pycocotools' summarize always takes at 100), the
            recall rows are AR@each. Default (1, 10, 100), the reference
            API's (and pycocotools'); ``(100, 300, 1000)`` gives mmdet's
            limits (its ``proposal_nums``), as the ``segm`` rows use: there
            ``mAP`` counts 100 detections and ``mAP_50`` .. ``mAP_l`` 1000.
        **kwargs: :class:`CocoMetric` arguments. ``classwise`` applies to
            bbox / segm only; ``use_mp_eval`` is not supported for the
            boundary pass (it runs single-process).
    """

    def __init__(self,
                 *,
                 dilation_ratio: float = 0.02,
                 max_dets: Sequence[int] = OFFICIAL_MAX_DETS,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if 'segm' not in self.metrics:
            raise ValueError(
                f"BoundaryCocoMetric needs 'segm' in metric (boundary AP "
                f'is computed on the mask results), got {self.metrics}')
        if not 0 < dilation_ratio < 1:
            raise ValueError(
                f'dilation_ratio must be in (0, 1), got {dilation_ratio}')
        max_dets = tuple(max_dets)
        # COCOeval.summarize reads maxDets[0], [1] and [2] by position, and
        # its mAP row at 100 detections whatever maxDets holds (-1 without)
        if len(max_dets) != 3 or not all(
                isinstance(m, int) and m > 0 for m in max_dets) or \
                sorted(set(max_dets)) != list(max_dets) or \
                100 not in max_dets:
            raise ValueError(
                'max_dets must be three increasing positive detection '
                'counts per image, one of them 100 (pycocotools computes the '
                f'mAP row at 100); official: {OFFICIAL_MAX_DETS}, mmdet: '
                f'(100, 300, 1000); got {max_dets}')
        self.max_dets = max_dets
        self.stats_index = stats_index(max_dets)
        if self.metric_items is not None:
            # one list selects the segm rows (mmdet's names, its limits)
            # and the boundary rows: only names both know pass
            both = [k for k in self.stats_index if k in MMDET_ITEMS]
            unknown = set(self.metric_items) - set(both)
            if unknown:
                raise KeyError(
                    f'metric_items {sorted(unknown)} name no row of both the '
                    f'segm pass (mmdet: {list(MMDET_ITEMS)}) and the '
                    f'boundary pass (max_dets {max_dets}: '
                    f'{list(self.stats_index)}); use {both}, or leave '
                    'metric_items unset for all 12 boundary rows')
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
        logger.info('Evaluating boundary AP (dilation_ratio '
                    f'{self.dilation_ratio}, max_dets {self.max_dets})...')
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
        coco_eval.params.maxDets = list(self.max_dets)
        coco_eval.params.iouThrs = self.iou_thrs
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
        items = self.metric_items or list(self.stats_index)
        eval_results = OrderedDict(
            (f'boundary_{item}',
             float(f'{round(coco_eval.stats[self.stats_index[item]], 3)}'))
            for item in items)
        logger.info('boundary_mAP_copypaste: ' +
                    ' '.join(f'{v:.3f}' for v in coco_eval.stats[:6]))
        logger.info('boundary_AR_copypaste: ' +
                    ' '.join(f'{v:.3f}' for v in coco_eval.stats[6:]))
        return eval_results
