# Copyright (c) mmembed authors. All rights reserved.
"""FPN for detection plus a SharpMask refinement path for the masks only.

Pinheiro et al., "Learning to Refine Object Segments", ECCV 2016: the
release trains its refinement on a frozen, converged trunk and its score
branch reads the trunk's code, so the refinement never touches what scores
objects. :class:`SharpMaskFPN` keeps that split inside a detector: the box
and class heads read FPN's levels, computed by mmdet's ``FPN`` itself (same
modules, same state-dict keys, so an FPN checkpoint loads into it with only
the path's keys missing); a top-down path of SharpMask refinement modules
(:class:`~mmembed.models.necks.sharpmask_neck.RefinementModule`) starts from
one fine FPN level and merges the backbone's C2 and then C1 up to a stride-2
map, appended after FPN's levels, which the dense mask branches read
(EmbedMask's pixel branch ``in_level=-1``, BlendMask's bases
``in_levels=(-1,)``, Mask R-CNN's mask RoI extractor through
:class:`~mmembed.models.roi_heads.MaskMapRoIExtractor`).

Shape shorthand: B images; C_1 / C_2 the channels of the stride-2 / stride-4
backbone maps; F = ``out_channels``; k_4, k_2 the path's widths at stride 4
and 2; H x W the padded input.
"""
from typing import Optional, Sequence, Tuple, Union

import torch.nn as nn
from mmdet.models.necks import FPN
from mmdet.registry import MODELS
from torch import Tensor

from ...utils.arg_checks import check_init_args
from .sharpmask_neck import (PADDING_MODES, UPSAMPLE_MODES, RefinementModule,
                             per_step_widths, upsample_to)


@MODELS.register_module()
@check_init_args
class SharpMaskFPN(FPN):
    """mmdet's FPN, unchanged, plus a mask-only SharpMask refinement path.

    ``forward`` returns FPN's ``num_outs`` levels exactly as ``FPN`` does,
    then one more map, last: the mask feature map M of ``mask_out_channels``
    at stride 2 (with ``stem_channels``) or 4. It is built top-down:

    1. start from FPN output ``mask_start_level`` (0: the finest output, P3
       for FCOS-family configs with ``start_level=1``, P2 for Mask R-CNN),
       detached when ``detach_fpn`` (then the mask loss cannot reach FPN's
       convs or the detection levels through the path);
    2. upsample it x2 (:func:`upsample_to`) until it reaches C2's grid;
    3. a :class:`RefinementModule` merges it with C2 (k_4 channels);
    4. with C1: upsample x2 and merge C1 the same way (k_2 channels);
    5. a linear 3x3 conv (FPN's output convs' counterpart) gives M.

    FPN's keys stay FPN's (``lateral_convs``, ``fpn_convs``); the path lives
    under ``mask_path`` (``mask_path.refinements.{0,1}``,
    ``mask_path.out_conv``), which is what the second training stage trains
    (:class:`mmembed.engine.FreezeExceptHook` with
    ``trainable=('neck.mask_path', 'mask_head')``; docs/sharpmask.md).

    Why a neck that wraps FPN (docs/architecture.md): the path needs FPN's
    output and the backbone's finest maps, which only the neck sees, and the
    heads of mmdet and mmembed already pick their level by index, so the
    appended map is all a mask branch needs; detectors stay mmdet's.

    Args:
        in_channels: FPN's input widths (C2..C5), finest first, as ``FPN``.
        out_channels: FPN's width F.
        num_outs: FPN's number of outputs (the mask map comes on top).
        stem_channels: C_1. When given, the backbone's first output is the
            stride-2 C1 (``ResNetWithStem``, ``EfficientNetLite`` with
            ``stem_out=True``), FPN reads the outputs after it and the path
            refines down to stride 2; None stops at C2 (stride 4).
        mask_start_level: FPN output the path starts from (index into
            FPN's outputs).
        mask_channels: k per refinement step, coarsest first (k_4, k_2);
            one int for all.
        mask_hidden_channels: hidden width of each step's skip branch.
        mask_out_channels: channels of M.
        detach_fpn: stop the mask loss at the path's start (see above).
        padding_mode: padding of the path's convs ('replicate': the
            release's symmetric padding at pad 1).
        upsample_mode: 'bilinear' (paper's text) or 'nearest' (release).
        mask_norm_cfg: norm after the path's refinement convs.
        **kwargs: FPN's (``start_level``, ``add_extra_convs``,
            ``relu_before_extra_convs``, ``norm_cfg``, ``init_cfg``, ...).
            FPN's default init (Xavier-uniform on every ``Conv2d``) covers
            the path's convs.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: int,
                 num_outs: int,
                 *,
                 stem_channels: Optional[int] = None,
                 mask_start_level: int = 0,
                 mask_channels: Union[int, Sequence[int]] = (64, 32),
                 mask_hidden_channels: Union[int, Sequence[int]] = (64, 32),
                 mask_out_channels: int = 64,
                 detach_fpn: bool = False,
                 padding_mode: str = 'replicate',
                 upsample_mode: str = 'bilinear',
                 mask_norm_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(in_channels, out_channels, num_outs, **kwargs)
        if not 0 <= mask_start_level < self.backbone_end_level - \
                self.start_level:
            raise ValueError(
                f'SharpMaskFPN: mask_start_level {mask_start_level} must '
                'index one of the FPN outputs made from a backbone stage '
                f'(0..{self.backbone_end_level - self.start_level - 1})')
        if padding_mode not in PADDING_MODES:
            raise ValueError(f'SharpMaskFPN: padding_mode must be one of '
                             f'{PADDING_MODES}, got {padding_mode!r}')
        if upsample_mode not in UPSAMPLE_MODES:
            raise ValueError(f'SharpMaskFPN: upsample_mode must be one of '
                             f'{UPSAMPLE_MODES}, got {upsample_mode!r}')
        # skip maps of the path, coarsest first: C2 (FPN's input 0), C1
        skips = [in_channels[0]] + ([stem_channels] if stem_channels else [])
        num_steps = len(skips)
        what = (f'the path\'s {num_steps} refinement step'
                f'{"s (C2 and C1)" if num_steps == 2 else " (C2)"}')
        mask_channels = per_step_widths(mask_channels, num_steps,
                                        'SharpMaskFPN', 'mask_channels', what)
        mask_hidden_channels = per_step_widths(mask_hidden_channels,
                                               num_steps, 'SharpMaskFPN',
                                               'mask_hidden_channels', what)
        self.stem_channels = stem_channels
        self.mask_start_level = mask_start_level
        self.detach_fpn = detach_fpn
        self.upsample_mode = upsample_mode
        self.mask_out_channels = mask_out_channels
        self.mask_stride = 2 if stem_channels else 4
        widths = [out_channels] + mask_channels
        refinements = nn.ModuleList([
            RefinementModule(
                skip,
                hidden,
                widths[step],
                widths[step + 1],
                widths[step + 1],
                padding_mode=padding_mode,
                norm_cfg=mask_norm_cfg) for step, (skip, hidden) in enumerate(
                    zip(skips, mask_hidden_channels))
        ])
        # a plain Conv2d (not ConvModule): FPN's Xavier init_cfg reaches it
        # and no child init_weights re-draws it (see SharpMaskNeck)
        out_conv = nn.Conv2d(
            mask_channels[-1], mask_out_channels, 3, padding=1)
        self.mask_path = nn.ModuleDict(
            dict(refinements=refinements, out_conv=out_conv))

    def forward(self, inputs: Tuple[Tensor, ...]) -> Tuple[Tensor, ...]:
        """FPN's levels, then the mask map.

        Args:
            inputs: the backbone's maps, finest first: (C1,) C2, .., C5,
                each (B, C_l, H_l, W_l); consecutive maps differ by a stride
                of 2.

        Returns:
            FPN's ``num_outs`` maps (B, F, ., .), then M (B,
            ``mask_out_channels``, H / s, W / s), s = ``mask_stride``.
        """
        num_fpn = len(self.in_channels)
        want = num_fpn + (1 if self.stem_channels else 0)
        if len(inputs) != want:
            raise ValueError(
                f'SharpMaskFPN: got {len(inputs)} backbone maps but expects '
                f'{want} ({"C1 (stem_channels) + " if self.stem_channels else ""}'
                f'{num_fpn} for in_channels); set the backbone\'s outputs to '
                'match (ResNetWithStem or EfficientNetLite(stem_out=True) '
                'give C1 first)')
        fpn_inputs = tuple(inputs[-num_fpn:])
        outs = super().forward(fpn_inputs)
        mask_feat = outs[self.mask_start_level]
        if self.detach_fpn:
            mask_feat = mask_feat.detach()
        # up to C2's grid: one x2 per FPN stage between them
        level = self.start_level + self.mask_start_level
        for finer in range(level - 1, -1, -1):
            mask_feat = upsample_to(mask_feat, fpn_inputs[finer].shape[-2:],
                                    self.upsample_mode)
        skips = [fpn_inputs[0]] + ([inputs[0]] if self.stem_channels else [])
        for step, (refinement, skip) in enumerate(
                zip(self.mask_path['refinements'], skips)):
            if step:
                mask_feat = upsample_to(mask_feat, skip.shape[-2:],
                                        self.upsample_mode)
            mask_feat = refinement(skip, mask_feat)
        return tuple(outs) + (self.mask_path['out_conv'](mask_feat), )
