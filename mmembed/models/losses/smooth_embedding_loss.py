# Copyright (c) mmembed authors. All rights reserved.
"""EmbedMask smooth loss (Ying et al., arXiv 1912.01954 v1, Sec. 3.4, Eq. 7).

Shape shorthand: S samples (positive locations of all images), T instances,
D embedding length, M margin length (1 or D).

During training EmbedMask uses, per ground truth t, the *mean* embedding and
margin over its sample set S_t; at inference a single location's values are
used. The smooth loss ties the two together by pulling every sample towards
its instance mean (official code ``yinghdb/EmbedMask@3b4d9fb``
``fcos_core/modeling/rpn/embed_mask/loss.py``, ``LOSS_SMOOTH_ALPHA 0.1``).
The means are not detached, as in the official code.
"""
from typing import Optional

import torch
import torch.nn as nn
from mmdet.models.losses.utils import weight_reduce_loss
from mmdet.registry import MODELS
from torch import Tensor


def smooth_embedding_loss(samples: Tensor, inst_inds: Tensor,
                          num_insts: int) -> Tensor:
    """Sum of squared deviations from the instance mean, per instance.

    Args:
        samples: (S, C) float, one row per sample (embedding and margin
            concatenated: ||e - e_mean||^2 + ||m - m_mean||^2 equals the
            squared distance of the concatenation).
        inst_inds: (S,) long in [0, num_insts), the instance of each sample.
        num_insts: T.

    Returns:
        (T,) float: sum over the instance's samples of ||x_i - mean_t||^2;
        0 for instances without samples.
    """
    if samples.dim() != 2 or inst_inds.shape != samples.shape[:1]:
        raise ValueError(
            f'smooth_embedding_loss: samples must be (S, C) and inst_inds '
            f'(S,), got {tuple(samples.shape)} and {tuple(inst_inds.shape)}')
    if inst_inds.numel() and (int(inst_inds.min()) < 0
                              or int(inst_inds.max()) >= num_insts):
        raise ValueError('smooth_embedding_loss: inst_inds must lie in '
                         f'[0, {num_insts}), got range '
                         f'[{int(inst_inds.min())}, {int(inst_inds.max())}]')
    inst_inds = inst_inds.long()
    counts = torch.bincount(inst_inds, minlength=num_insts).clamp(min=1)
    sums = samples.new_zeros(num_insts, samples.shape[1]).index_add(
        0, inst_inds, samples)
    means = sums / counts[:, None].to(samples.dtype)
    sq_dev = (samples - means[inst_inds]).pow(2).sum(dim=1)
    # starting from `samples.sum() * 0` keeps the graph when S == 0
    per_inst = samples.new_zeros(num_insts) + samples.sum() * 0
    return per_inst.index_add(0, inst_inds, sq_dev)


@MODELS.register_module()
class SmoothEmbeddingLoss(nn.Module):
    """Pulls each sample's embedding and margin towards its instance mean.

    Args:
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'`` over instances.
        loss_weight (float): Multiplier (the paper's alpha_s, 0.1 in v1).
    """

    def __init__(self, reduction: str = 'mean', loss_weight: float = 1.0):
        super().__init__()
        if reduction not in ('none', 'mean', 'sum'):
            raise ValueError("SmoothEmbeddingLoss: reduction must be 'none', "
                             f"'mean' or 'sum', got {reduction!r}")
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self,
                embeds: Tensor,
                inst_inds: Tensor,
                margins: Optional[Tensor] = None,
                num_insts: Optional[int] = None,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Compute the loss.

        Args:
            embeds: (S, D) sample embeddings.
            inst_inds: (S,) long, instance index of each sample.
            margins: (S, M) sample margins, optional.
            num_insts: T; defaults to ``inst_inds.max() + 1``.
            weight: (T,) per-instance weights (EmbedMask v1: 1 / number of
                GTs in the instance's image).
            avg_factor: Denominator of the ``'mean'`` reduction (EmbedMask
                v1: the number of images).
            reduction_override: Overrides ``self.reduction``.

        Returns:
            Tensor: scalar, or (T,) with reduction ``'none'``.
        """
        reduction = reduction_override if reduction_override else \
            self.reduction
        samples = embeds if margins is None else torch.cat(
            [embeds, margins.to(embeds.dtype)], dim=1)
        if num_insts is None:
            num_insts = int(inst_inds.max()) + 1 if inst_inds.numel() else 0
        per_inst = smooth_embedding_loss(samples, inst_inds, num_insts)
        if num_insts == 0:
            return samples.sum() * 0
        if weight is not None and weight.shape != (num_insts, ):
            raise ValueError(f'SmoothEmbeddingLoss: weight must be '
                             f'({num_insts},), got {tuple(weight.shape)}')
        loss = weight_reduce_loss(
            per_inst, weight=weight, reduction=reduction,
            avg_factor=avg_factor)
        return self.loss_weight * loss
