# Copyright (c) mmembed authors. All rights reserved.
"""DeepMask's patch code, mask branch and score branch as one head.

Pinheiro et al., "Learning to Segment Object Candidates", NIPS 2015; the
released Torch7 code ``facebookresearch/deepmask`` ``DeepMask.lua``
(specs/methods.md section 4.1).

The release's fully connected layers are written here as the convolutions
its inference turns them into (``utils.linear2convTrunk``): the
``Linear(128 * 10 * 10 -> 512)`` on the cropped trunk is a 10 x 10 conv and
the branch Linears are 1 x 1 convs. On a 192 x 192 training patch every map
is 1 x 1 (one window); on a full image the same weights score every
192-pixel window at stride 16, which is how inference runs.

Shapes: B images (or patches), C4 channels of the trunk top (1024 for
ResNet-50's layer3), (h, w) the trunk-top size (12 x 12 on a patch), (h', w')
= (h - 11, w - 11) the window grid.
"""
from typing import Dict, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.utils import OptMultiConfig, reduce_mean
from mmengine.model import BaseModule
from torch import Tensor

from ...utils.arg_checks import check_init_args


@MODELS.register_module()
@check_init_args
class DeepMaskHead(BaseModule):
    """DeepMask's shared patch code, mask branch and score branch.

    Args:
        in_channels: C4, channels of the trunk top (release: 1024).
        reduce_channels: the 1 x 1 conv after the crop (release: 128).
        code_channels: the patch code (release: 512).
        window_cells: fSz, the trunk-top cells one window covers after the
            one-cell crop (release: 10; iSz / 16).
        mask_size: oSz, side of the mask branch's output (release: 56).
        score_hidden: width of the score branch (release: 1024).
        dropout: dropout before each score Linear (release: 0.5).
        mask_loss_weight: the release multiplies the mask gradient (not the
            score gradient) by the batch size, 32: the mask loss is summed
            over the batch, the score loss averaged. Here both are averaged
            over their samples and the mask loss weighted by this (32).
        score_loss_weight: weight of the score loss (1).
    """

    def __init__(self,
                 in_channels: int = 1024,
                 reduce_channels: int = 128,
                 code_channels: int = 512,
                 window_cells: int = 10,
                 mask_size: int = 56,
                 score_hidden: int = 1024,
                 dropout: float = 0.5,
                 mask_loss_weight: float = 32.,
                 score_loss_weight: float = 1.,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.window_cells = window_cells
        self.mask_size = mask_size
        self.code_channels = code_channels
        self.mask_loss_weight = mask_loss_weight
        self.score_loss_weight = score_loss_weight
        self.reduce = nn.Conv2d(in_channels, reduce_channels, 1)
        # the release's Linear(128 * fSz^2 -> 512) over the cropped window
        self.code = nn.Conv2d(reduce_channels, code_channels, window_cells)
        self.mask_fc = nn.Conv2d(code_channels, mask_size * mask_size, 1)
        self.score_branch = nn.Sequential(
            nn.Dropout(dropout), nn.Conv2d(code_channels, score_hidden, 1),
            nn.Threshold(0., 1e-6), nn.Dropout(dropout),
            nn.Conv2d(score_hidden, 1, 1))

    def forward(self, top: Tensor) -> Tuple[Tensor, Tensor]:
        """Trunk top -> patch codes and scores of every window.

        Args:
            top: (B, C4, h, w), the trunk's last stage (stride 16).

        Returns:
            codes: (B, code_channels, h', w'), one 512-d code per
                192-pixel window, windows at stride 16.
            scores: (B, 1, h', w') objectness logits.
        """
        if min(top.shape[-2:]) < self.window_cells + 2:
            raise ValueError(
                f'DeepMaskHead: the trunk top is {tuple(top.shape[-2:])}, '
                f'smaller than one window ({self.window_cells} cells plus '
                'the one-cell crop on each side); the input must be at '
                f'least {16 * (self.window_cells + 2)} pixels a side')
        # SpatialZeroPadding(-1): the window sees the central cells only
        top = top[..., 1:-1, 1:-1]
        codes = self.code(F.relu(self.reduce(top)))
        return codes, self.score_branch(codes)

    def mask_logits(self, codes: Tensor, out_size: int) -> Tensor:
        """Mask logits of N window codes.

        Args:
            codes: (N, code_channels).
            out_size: gSz, the side the masks are resized to (release:
                112 for training DeepMask).

        Returns:
            (N, out_size, out_size) logits over the window's central
            iSz x iSz region (160 px of the 192-px window).
        """
        masks = self.mask_fc(codes[:, :, None, None]).view(
            -1, 1, self.mask_size, self.mask_size)
        if out_size != self.mask_size:
            masks = F.interpolate(
                masks, size=(out_size, out_size), mode='bilinear',
                align_corners=False)
        return masks[:, 0]

    def loss(self, codes: Tensor, scores: Tensor, mask_targets: Tensor,
             has_mask: Tensor, score_targets: Tensor,
             has_score: Tensor) -> Dict[str, Tensor]:
        """SoftMargin losses of a batch of 192 x 192 patches.

        Each patch is a mask sample or a score sample (the release's
        ``hfreq``); a loss averages over its own samples, 0 when the batch
        has none (kept in the graph so DDP sees every parameter used).
        Under DDP the divisor is the count averaged over processes, so the
        averaged gradient is the single-process one of the whole batch
        even when processes draw different numbers of mask and score
        samples.

        Args:
            codes: (B, code_channels, 1, 1).
            scores: (B, 1, 1, 1).
            mask_targets: (B, g, g) in {-1, +1}.
            has_mask: (B,) bool, mask samples.
            score_targets: (B,) in {-1, +1}.
            has_score: (B,) bool, score samples.
        """
        logits = self.mask_logits(codes.flatten(1), mask_targets.shape[-1])
        return dict(
            loss_mask=self.mask_loss_weight *
            masked_soft_margin(logits, mask_targets, has_mask),
            loss_score=self.score_loss_weight *
            masked_soft_margin(scores.flatten(), score_targets, has_score))


def masked_soft_margin(logits: Tensor, targets: Tensor,
                       keep: Tensor) -> Tensor:
    """``nn.SoftMarginCriterion`` (mean of log(1 + exp(-y x))) over the
    samples ``keep`` selects, written without boolean indexing so its cost
    and graph do not depend on how many are kept.

    The sum is divided by the number of kept samples averaged over the
    processes (mmdet's ``reduce_mean``; the local count without DDP): DDP
    averages gradients over processes, so each process dividing by its
    own count would weight a sample by how many others its process drew.

    Args:
        logits: (B, ...) raw scores.
        targets: (B, ...) in {-1, +1}.
        keep: (B,) bool.
    """
    per_elem = F.softplus(-targets * logits)
    per_sample = per_elem.flatten(1).mean(1) if per_elem.dim() > 1 \
        else per_elem
    weight = keep.to(per_sample.dtype)
    count = reduce_mean(weight.sum().detach())
    # only a batch with no kept sample anywhere has count 0, and then the
    # sum is 0 too: divide by 1 there. Not a floor of 1 (a count of 0.5 is
    # one sample over two processes), nor a tiny floor (1 / tiny times the
    # loss weight overflows the backward to inf, and inf x 0 is NaN)
    count = torch.where(count > 0, count, torch.ones_like(count))
    return (per_sample * weight).sum() / count
