"""Two ways to build on mmembed's parts in your own package.

* :class:`RefinedEmbedMaskHead` *subclasses* ``mmembed.models.EmbedMaskHead``
  and adds a residual refinement of the pixel embeddings. Everything else
  (losses, sampling, inference) is inherited.
* :class:`LovaszDiceLoss` *composes* ``mmembed.models.LovaszHingeLoss`` with a
  soft Dice term, following the loss contract that ``EmbedMaskHead`` calls
  its ``loss_mask`` with.

Both register into ``mmdet.registry.MODELS``, which is where mmembed
registers too, so configs keep ``default_scope = 'mmdet'``.
"""
from typing import Optional, Tuple

import torch.nn as nn
from mmdet.models.losses.utils import weight_reduce_loss
from mmdet.registry import MODELS
from torch import Tensor

from mmembed.models import EmbedMaskHead, LovaszHingeLoss


@MODELS.register_module()
class RefinedEmbedMaskHead(EmbedMaskHead):
    """EmbedMaskHead + ``refine_convs`` residual 3x3 convs on the stride-4
    pixel embeddings.

    The last refinement conv starts at zero, so an untrained refinement
    leaves the embeddings (and a loaded EmbedMask checkpoint's behaviour)
    unchanged.

    Args:
        refine_convs: number of residual convs (>= 1).
        **kwargs: passed unchanged to :class:`mmembed.models.EmbedMaskHead`.
    """

    def __init__(self, *, refine_convs: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        if refine_convs < 1:
            raise ValueError(f'refine_convs must be >= 1, got {refine_convs}')
        dim = self.embed_dim
        layers = []
        for i in range(refine_convs):
            layers.append(nn.Conv2d(dim, dim, 3, padding=1))
            if i < refine_convs - 1:
                layers.append(nn.ReLU(inplace=True))
        self.refine = nn.Sequential(*layers)

    def init_weights(self) -> None:
        super().init_weights()
        nn.init.zeros_(self.refine[-1].weight)
        nn.init.zeros_(self.refine[-1].bias)

    def forward(self, x: Tuple[Tensor, ...],
                positive_infos=None) -> Tuple[Tensor]:
        """(B, D, H/4, W/4) pixel embeddings, refined."""
        (embeds, ) = super().forward(x, positive_infos)
        return (embeds + self.refine(embeds), )


@MODELS.register_module()
class LovaszDiceLoss(nn.Module):
    """``lovasz_weight`` x mmembed's Lovász hinge + ``dice_weight`` x soft
    Dice, on mask probabilities.

    Called by ``EmbedMaskHead`` as ``loss(probs, targets, weight=...,
    avg_factor=..., valid_mask=...)`` with (N, P) probabilities, {0, 1}
    targets, (N,) weights and an optional (N, P) bool mask of the pixels
    that count.

    Args:
        lovasz_weight: weight of the Lovász hinge term.
        dice_weight: weight of the Dice term.
        eps: Dice smoothing.
        loss_weight: overall weight.
    """

    def __init__(self,
                 lovasz_weight: float = 1.0,
                 dice_weight: float = 1.0,
                 eps: float = 1.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.lovasz = LovaszHingeLoss(
            input_type='probs', prob_eps=1e-9, loss_weight=lovasz_weight)
        self.dice_weight = dice_weight
        self.eps = eps
        self.loss_weight = loss_weight

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                valid_mask: Optional[Tensor] = None) -> Tensor:
        reduction = reduction_override or 'mean'
        lovasz = self.lovasz(
            pred,
            target,
            weight=weight,
            avg_factor=avg_factor,
            reduction_override=reduction_override,
            valid_mask=valid_mask)
        probs = pred.flatten(1)
        labels = target.flatten(1).to(probs.dtype)
        if valid_mask is not None:
            keep = valid_mask.flatten(1).to(probs.dtype)
            probs, labels = probs * keep, labels * keep
        inter = (probs * labels).sum(1)
        dice = 1 - (2 * inter + self.eps) / (
            probs.sum(1) + labels.sum(1) + self.eps)
        dice = weight_reduce_loss(dice, weight, reduction, avg_factor)
        return self.loss_weight * (lovasz + self.dice_weight * dice)
