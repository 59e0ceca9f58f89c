# Copyright (c) mmembed authors. All rights reserved.
"""SharpMask's per-window top-down refinement (``SharpMask.lua``).

The proposal-model form of the refinement path (specs/methods.md 4.2): a
512-d DeepMask window code becomes a coarse mask encoding M (km x 10 x 10)
and each step merges it with a skip feature of the same window from an
earlier trunk stage, then upsamples x2, down to 160 x 160 mask logits. The
steps are the :class:`RefinementModule` the dense neck uses; this head only
adds the window-code start, the per-window skip crops and the final conv.

Shapes: N windows; skip stage j = 0..3 (C4, C3, C2, C1: strides 16, 8, 4,
2), t_j = 2^j; a window is fSz * t_j cells of stage j (10, 20, 40, 80).
"""
from typing import Dict, List, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.utils import OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor

from ...utils.arg_checks import check_init_args
from ..necks.sharpmask_neck import PADDING_MODES, RefinementModule, _conv3x3
from .deepmask_head import masked_soft_margin


@MODELS.register_module()
@check_init_args
class SharpMaskRefinementHead(BaseModule):
    """Window code + skip crops -> 160 x 160 mask logits.

    Args:
        skip_channels: C of the skip stages, coarsest first (release:
            ResNet-50's C4, C3, C2, C1 = 1024, 512, 256, 64).
        hidden_channels: h_i of the horizontal nets (release: 64, 64, 64,
            32; the PyTorch port's 64 for the last is not the release).
        mask_channels: k_1 = km, halved by every step (release: 32).
        code_channels: channels of the window code (release: 512).
        window_cells: fSz (release: 10).
        padding_mode: 'replicate' equals the release's symmetric padding
            at pad 1.
        loss_weight: the release multiplies the SoftMargin gradient by the
            batch size (32), i.e. sums the per-patch pixel means; here they
            are averaged and weighted by this.
    """

    def __init__(self,
                 skip_channels: Sequence[int] = (1024, 512, 256, 64),
                 hidden_channels: Sequence[int] = (64, 64, 64, 32),
                 mask_channels: int = 32,
                 code_channels: int = 512,
                 window_cells: int = 10,
                 padding_mode: str = 'replicate',
                 loss_weight: float = 32.,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.loss_weight = loss_weight
        if len(hidden_channels) != len(skip_channels):
            raise ValueError(
                f'SharpMaskRefinementHead: {len(skip_channels)} skip stages '
                f'need {len(skip_channels)} hidden_channels, got '
                f'{list(hidden_channels)}')
        if padding_mode not in PADDING_MODES:
            raise ValueError(f'SharpMaskRefinementHead: padding_mode must '
                             f'be one of {PADDING_MODES}, got '
                             f'{padding_mode!r}')
        if mask_channels % 2**len(skip_channels):
            raise ValueError(
                f'SharpMaskRefinementHead: mask_channels={mask_channels} '
                f'must halve {len(skip_channels)} times')
        self.window_cells = window_cells
        self.mask_channels = mask_channels
        # refs[0]: Linear(512 -> km * fSz^2), viewed as (km, fSz, fSz)
        self.start = nn.Linear(code_channels,
                               mask_channels * window_cells**2)
        self.refinements = nn.ModuleList()
        k = mask_channels
        for skip, hidden in zip(skip_channels, hidden_channels):
            self.refinements.append(
                RefinementModule(skip, hidden, k, k, k // 2, padding_mode))
            k //= 2
        self.final = _conv3x3(k, 1, padding_mode, None, False)

    def init_weights(self) -> None:
        """Torch7's default initialisation, as the release's refinement
        starts from: every conv and Linear uniform in +-1 / sqrt(fan_in)
        (PyTorch's own ``reset_parameters``), not mmcv's Kaiming init of
        ``ConvModule``, whose activations grow through the ten convs of the
        path (mask logits of ~20 at the start instead of ~0.1)."""
        super().init_weights()
        if self.init_cfg is None:
            for module in self.modules():
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    module.reset_parameters()

    @property
    def out_size(self) -> int:
        """Side of the output mask (160 for the release)."""
        return self.window_cells * 2**len(self.refinements)

    def forward(self, codes: Tensor,
                skips: Sequence[Tensor],
                skips_are_horizontal: bool = False) -> Tensor:
        """Refine N windows.

        Args:
            codes: (N, code_channels).
            skips: per step j, (N, C_j, fSz t_j, fSz t_j), the window's crop
                of skip stage j; or, with ``skips_are_horizontal``, the
                crop of that stage's horizontal-net output (N, k_j / 2, ...)
                (inference runs the horizontal nets once per image, as the
                release does, and crops their outputs).

        Returns:
            (N, out_size, out_size) mask logits.
        """
        if len(skips) != len(self.refinements):
            raise ValueError(
                f'SharpMaskRefinementHead: {len(self.refinements)} skip '
                f'crops needed, got {len(skips)}')
        mask = self.start(codes).view(-1, self.mask_channels,
                                      self.window_cells, self.window_cells)
        for refinement, skip in zip(self.refinements, skips):
            if skip.shape[-2:] != mask.shape[-2:]:
                raise ValueError(
                    f'SharpMaskRefinementHead: a skip crop of '
                    f'{tuple(skip.shape[-2:])} meets a mask encoding of '
                    f'{tuple(mask.shape[-2:])}')
            if skips_are_horizontal:
                mask = F.relu(skip + refinement.vertical(mask))
            else:
                mask = refinement(skip, mask)
            # the release's SpatialUpSamplingNearest(2)
            mask = F.interpolate(mask, scale_factor=2, mode='nearest')
        return self.final(mask)[:, 0]

    def horizontal(self, feats: Sequence[Tensor]) -> List[Tensor]:
        """Each step's horizontal net over a whole stage map (inference).

        Args:
            feats: per step j, (B, C_j, H_j, W_j).

        Returns:
            per step j, (B, k_j / 2, H_j, W_j).
        """
        return [
            refinement.horizontal(feat)
            for refinement, feat in zip(self.refinements, feats)
        ]

    def loss(self, logits: Tensor, mask_targets: Tensor,
             has_mask: Tensor) -> Dict[str, Tensor]:
        """SoftMargin over the mask samples.

        Args:
            logits: (B, out_size, out_size).
            mask_targets: (B, out_size, out_size) in {-1, +1}.
            has_mask: (B,) bool.
        """
        if mask_targets.shape[-2:] != logits.shape[-2:]:
            raise ValueError(
                f'SharpMaskRefinementHead: mask targets of '
                f'{tuple(mask_targets.shape[-2:])} for {self.out_size}-px '
                'masks; set the sampler\'s label_size to it')
        return dict(
            loss_refine=self.loss_weight *
            masked_soft_margin(logits, mask_targets, has_mask))


def crop_windows(maps: Tensor, rows: Tensor, cols: Tensor,
                 size: int) -> Tensor:
    """Crop N windows out of one image's map, all at once.

    Window n covers rows ``rows[n] + [0, size)`` and the same for columns;
    cells past the map's bottom / right edge read 0 (the release leaves
    them at zero too).

    Args:
        maps: (C, H, W).
        rows, cols: (N,) long, window indices on the stride-16 grid scaled
            to this map (``index * t``).
        size: side of a window on this map.

    Returns:
        (N, C, size, size).
    """
    channels, height, width = maps.shape
    padded = F.pad(maps, (0, size, 0, size))
    steps = torch.arange(size, device=maps.device)
    row_idx = (rows[:, None] + steps).clamp(max=height + size - 1)
    col_idx = (cols[:, None] + steps).clamp(max=width + size - 1)
    flat = padded.flatten(1)
    index = row_idx[:, :, None] * (width + size) + col_idx[:, None, :]
    return flat[:, index].permute(1, 0, 2, 3)

