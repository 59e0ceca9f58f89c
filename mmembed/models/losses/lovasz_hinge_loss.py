# Copyright (c) mmembed authors. All rights reserved.
"""Batched Lovász hinge loss (Berman et al., CVPR 2018).

Shape shorthand: N rows (images or instance maps), P pixels per row.

The reference (``bermanmaxim/LovaszSoftmax`` ``pytorch/lovasz_losses.py``)
loops over rows and drops ignored pixels before sorting each one. Here every
row is sorted at once along the last dimension; ignored pixels are sorted to
the end of their row with a ``-inf`` key and excluded from the running
intersection/union, which makes their Lovász gradient exactly zero. The two
formulations agree to float precision (``tests/test_models/test_losses``).
"""
from typing import Optional

import torch
import torch.nn as nn
from mmdet.models.losses.utils import weight_reduce_loss
from mmdet.registry import MODELS
from torch import Tensor

from .row_checks import check_row_inputs


def lovasz_grad_sorted(gt_sorted: Tensor, valid_sorted: Tensor) -> Tensor:
    """Gradient of the Lovász extension of the Jaccard loss, row-wise.

    Args:
        gt_sorted: (N, P) float in {0, 1}, labels sorted by decreasing error;
            ignored positions must hold 0.
        valid_sorted: (N, P) bool, False for ignored pixels (all at the end of
            their row).

    Returns:
        (N, P) float: the first difference of the Jaccard loss along the
        sorted order (Alg. 1 of the paper); 0 at ignored positions.
    """
    gts = gt_sorted.sum(dim=1, keepdim=True)
    intersection = gts - gt_sorted.cumsum(dim=1)
    union = gts + ((1.0 - gt_sorted) * valid_sorted).cumsum(dim=1)
    # union >= 1 from the first valid pixel on; it is 0 only in rows without
    # any valid pixel, where the clamp makes the (masked) value finite.
    jaccard = 1.0 - intersection / union.clamp(min=1.0)
    grad = torch.cat([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], dim=1)
    return grad * valid_sorted


def lovasz_hinge(logits: Tensor,
                 labels: Tensor,
                 valid: Optional[Tensor] = None) -> Tensor:
    """One Lovász hinge per row.

    Args:
        logits: (N, P) float logits (any float dtype; computed in float32, or
            float64 when given float64).
        labels: (N, P) bool / int / float labels in {0, 1}. Values at ignored
            positions are not read.
        valid: (N, P) bool, optional. False marks ignored pixels. A row with no
            valid pixel has loss 0 and zero gradient.

    Returns:
        (N,) float: the Lovász hinge of each row.
    """
    if logits.shape != labels.shape:
        raise ValueError(f'lovasz_hinge: logits {tuple(logits.shape)} and '
                         f'labels {tuple(labels.shape)} differ in shape')
    if logits.dim() != 2:
        raise ValueError('lovasz_hinge expects (N, P) inputs, got '
                         f'{tuple(logits.shape)}; flatten the pixels first')
    dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
    logits = logits.to(dtype)
    if valid is None:
        valid = torch.ones_like(logits, dtype=torch.bool)
    elif valid.shape != logits.shape:
        raise ValueError(f'lovasz_hinge: valid {tuple(valid.shape)} does not '
                         f'match logits {tuple(logits.shape)}')
    valid = valid.bool()
    labels = torch.where(valid, labels.to(dtype), logits.new_zeros(()))
    signs = 2.0 * labels - 1.0
    errors = 1.0 - logits * signs
    # stable sort: tied errors keep their order, as in the reference run with
    # a stable sort; the loss value does not depend on the order of ties.
    sort_key = errors.masked_fill(~valid, float('-inf'))
    errors_sorted, perm = torch.sort(
        sort_key, dim=1, descending=True, stable=True)
    gt_sorted = labels.gather(1, perm)
    valid_sorted = valid.gather(1, perm)
    # the Lovász gradient depends on labels only: a constant for autograd
    grad = lovasz_grad_sorted(gt_sorted, valid_sorted).detach()
    # relu(-inf) = 0, so ignored pixels contribute neither value nor gradient
    return (torch.relu(errors_sorted) * grad).sum(dim=1)


def probs_to_logits(probs: Tensor, eps: float = 1e-9) -> Tensor:
    """Map probabilities to logits after clamping to ``[eps, 1 - eps]``.

    EmbedMask (official v2/v3, ``fcos_core/layers/lovasz_hinge_loss.py``,
    ``act=True``) clamps with 1e-9. In float32 ``1 - 1e-9`` rounds to 1, which
    would give an infinite logit for a probability of exactly 1 and a NaN
    gradient, so the upper bound is never closer to 1 than the dtype's
    machine epsilon.
    """
    dtype = torch.float64 if probs.dtype == torch.float64 else torch.float32
    probs = probs.to(dtype)
    upper = 1.0 - max(eps, torch.finfo(dtype).eps)
    probs = probs.clamp(min=eps, max=upper)
    return torch.log(probs) - torch.log1p(-probs)


@MODELS.register_module()
class LovaszHingeLoss(nn.Module):
    """Lovász hinge loss, the convex surrogate of the Jaccard (IoU) loss.

    Args:
        per_image (bool): True computes one loss per row of the first
            dimension (an image in semantic segmentation, an instance map in
            EmbedMask) and then reduces them with ``weight`` / ``reduction`` /
            ``avg_factor``. False computes a single loss over all pixels of
            the batch. Defaults to True, like the reference implementation.
        input_type (str): ``'logits'`` (default) or ``'probs'``. Probabilities
            are clamped to ``[prob_eps, 1 - prob_eps]`` and mapped to logits
            first (EmbedMask feeds probabilities).
        prob_eps (float): Clamp for ``input_type='probs'``. Defaults to 1e-9
            (official EmbedMask v2/v3; its detectron2 port uses 1e-6).
        ignore_index (int, optional): Label value whose pixels are ignored.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'`` over rows.
        loss_weight (float): Multiplier of the loss.
    """

    def __init__(self,
                 per_image: bool = True,
                 input_type: str = 'logits',
                 prob_eps: float = 1e-9,
                 ignore_index: Optional[int] = None,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if input_type not in ('logits', 'probs'):
            raise ValueError("LovaszHingeLoss: input_type must be 'logits' or "
                             f"'probs', got {input_type!r}")
        if reduction not in ('none', 'mean', 'sum'):
            raise ValueError("LovaszHingeLoss: reduction must be 'none', "
                             f"'mean' or 'sum', got {reduction!r}")
        if not 0 < prob_eps < 0.5:
            raise ValueError(
                f'LovaszHingeLoss: prob_eps must be in (0, 0.5), got {prob_eps}')
        self.per_image = per_image
        self.input_type = input_type
        self.prob_eps = prob_eps
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                valid_mask: Optional[Tensor] = None) -> Tensor:
        """Compute the loss.

        Args:
            pred: (N, *) logits, or probabilities in [0, 1] when
                ``input_type='probs'``.
            target: (N, *) labels in {0, 1} (bool, int or float), or
                ``ignore_index``.
            weight: (N,) per-row weights; only with ``per_image=True``.
            avg_factor: Denominator of the ``'mean'`` reduction.
            reduction_override: Overrides ``self.reduction``.
            valid_mask: (N, *) bool, optional; False marks ignored pixels
                (combined with ``ignore_index``).

        Returns:
            Tensor: a scalar, or (N,) with reduction ``'none'``.
        """
        reduction = reduction_override if reduction_override else \
            self.reduction
        if reduction not in ('none', 'mean', 'sum'):
            raise ValueError(f'LovaszHingeLoss: unknown reduction {reduction!r}')
        check_row_inputs('LovaszHingeLoss', pred, target, valid_mask)
        num_rows = pred.shape[0]
        if num_rows == 0:
            # keep the graph connected (DDP) and avoid mean-of-empty = NaN
            return pred.sum() * 0
        logits = pred.reshape(num_rows, -1)
        labels = target.reshape(num_rows, -1)
        valid = None
        if valid_mask is not None:
            valid = valid_mask.reshape(num_rows, -1).bool()
        if self.ignore_index is not None:
            keep = labels != self.ignore_index
            valid = keep if valid is None else valid & keep
        if self.input_type == 'probs':
            logits = probs_to_logits(logits, self.prob_eps)
        if not self.per_image:
            if weight is not None:
                raise ValueError('LovaszHingeLoss: per-row weights need '
                                 'per_image=True')
            loss = lovasz_hinge(
                logits.reshape(1, -1), labels.reshape(1, -1),
                None if valid is None else valid.reshape(1, -1))[0]
            return self.loss_weight * loss
        loss = lovasz_hinge(logits, labels, valid)
        if weight is not None and weight.shape != (num_rows, ):
            raise ValueError(f'LovaszHingeLoss: weight must be ({num_rows},), '
                             f'got {tuple(weight.shape)}')
        loss = weight_reduce_loss(
            loss, weight=weight, reduction=reduction, avg_factor=avg_factor)
        return self.loss_weight * loss
