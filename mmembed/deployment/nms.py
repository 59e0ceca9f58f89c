# Copyright (c) mmembed authors. All rights reserved.
"""Greedy NMS that runs eagerly and exports as ONNX ``NonMaxSuppression``.

Shape shorthand: B images, N candidate boxes per image, S kept boxes (all
images).
"""
import torch
from torch import Tensor


class _BatchedNMSOp(torch.autograd.Function):
    """Eager: mmcv's NMS per image. ONNX (TorchScript exporter): one
    ``NonMaxSuppression`` node (opset >= 11), whose output has the same
    layout, ``(S, 3)`` int64 rows ``[image, class (0), box]``."""

    @staticmethod
    def forward(ctx, boxes: Tensor, scores: Tensor, iou_threshold: float,
                score_threshold: float, num_boxes: int) -> Tensor:
        from mmcv.ops import nms
        rows = []
        for img_id in range(boxes.shape[0]):
            valid = torch.nonzero(scores[img_id] > score_threshold)[:, 0]
            if valid.numel() == 0:
                continue
            _, keep = nms(boxes[img_id, valid], scores[img_id, valid],
                          iou_threshold)
            kept = valid[keep]
            rows.append(
                torch.stack([
                    torch.full_like(kept, img_id),
                    torch.zeros_like(kept), kept
                ], dim=1))
        if not rows:
            return boxes.new_zeros((0, 3), dtype=torch.long)
        return torch.cat(rows).long()

    @staticmethod
    def symbolic(g, boxes, scores, iou_threshold: float,
                 score_threshold: float, num_boxes: int):
        # ONNX wants scores as (B, num_classes, N); one class here (class
        # separation is done by box offsets, as mmcv's batched_nms does)
        scores = g.op('Unsqueeze', scores,
                      g.op('Constant', value_t=torch.tensor([1])))
        # max_output_boxes_per_class = N: no cap (top-K happens afterwards)
        return g.op(
            'NonMaxSuppression', boxes, scores,
            g.op('Constant', value_t=torch.tensor([num_boxes])),
            g.op('Constant',
                 value_t=torch.tensor([iou_threshold], dtype=torch.float)),
            g.op('Constant',
                 value_t=torch.tensor([score_threshold], dtype=torch.float)))


def batched_nms_keep(boxes: Tensor, scores: Tensor, labels: Tensor,
                     iou_threshold: float,
                     score_threshold: float = 0.) -> Tensor:
    """Which candidates survive class-aware greedy NMS, as a fixed-shape mask.

    Classes are kept apart as in mmcv's ``batched_nms``: every box is shifted
    by ``label * (max coordinate + 1)``, so boxes of different classes never
    overlap. Candidates with ``score <= score_threshold`` are never kept.

    Args:
        boxes: (B, N, 4) float ``(x1, y1, x2, y2)``.
        scores: (B, N) float.
        labels: (B, N) long.
        iou_threshold: boxes with IoU > this are suppressed.
        score_threshold: see above.

    Returns:
        (B, N) bool.
    """
    if boxes.dim() != 3 or boxes.shape[-1] != 4 or \
            scores.shape != boxes.shape[:2] or labels.shape != scores.shape:
        raise ValueError(f'boxes must be (B, N, 4) with scores and labels '
                         f'(B, N), got {tuple(boxes.shape)}, '
                         f'{tuple(scores.shape)}, {tuple(labels.shape)}')
    offsets = labels.to(boxes.dtype) * (boxes.max() + 1)
    shifted = boxes + offsets[..., None]
    selected = _BatchedNMSOp.apply(shifted, scores, float(iou_threshold),
                                   float(score_threshold), int(boxes.shape[1]))
    keep = torch.zeros_like(scores, dtype=torch.bool)
    # a scatter (ONNX ScatterND): the number of kept boxes varies, the mask
    # shape does not
    keep[selected[:, 0], selected[:, 2]] = True
    return keep
