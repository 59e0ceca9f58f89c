# Copyright (c) mmembed authors. All rights reserved.
"""``RegionDiceLoss``: a per-instance dice loss on mask probabilities with
the call signature of :class:`LovaszHingeLoss` (per-row weights, an
``avg_factor`` and a ``valid_mask`` of supervised pixels).

mmdet's ``DiceLoss`` has no supervised-region mask and reduces per row
before weighting in a way that cannot express EmbedMask's normalisation
(each instance weighted by 1 / number of GTs of its image, summed, divided
by the number of images). This loss is meant as an auxiliary term next to
the Lovász hinge (``EmbedMaskHead(loss_mask_aux=...)``): dice, like
CondInst's mask loss, gives every pixel of an instance a gradient from the
first iteration, while the Lovász hinge only corrects the pixels its sorted
errors rank first.

Per row i with probabilities p, labels t and valid pixels v:
``1 - (2 sum(v p t) + eps) / (sum(v p^2) + sum(v t^2) + eps)`` (the V-Net
form of mmdet's ``DiceLoss(naive_dice=False)``).
"""
from typing import Optional

import torch
from mmdet.registry import MODELS
from torch import Tensor, nn

from .row_checks import check_row_inputs


@MODELS.register_module()
class RegionDiceLoss(nn.Module):
    """Dice loss per row of (N, *) probabilities or logits.

    Args:
        input_type: ``'probs'`` (values in [0, 1]) or ``'logits'``
            (a sigmoid is applied).
        eps: smoothing term of numerator and denominator.
        reduction: ``'mean'`` (weighted sum / ``avg_factor``, or the mean
            over rows without one), ``'sum'`` or ``'none'`` ((N,) losses).
        loss_weight: multiplier of the result.
    """

    def __init__(self,
                 input_type: str = 'probs',
                 eps: float = 1e-3,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if input_type not in ('probs', 'logits'):
            raise ValueError(f"RegionDiceLoss: input_type must be 'probs' or "
                             f"'logits', got {input_type!r}")
        if reduction not in ('none', 'mean', 'sum'):
            raise ValueError(f'RegionDiceLoss: unknown reduction '
                             f'{reduction!r}')
        if not eps > 0:
            raise ValueError(f'RegionDiceLoss: eps must be > 0, got {eps}')
        self.input_type = input_type
        self.eps = eps
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                valid_mask: Optional[Tensor] = None) -> Tensor:
        """Args as :meth:`LovaszHingeLoss.forward`: ``pred`` and ``target``
        (N, *), ``weight`` (N,), ``valid_mask`` (N, *) bool. Returns a
        scalar, or (N,) with reduction ``'none'``."""
        reduction = reduction_override or self.reduction
        check_row_inputs('RegionDiceLoss', pred, target, valid_mask)
        num_rows = pred.shape[0]
        if num_rows == 0:
            return pred.sum() * 0
        probs = pred.reshape(num_rows, -1)
        if self.input_type == 'logits':
            probs = probs.sigmoid()
        labels = target.reshape(num_rows, -1).to(probs.dtype)
        if valid_mask is not None:
            valid = valid_mask.reshape(num_rows, -1).to(probs.dtype)
            probs, labels = probs * valid, labels * valid
        inter = (probs * labels).sum(1)
        denom = (probs * probs).sum(1) + (labels * labels).sum(1)
        loss = 1 - (2 * inter + self.eps) / (denom + self.eps)
        if weight is not None:
            if weight.shape != (num_rows, ):
                raise ValueError(f'RegionDiceLoss: weight must be ({num_rows},),'
                                 f' got {tuple(weight.shape)}')
            loss = loss * weight
        if reduction == 'sum':
            loss = loss.sum()
        elif reduction == 'mean':
            loss = loss.sum() / avg_factor if avg_factor is not None \
                else loss.mean()
        return self.loss_weight * loss
