# Copyright (c) mmembed authors. All rights reserved.
"""Choosing, per ground truth, the positive locations whose codes stand for
it during training.

Shape shorthand: P positive locations of one image, G ground truths,
S selected samples.
"""
from typing import NamedTuple

import torch
from mmdet.structures.bbox import bbox_overlaps
from torch import Tensor

SAMPLING_MODES = ('iou_mean', 'best_iou')


class ProposalSamples(NamedTuple):
    """Selected samples.

    Attributes:
        pos_inds: (S,) long, index among the P positives.
        gt_inds: (S,) long, the GT each sample stands for.
    """
    pos_inds: Tensor
    gt_inds: Tensor


def select_proposal_samples(pred_boxes: Tensor, gt_boxes: Tensor,
                            pos_gt_inds: Tensor, mode: str,
                            iou_thr: float = 0.5) -> ProposalSamples:
    """Select the positive samples of every GT by predicted-box quality.

    Args:
        pred_boxes: (P, 4) predicted boxes (x1, y1, x2, y2) of the positive
            locations, detached.
        gt_boxes: (G, 4) GT boxes.
        pos_gt_inds: (P,) long, the GT each positive is assigned to.
        mode: ``'iou_mean'`` (EmbedMask paper / official v1: every positive
            whose predicted box has IoU > ``iou_thr`` with its GT; if none
            does, all positives reaching the GT's maximum IoU; their codes
            are averaged) or ``'best_iou'`` (official v2/v3
            ``get_pos_proposal_indexes``: the first positive with the maximum
            IoU, one sample per GT).
        iou_thr: IoU threshold of ``'iou_mean'``.

    Returns:
        :class:`ProposalSamples` sorted by GT then by positive index; GTs
        without any positive get no sample.
    """
    if mode not in SAMPLING_MODES:
        raise ValueError(f'unknown proposal sampling mode {mode!r}; expected '
                         f'one of {SAMPLING_MODES}')
    num_pos, num_gts = len(pos_gt_inds), len(gt_boxes)
    device = pos_gt_inds.device
    if num_pos == 0 or num_gts == 0:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return ProposalSamples(empty, empty)
    ious = bbox_overlaps(
        pred_boxes, gt_boxes[pos_gt_inds], is_aligned=True).float()
    max_iou = ious.new_full((num_gts, ), -1.0).scatter_reduce(
        0, pos_gt_inds, ious, reduce='amax')
    is_max = ious == max_iou[pos_gt_inds]
    if mode == 'best_iou':
        index = torch.arange(num_pos, device=device)
        first = torch.full((num_gts, ), num_pos, device=device,
                           dtype=torch.long).scatter_reduce(
                               0, pos_gt_inds[is_max], index[is_max],
                               reduce='amin')
        has_pos = first < num_pos
        return ProposalSamples(first[has_pos],
                               torch.arange(num_gts, device=device)[has_pos])
    above = ious > iou_thr
    gt_has_above = torch.zeros(
        num_gts, dtype=torch.bool, device=device).scatter_(
            0, pos_gt_inds[above], True)
    keep = above | (is_max & ~gt_has_above[pos_gt_inds])
    pos_inds = keep.nonzero().reshape(-1)
    gt_inds = pos_gt_inds[pos_inds]
    order = torch.sort(gt_inds, stable=True).indices
    return ProposalSamples(pos_inds[order], gt_inds[order])
