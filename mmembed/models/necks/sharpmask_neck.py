# Copyright (c) mmembed authors. All rights reserved.
"""SharpMask's top-down refinement path as an FPN-style neck.

Pinheiro et al., "Learning to Refine Object Segments", ECCV 2016
(arXiv 1603.08695); released code ``facebookresearch/deepmask``
``SharpMask.lua`` (specs/methods.md section 4.2).

Shape shorthand: B images; L backbone stages given to the neck, finest
first (as FPN: C2, C3, C4, C5 with strides 4, 8, 16, 32); ``C_l`` channels
and ``H_l x W_l`` size of stage l; S refinement steps, counted top-down
(coarsest first, as the release's ``k_i``); ``k_i`` the mask-encoding
channels entering step i, ``k_{i+1}`` the channels it leaves with.
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet.registry import MODELS
from mmdet.utils import MultiConfig, OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor

from ...utils.arg_checks import check_init_args

# The release (Torch7) pads with SpatialSymmetricPadding (Matlab
# 'symmetric': cba|abcd). With pad 1 that copies the border pixel, which is
# exactly 'replicate'; 'reflect' (the PyTorch port's ReflectionPad2d) is not.
PADDING_MODES = ('replicate', 'zeros', 'reflect')
UPSAMPLE_MODES = ('nearest', 'bilinear')
FINEST_OUTS = (None, 'input', 'upsampled')
EXTRA_CONV_SOURCES = ('on_input', 'on_output')


def _conv3x3(in_channels: int,
             out_channels: int,
             padding_mode: str,
             norm_cfg: OptConfigType,
             act: bool,
             stride: int = 1) -> ConvModule:
    """3x3 conv (+ norm) (+ ReLU) that keeps the size at stride 1."""
    return ConvModule(
        in_channels,
        out_channels,
        3,
        stride=stride,
        padding=1,
        padding_mode=padding_mode,
        norm_cfg=norm_cfg,
        act_cfg=dict(type='ReLU') if act else None)


def upsample_to(mask_feat: Tensor, size: Tuple[int, int],
                mode: str) -> Tensor:
    """x2 upsampling onto the next finer stage's grid.

    Args:
        mask_feat: (B, k, h, w).
        size: (H, W) of the finer stage, H in {2h - 1, 2h, 2h + 1}.
        mode: 'nearest' (release: ``nn.SpatialUpSamplingNearest(2)``) or
            'bilinear' (the paper's text; ``align_corners=False``).

    Returns:
        (B, k, H, W). The map is upsampled by exactly 2 and then cropped or
        replicate-padded by one row / column at the bottom / right. ResNet
        stages have H = ceil(H_finer / 2), so coarse cell j covers fine cells
        2j and 2j + 1; resizing straight to ``size`` (as FPN does) would
        shift the grid by a fraction of a cell at odd sizes.
    """
    height, width = mask_feat.shape[-2:]
    if any(abs(2 * have - want) > 1
           for have, want in zip((height, width), size)):
        raise ValueError(
            f'SharpMaskNeck: a {height}x{width} map cannot be upsampled x2 '
            f'onto the next stage of {size[0]}x{size[1]}; consecutive '
            'backbone stages must differ by a stride of 2')
    if mode == 'nearest':
        up = F.interpolate(mask_feat, scale_factor=2, mode='nearest')
    else:
        up = F.interpolate(
            mask_feat, scale_factor=2, mode='bilinear', align_corners=False)
    up = up[..., :size[0], :size[1]]
    pad_h, pad_w = size[0] - up.shape[-2], size[1] - up.shape[-1]
    if pad_h or pad_w:
        up = F.pad(up, (0, pad_w, 0, pad_h), mode='replicate')
    return up


class RefinementModule(BaseModule):
    """One SharpMask refinement step, before its x2 upsampling.

    Release ``SharpMask.lua`` ``refs[i]``: a horizontal branch on the skip
    feature F and a vertical branch on the mask encoding M, summed::

        horizontal: F --conv3x3 C->h, ReLU--> --conv3x3 h->k, ReLU-->
                      --conv3x3 k->k_out-->
        vertical:   M --conv3x3 k_in->k, ReLU--> --conv3x3 k->k_out-->
        out = ReLU(horizontal + vertical)

    In the release k_in = k = k_i and k_out = k_i / 2; in detector mode all
    three are equal. The sum of two branches equals a conv over the
    concatenation [F', M] (the paper's figure) plus one extra conv per
    branch, which is what the release trains.

    Args:
        skip_channels: C, channels of the skip feature.
        hidden_channels: h (release: 64, 64, 64, 32).
        in_channels: k_in, channels of the incoming mask encoding.
        mid_channels: k.
        out_channels: k_out.
        padding_mode: 'replicate' (release), 'zeros' or 'reflect'.
        norm_cfg: norm after every conv (release: none).
    """

    def __init__(self,
                 skip_channels: int,
                 hidden_channels: int,
                 in_channels: int,
                 mid_channels: int,
                 out_channels: int,
                 padding_mode: str = 'replicate',
                 norm_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.horizontal = nn.Sequential(
            _conv3x3(skip_channels, hidden_channels, padding_mode, norm_cfg,
                     True),
            _conv3x3(hidden_channels, mid_channels, padding_mode, norm_cfg,
                     True),
            _conv3x3(mid_channels, out_channels, padding_mode, norm_cfg,
                     False))
        self.vertical = nn.Sequential(
            _conv3x3(in_channels, mid_channels, padding_mode, norm_cfg, True),
            _conv3x3(mid_channels, out_channels, padding_mode, norm_cfg,
                     False))

    def forward(self, skip: Tensor, mask_feat: Tensor) -> Tensor:
        """(B, C, H, W) skip, (B, k_in, H, W) encoding -> (B, k_out, H, W)."""
        if skip.shape[-2:] != mask_feat.shape[-2:]:
            raise ValueError(
                f'RefinementModule: skip feature {tuple(skip.shape)} and '
                f'mask encoding {tuple(mask_feat.shape)} differ in size')
        return F.relu(self.horizontal(skip) + self.vertical(mask_feat))


def per_step_widths(value: Union[int, Sequence[int]], length: int,
                    owner: str, name: str, what: str) -> List[int]:
    """One width per refinement step: an int for all of them, or exactly
    ``length`` values (coarsest first); ``owner``, ``name`` and ``what``
    (the steps, in words) make the error say what was expected."""
    if isinstance(value, int):
        return [value] * length
    value = list(value)
    if len(value) != length:
        raise ValueError(
            f'{owner}: {name} has {len(value)} entries but {what} needs '
            f'{length}; give one int (the same width everywhere) or '
            f'{length} values, coarsest first')
    return value


@MODELS.register_module()
@check_init_args
class SharpMaskNeck(BaseModule):
    """SharpMask refinement path as a drop-in replacement for FPN.

    Top-down over the backbone stages ``in_channels`` (finest first, as
    FPN), starting at the coarsest stage: a 3x3 conv turns it into the
    coarse mask encoding M (k_1 channels; the release's ``refs[0]`` is a
    Linear from DeepMask's 512-d patch code, which has no dense
    counterpart), then every step i merges M with the skip feature of its
    stage through a :class:`RefinementModule` into R_i (k_{i+1} channels at
    that stage's stride) and upsamples R_i x2 (:func:`upsample_to`) into the
    next M. The first step's skip is the coarsest stage itself, as in the
    release, where ``refs[0]`` and the first horizontal net both read the
    trunk top.

    Outputs, like FPN: one map of ``out_channels`` per stage from
    ``start_level`` on (a 3x3 conv on R_i, the counterpart of FPN's
    ``fpn_convs``), then ``num_outs`` minus that many extra levels (max-pool
    or stride-2 convs, as FPN's ``add_extra_convs``), and, with
    ``finest_out``, one more map appended *last*: a 3x3 conv on the finest
    R (``'input'``: the finest stage's stride, 4 for C2) or on the finest R
    upsampled x2 (``'upsampled'``: stride 2, the release's last x2). Heads
    that zip the levels with their strides (FCOS, RetinaNet) ignore the
    appended map; mask branches read it with ``in_level=-1`` (EmbedMaskHead)
    or ``in_levels=(-1,)`` (BlenderHead).

    Modes (all keys, no subclass):

    * faithful (defaults): ``mask_channels=(32, 16, 8, 4, 2)``,
      ``hidden_channels=(64, 64, 64, 32)``, replicate padding (= the
      release's symmetric padding at pad 1), nearest upsampling, no norm.
      Too narrow to feed detection heads: with ``out_channels`` above 18
      (9 x the 2-channel finest map) it needs ``allow_narrow_levels=True``.
    * detector: ``mask_channels=128`` (or 256; the same width everywhere),
      ``upsample_mode='bilinear'``, optionally ``norm_cfg=GN``.

    Every output is a 3x3 conv of ``out_channels`` on a refined map of k
    channels, so its channels span at most 9 k dimensions. Where 9 k <
    ``out_channels`` the level's channels are linearly dependent by
    construction (the release's widths under a 256-channel detector: P3-P5
    from 4, 8 and 16 channels, at most 36 / 72 / 144 of 256 dimensions), and
    the neck refuses to build, naming the widths and the levels, unless
    ``allow_narrow_levels=True``.

    The paper's second training stage (train only the refinement) is
    :class:`mmembed.engine.FreezeExceptHook` with
    ``trainable=('neck.refinements',)``.

    Args:
        in_channels: C_l of the L stages, finest first.
        out_channels: channels of every output.
        num_outs: number of FPN-like outputs (stages from ``start_level`` on
            plus extra levels); the ``finest_out`` map comes on top.
        start_level: first stage with an FPN-like output (1: P3 from C3,
            as FCOS-family configs; 0: P2 from C2, as Mask R-CNN).
        mask_channels: k_1 .. k_{S+1}, coarsest first, or one int. S is the
            number of refinement steps: L - start_level, or L when
            ``finest_out`` is set (the path then runs down to stage 0).
        hidden_channels: h_1 .. h_S, coarsest first, or one int.
        padding_mode: padding of the refinement convs and the start conv:
            'replicate' (release), 'zeros' or 'reflect' (the PyTorch port).
        upsample_mode: 'nearest' (release) or 'bilinear' (paper's text).
        finest_out: None, 'input' or 'upsampled', see above.
        add_extra_convs: False (max-pool, FPN's default), True /
            'on_input' (from the coarsest stage) or 'on_output' (from the
            last output), as FPN.
        relu_before_extra_convs: ReLU before every extra conv but the first.
        norm_cfg: norm after the refinement convs.
        out_norm_cfg: norm after the output convs (FPN: none).
        allow_narrow_levels: build even when an output (an FPN-like level or
            the ``finest_out`` map) is made from fewer than
            ``ceil(out_channels / 9)`` channels (see above), e.g. to study
            the release's widths under a detector. False: ValueError.
        init_cfg: Xavier-uniform on every conv, as FPN (``start_conv`` and
            ``finest_conv`` included: :meth:`init_weights`).
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: int,
                 num_outs: int,
                 start_level: int = 0,
                 mask_channels: Union[int, Sequence[int]] = (32, 16, 8, 4, 2),
                 hidden_channels: Union[int, Sequence[int]] = (64, 64, 64, 32),
                 padding_mode: str = 'replicate',
                 upsample_mode: str = 'nearest',
                 finest_out: Optional[str] = None,
                 add_extra_convs: Union[bool, str] = False,
                 relu_before_extra_convs: bool = False,
                 norm_cfg: OptConfigType = None,
                 out_norm_cfg: OptConfigType = None,
                 allow_narrow_levels: bool = False,
                 init_cfg: MultiConfig = dict(
                     type='Xavier', layer='Conv2d',
                     distribution='uniform')) -> None:
        super().__init__(init_cfg=init_cfg)
        in_channels = list(in_channels)
        num_levels = len(in_channels)
        if num_levels < 1:
            raise ValueError('SharpMaskNeck: in_channels must name at least '
                             'one backbone stage')
        if not 0 <= start_level < num_levels:
            raise ValueError(
                f'SharpMaskNeck: start_level {start_level} must index one of '
                f'the {num_levels} stages in in_channels')
        num_stage_outs = num_levels - start_level
        if num_outs < num_stage_outs:
            raise ValueError(
                f'SharpMaskNeck: num_outs {num_outs} is smaller than the '
                f'{num_stage_outs} stages from start_level {start_level} on')
        if padding_mode not in PADDING_MODES:
            raise ValueError(f'SharpMaskNeck: padding_mode must be one of '
                             f'{PADDING_MODES}, got {padding_mode!r}')
        if upsample_mode not in UPSAMPLE_MODES:
            raise ValueError(f'SharpMaskNeck: upsample_mode must be one of '
                             f'{UPSAMPLE_MODES}, got {upsample_mode!r}')
        if finest_out not in FINEST_OUTS:
            raise ValueError(f'SharpMaskNeck: finest_out must be one of '
                             f'{FINEST_OUTS}, got {finest_out!r}')
        if add_extra_convs is True:
            add_extra_convs = 'on_input'  # FPN's meaning of True
        if add_extra_convs and add_extra_convs not in EXTRA_CONV_SOURCES:
            raise ValueError(
                f'SharpMaskNeck: add_extra_convs must be False, True or one '
                f'of {EXTRA_CONV_SOURCES}, got {add_extra_convs!r} (there is '
                "no lateral map, so FPN's 'on_lateral' has no counterpart)")

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_outs = num_outs
        self.start_level = start_level
        self.upsample_mode = upsample_mode
        self.finest_out = finest_out
        self.add_extra_convs = add_extra_convs
        self.relu_before_extra_convs = relu_before_extra_convs
        # the refinement path runs from the coarsest stage down to
        # first_refined; stages below it would get no gradient (DDP errors)
        self.first_refined = 0 if finest_out else start_level
        num_steps = num_levels - self.first_refined
        self.num_steps = num_steps
        what = (f'{num_steps} refinement steps (stages {self.first_refined}'
                f'..{num_levels - 1})')
        self.mask_channels = per_step_widths(mask_channels, num_steps + 1,
                                             'SharpMaskNeck', 'mask_channels',
                                             what)
        self.hidden_channels = per_step_widths(hidden_channels, num_steps,
                                               'SharpMaskNeck',
                                               'hidden_channels', what)
        if not allow_narrow_levels:
            self._check_output_widths()

        top_channels = in_channels[-1]
        self.start_conv = _conv3x3(top_channels, self.mask_channels[0],
                                   padding_mode, norm_cfg, False)
        # refinements[i] is step i + 1, coarsest first
        skip_levels = list(range(num_levels - 1, self.first_refined - 1, -1))
        self.refinements = nn.ModuleList([
            RefinementModule(
                in_channels[level],
                self.hidden_channels[step],
                self.mask_channels[step],
                self.mask_channels[step],
                self.mask_channels[step + 1],
                padding_mode=padding_mode,
                norm_cfg=norm_cfg) for step, level in enumerate(skip_levels)
        ])

        def out_conv(channels: int, stride: int = 1) -> ConvModule:
            # FPN's fpn_convs: zero-padded 3x3, no activation
            return ConvModule(
                channels,
                out_channels,
                3,
                stride=stride,
                padding=1,
                norm_cfg=out_norm_cfg,
                act_cfg=None)

        # out_convs[j] reads stage start_level + j
        self.out_convs = nn.ModuleList([
            out_conv(self.mask_channels[num_levels - level])
            for level in range(start_level, num_levels)
        ])
        self.extra_convs = nn.ModuleList()
        if add_extra_convs:
            for i in range(num_outs - num_stage_outs):
                if i == 0 and add_extra_convs == 'on_input':
                    channels = top_channels
                else:
                    channels = out_channels
                self.extra_convs.append(out_conv(channels, stride=2))
        self.finest_conv = out_conv(self.mask_channels[-1]) \
            if finest_out else None

    def _check_output_widths(self) -> None:
        """Refuse outputs whose ``out_channels`` are linearly dependent by
        construction.

        An output conv (3x3, k -> ``out_channels``) sees 9 k values per
        pixel, so the rank of its weight, and the dimension its output
        vectors span, is at most 9 k. With 9 k < ``out_channels`` the heads
        above get fewer independent channels than they were built for,
        whatever the training; nothing at run time would say so.
        """
        num_levels = len(self.in_channels)
        # (what, k): out_convs[j] reads R of stage start_level + j, which
        # has mask_channels[num_levels - stage] channels
        sources = [(f'stage {level} (output {j})',
                    self.mask_channels[num_levels - level])
                   for j, level in enumerate(
                       range(self.start_level, num_levels))]
        if self.finest_out:
            sources.append((f"the finest_out='{self.finest_out}' map",
                            self.mask_channels[-1]))
        starved = [(what, k) for what, k in sources
                   if 9 * k < self.out_channels]
        if not starved:
            return
        need = math.ceil(self.out_channels / 9)
        levels = '; '.join(
            f'{what} from {k} channels (at most {9 * k} of '
            f'{self.out_channels} dimensions)' for what, k in starved)
        raise ValueError(
            f'SharpMaskNeck: mask_channels {tuple(self.mask_channels)} '
            f'starve the outputs of out_channels={self.out_channels}: '
            f'{levels}. A 3x3 output conv on k channels spans at most 9 k '
            'dimensions, so these levels would have linearly dependent '
            'channels. Give every output a refined map of at least '
            f'ceil(out_channels / 9) = {need} channels (detector mode: '
            'mask_channels=128, hidden_channels=128), or set '
            'allow_narrow_levels=True to build the widths anyway')

    def init_weights(self) -> None:
        """Apply ``init_cfg`` (Xavier-uniform) to every conv of the neck.

        mmengine's ``BaseModule.init_weights`` applies ``init_cfg`` to the
        whole neck and then calls ``init_weights()`` of each direct child
        that has one. ``ConvModule``'s re-draws its conv Kaiming (fan_out),
        so ``start_conv`` and ``finest_conv``, the two ConvModules held
        directly (FPN keeps all of its own in ModuleLists, which have no
        ``init_weights``), used to lose the Xavier init: ``start_conv``
        (C_top -> k_1) came out (C_top + k_1) / k_1 times Xavier's variance,
        5x for R-18 at 128 channels, 65x for R-50 at the release's 32.
        Marking them initialised makes mmengine skip them; a norm inside
        keeps PyTorch's weight 1 / bias 0, which is what
        ``ConvModule.init_weights`` would set.
        """
        for conv in (self.start_conv, self.finest_conv):
            if conv is not None:
                conv.is_init = True
        super().init_weights()

    def forward(self, inputs: Tuple[Tensor, ...]) -> Tuple[Tensor, ...]:
        """Refine top-down and return FPN-like levels.

        Args:
            inputs: L maps (B, C_l, H_l, W_l), finest first; consecutive
                stages differ by a stride of 2.

        Returns:
            ``num_outs`` maps (B, out_channels, ., .) at the strides of
            stages ``start_level``.. and then x2 per extra level; with
            ``finest_out`` one more (B, out_channels, H_0, W_0) map
            ('input') or (B, out_channels, 2 H_0, 2 W_0) ('upsampled').
        """
        if len(inputs) != len(self.in_channels):
            raise ValueError(
                f'SharpMaskNeck: got {len(inputs)} backbone stages but '
                f'in_channels has {len(self.in_channels)}; set the '
                "backbone's out_indices to match")
        num_levels = len(inputs)
        mask_feat = self.start_conv(inputs[-1])
        refined = {}  # stage index -> R (B, k, H_l, W_l)
        for step, refinement in enumerate(self.refinements):
            level = num_levels - 1 - step
            if step:
                mask_feat = upsample_to(mask_feat, inputs[level].shape[-2:],
                                        self.upsample_mode)
            mask_feat = refinement(inputs[level], mask_feat)
            refined[level] = mask_feat

        outs = [
            conv(refined[level]) for conv, level in zip(
                self.out_convs, range(self.start_level, num_levels))
        ]
        num_extra = self.num_outs - len(outs)
        if num_extra and not self.add_extra_convs:
            for _ in range(num_extra):
                # kernel 1, stride 2: FPN's P6 for Faster / Mask R-CNN
                outs.append(F.max_pool2d(outs[-1], 1, stride=2))
        elif num_extra:
            source = inputs[-1] if self.add_extra_convs == 'on_input' \
                else outs[-1]
            outs.append(self.extra_convs[0](source))
            for conv in self.extra_convs[1:]:
                prev = F.relu(outs[-1]) if self.relu_before_extra_convs \
                    else outs[-1]
                outs.append(conv(prev))
        if self.finest_out:
            finest = refined[0]
            if self.finest_out == 'upsampled':
                height, width = finest.shape[-2:]
                finest = upsample_to(finest, (2 * height, 2 * width),
                                     self.upsample_mode)
            outs.append(self.finest_conv(finest))
        return tuple(outs)
