# Copyright (c) mmembed authors. All rights reserved.
"""EmbedMask with its post-processing as fixed-shape tensor ops (ONNX).

Shape shorthand: B images, (H, W) the network input (already normalised and
padded), L FPN levels, C classes, A_l locations of level l, N candidates
(sum over levels of ``min(nms_pre, A_l x C)``), K = ``min(max_per_img, N)``
detections per image, D embedding length, M margin length, (h, w) the
stride-4 pixel-embedding map.

The result equals ``EmbedMask.predict(..., rescale=False)`` for images whose
``img_shape`` is the whole input (no padding inside the tensor), up to the
order of equal scores and float rounding:

* per level, the ``nms_pre`` best (location, class) pairs above
  ``score_thr`` (``filter_scores_and_topk``) become a fixed ``topk`` in
  which pairs under the threshold get score -1;
* boxes are decoded and clipped to (H, W); pairs with a box of zero width
  or height are dropped (``min_bbox_size`` 0), as mmdet does;
* class-aware NMS (:func:`batched_nms_keep`, ONNX ``NonMaxSuppression``)
  gives a keep mask; the K best kept pairs are the detections;
* masks: the dense Gaussian-kernel log-probability of every detection over
  the (h, w) map, kept only in the box (plus ``mask_box_expand`` cells) and
  -10 elsewhere, upsampled bilinearly to (H, W) and thresholded at
  ``log(mask_thr)``: the formula :meth:`EmbedMaskHead.predict_by_feat`
  evaluates sparsely.

Rows after the last real detection are padding: score 0, label -1, box 0,
empty mask.
"""
import math
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..models.utils.embedding_kernel import embedding_logprob
from .nms import batched_nms_keep

OUTPUT_NAMES = ('boxes', 'scores', 'labels', 'masks')


def _test_cfg_value(cfg: dict, key: str, where: str):
    if cfg is None or key not in cfg:
        raise KeyError(f'{where}.test_cfg lacks {key!r}, which the exported '
                       'post-processing needs')
    return cfg[key]


def _distance_to_boxes(points: Tensor, distances: Tensor,
                       size: Tuple[int, int]) -> Tensor:
    """(..., 2) points and (..., 4) (left, top, right, bottom) distances ->
    (..., 4) boxes clipped to ``size`` = (H, W): mmdet's ``distance2bbox``
    (``DistancePointBBoxCoder.decode``), whose own ONNX branch imports the
    mmdet 2.x module ``mmdet.core`` and fails on mmdet 3.x."""
    x1y1 = points - distances[..., :2]
    x2y2 = points + distances[..., 2:]
    boxes = torch.cat([x1y1, x2y2], dim=-1)
    upper = boxes.new_tensor([size[1], size[0], size[1], size[0]])
    return torch.minimum(boxes.clamp(min=0), upper)


class EmbedMaskEndToEnd(nn.Module):
    """Wraps a built :class:`mmembed.models.EmbedMask` so that ``forward``
    maps a (B, 3, H, W) normalised image batch to fixed-shape detections.

    Args:
        detector: an EmbedMask in eval mode.
        max_per_img: K; defaults to ``test_cfg.max_per_img``.

    Raises:
        ValueError: for test-time settings the fixed-shape version cannot
            reproduce (an NMS other than plain ``nms``, ``min_bbox_size`` other
            than 0 or missing).
    """

    def __init__(self,
                 detector: nn.Module,
                 max_per_img: Optional[int] = None) -> None:
        super().__init__()
        self.detector = detector
        bbox_head, mask_head = detector.bbox_head, detector.mask_head
        cfg = bbox_head.test_cfg
        self.nms_pre = int(_test_cfg_value(cfg, 'nms_pre', 'bbox_head'))
        self.score_thr = float(_test_cfg_value(cfg, 'score_thr', 'bbox_head'))
        nms_cfg = _test_cfg_value(cfg, 'nms', 'bbox_head')
        if nms_cfg.get('type', 'nms') != 'nms':
            raise ValueError(f"test_cfg.nms.type={nms_cfg['type']!r}: only "
                             "plain 'nms' is exported (ONNX NonMaxSuppression)")
        self.iou_thr = float(nms_cfg['iou_threshold'])
        min_size = cfg.get('min_bbox_size', -1)
        if min_size not in (0, -1):
            raise ValueError(f'test_cfg.min_bbox_size={min_size}: only 0 '
                             '(drop empty boxes) or -1 (keep all) are '
                             'exported')
        self.drop_empty_boxes = min_size == 0
        self.max_per_img = int(max_per_img if max_per_img is not None else
                               _test_cfg_value(cfg, 'max_per_img',
                                               'bbox_head'))
        if self.max_per_img < 1:
            raise ValueError(f'max_per_img must be >= 1, got '
                             f'{self.max_per_img}')
        mask_cfg = mask_head.test_cfg
        mask_thr = float(_test_cfg_value(mask_cfg, 'mask_thr', 'mask_head'))
        if not math.exp(mask_head.OUTSIDE_LOGPROB) < mask_thr < 1:
            raise ValueError(f'test_cfg.mask_thr must be in (exp(-10), 1), '
                             f'got {mask_thr}')
        self.mask_logthr = math.log(mask_thr)
        self.mask_box_expand = int(
            _test_cfg_value(mask_cfg, 'mask_box_expand', 'mask_head'))
        if self.mask_box_expand < 0:
            raise ValueError('test_cfg.mask_box_expand must be >= 0, got '
                             f'{self.mask_box_expand}')
        self.thresh_with_ctr = bool(getattr(bbox_head, 'thresh_with_ctr',
                                            False))
        self.sqrt_score = bool(getattr(bbox_head, 'sqrt_score', False))

    def _candidates(self, cls_scores, bbox_preds, centernesses, code_preds,
                    input_size: Tuple[int, int]) -> Dict[str, Tensor]:
        """Per level top-k (location, class) pairs, concatenated: boxes
        (B, N, 4), scores (B, N), labels (B, N), codes (B, N, D + M),
        points (B, N, 2)."""
        head = self.detector.bbox_head
        num_imgs = cls_scores[0].shape[0]
        priors = head.prior_generator.grid_priors(
            [score.shape[-2:] for score in cls_scores],
            dtype=cls_scores[0].dtype,
            device=cls_scores[0].device)
        out: Dict[str, list] = {
            k: []
            for k in ('boxes', 'scores', 'labels', 'codes', 'points')
        }
        num_classes = head.cls_out_channels
        for cls_score, bbox_pred, ctr, code, points in zip(
                cls_scores, bbox_preds, centernesses, code_preds, priors):
            # (B, A, C), (B, A, 4), (B, A), (B, A, D + M)
            scores = cls_score.flatten(2).transpose(1, 2).sigmoid()
            ctr = ctr.flatten(1).sigmoid()
            if self.thresh_with_ctr:
                scores = scores * ctr[..., None]
            bbox_pred = bbox_pred.flatten(2).transpose(1, 2)
            code = code.flatten(2).transpose(1, 2)
            flat = scores.flatten(1)  # (B, A * C), location-major
            flat = torch.where(flat > self.score_thr, flat,
                               flat.new_full((), -1.))
            num = min(self.nms_pre, flat.shape[1]) if self.nms_pre > 0 \
                else flat.shape[1]
            top_scores, top_inds = flat.topk(num, dim=1)
            loc_inds = torch.div(top_inds, num_classes, rounding_mode='floor')
            labels = top_inds - loc_inds * num_classes
            sel_points = points[loc_inds]  # (B, num, 2)
            sel_bbox = torch.gather(bbox_pred, 1,
                                    loc_inds[..., None].expand(-1, -1, 4))
            boxes = _distance_to_boxes(sel_points, sel_bbox, input_size)
            if not self.thresh_with_ctr:
                top_scores = torch.where(
                    top_scores > 0, top_scores * torch.gather(ctr, 1, loc_inds),
                    top_scores)
            out['boxes'].append(boxes)
            out['scores'].append(top_scores)
            out['labels'].append(labels)
            out['codes'].append(
                torch.gather(code, 1,
                             loc_inds[..., None].expand(-1, -1,
                                                        code.shape[-1])))
            out['points'].append(sel_points)
        return {k: torch.cat(v, dim=1) for k, v in out.items()}

    def forward(self, inputs: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Detections for a (B, 3, H, W) batch.

        Returns:
            boxes (B, K, 4) float in input pixels, scores (B, K) float (0 for
            padding rows), labels (B, K) long (-1 for padding), masks
            (B, K, H, W) bool.
        """
        input_size = tuple(inputs.shape[-2:])
        bbox_outs, mask_outs = self.detector._forward(inputs)
        cand = self._candidates(*bbox_outs, input_size=input_size)
        boxes, scores = cand['boxes'], cand['scores']
        valid = scores > 0
        if self.drop_empty_boxes:
            wh = boxes[..., 2:] - boxes[..., :2]
            valid = valid & (wh[..., 0] > 0) & (wh[..., 1] > 0)
        if self.sqrt_score:
            scores = scores.clamp(min=0).sqrt()
        scores = torch.where(valid, scores, scores.new_full((), -1.))
        keep = batched_nms_keep(boxes, scores, cand['labels'], self.iou_thr,
                                score_threshold=0.)
        final = torch.where(keep & valid, scores, scores.new_full((), -1.))
        num = min(self.max_per_img, final.shape[1])
        det_scores, inds = final.topk(num, dim=1)
        is_det = det_scores > 0
        det_boxes = torch.gather(boxes, 1, inds[..., None].expand(-1, -1, 4))
        det_labels = torch.gather(cand['labels'], 1, inds)
        det_codes = torch.gather(
            cand['codes'], 1, inds[..., None].expand(-1, -1,
                                                     cand['codes'].shape[-1]))
        det_points = torch.gather(cand['points'], 1,
                                  inds[..., None].expand(-1, -1, 2))
        masks = self._masks(mask_outs[0], det_boxes, det_codes, det_points,
                            input_size)
        det_boxes = det_boxes * is_det[..., None]
        det_scores = det_scores.clamp(min=0)
        det_labels = torch.where(is_det, det_labels,
                                 torch.full_like(det_labels, -1))
        masks = masks & is_det[..., None, None]
        return det_boxes, det_scores, det_labels, masks

    def _masks(self, pixel_embeds: Tensor, boxes: Tensor, codes: Tensor,
               points: Tensor, input_size: Tuple[int, int]) -> Tensor:
        """(B, D, h, w) pixel embeddings and (B, K, ...) detections ->
        (B, K, H, W) bool masks."""
        mask_head = self.detector.mask_head
        num_imgs, num = boxes.shape[:2]
        map_h, map_w = pixel_embeds.shape[-2:]
        stride = mask_head.mask_stride
        embeds, margins = mask_head.split_codes(
            codes.reshape(num_imgs * num, -1), points.reshape(-1, 2))
        embeds = embeds.view(num_imgs, num, -1)
        margins = margins.view(num_imgs, num, -1)
        logprob = torch.stack([
            embedding_logprob(pixel_embeds[i].flatten(1), embeds[i],
                              margins[i]) for i in range(num_imgs)
        ]).view(num_imgs, num, map_h, map_w)
        # cells of the box grown by mask_box_expand (boxes_to_cells)
        cells = torch.div(boxes, stride, rounding_mode='floor')
        low = cells[..., :2] - self.mask_box_expand
        high = cells[..., 2:] + self.mask_box_expand + 1
        ys = torch.arange(map_h, device=boxes.device, dtype=boxes.dtype)
        xs = torch.arange(map_w, device=boxes.device, dtype=boxes.dtype)
        inside_y = (ys >= low[..., 1:2]) & (ys < high[..., 1:2])  # (B, K, h)
        inside_x = (xs >= low[..., 0:1]) & (xs < high[..., 0:1])  # (B, K, w)
        inside = inside_y[..., :, None] & inside_x[..., None, :]
        full = torch.where(inside, logprob,
                           logprob.new_full((), mask_head.OUTSIDE_LOGPROB))
        # the input is the whole image, so the map is upsampled to exactly
        # map size x stride (upsampled_size) and cropped to the input
        up = F.interpolate(
            full, size=(map_h * stride, map_w * stride), mode='bilinear',
            align_corners=False)
        return up[..., :input_size[0], :input_size[1]] > self.mask_logthr
