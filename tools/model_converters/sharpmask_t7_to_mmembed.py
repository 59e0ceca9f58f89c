# Copyright (c) mmembed authors. All rights reserved.
"""Convert the Torch7 SharpMask release (facebookresearch/deepmask) to mmembed.

    python tools/model_converters/sharpmask_t7_to_mmembed.py \\
        pretrained/sharpmask/model.t7 sharpmask_r50_release_mmembed.pth \\
        --config configs/sharpmask/sharpmask_r50_coco_proposals.py

The release file is a serialized Torch object, not a state dict
(specs/methods.md 4.5): ``{model = nn.SharpMask, config = {...}}`` (or the
model alone), read here with the ``torchfile`` package. The converter walks
the modules in their forward order and maps every parametrised one:

* ``trunk``: fb.resnet.torch ResNet-50 without layer4 -> ``backbone.*``
  (conv1 / bn1, ``layer{1-3}.{b}.conv{1-3}`` / ``bn{1-3}`` /
  ``downsample.{0,1}``). A block is ``Sequential{ConcatTable{Sequential{
  conv, BN, ReLU, ...}, shortcut}, CAddTable, ReLU}``; the release wraps its
  3x3 / 7x7 convs into ``Sequential{SpatialSymmetricPadding, conv}``
  (``updatePadding``) and has replaced every BN by a fixed affine
  (``BNtoFixed``: ``inn.ConstAffine`` / ``nn.SpatialConstDiagonal`` with
  ``a``, ``b``), which becomes a BN with ``weight = a``, ``bias = b``,
  ``running_mean = 0``, ``running_var = 1 - eps``. Plain BN modules are
  copied as they are.
* the trunk's tail after the crop: conv1x1 1024 -> 128 ->
  ``deepmask_head.reduce``; ``Linear(128 * 10 * 10 -> 512)`` (or the 10 x 10
  conv that ``linear2convTrunk`` makes of it) -> ``deepmask_head.code``
  (``nn.View`` flattens (C, H, W) in C order, as ``Tensor.view``).
* ``scoreBranch`` Linear 512 -> 1024 and 1024 -> 1 ->
  ``deepmask_head.score_branch.{1,4}``; ``maskBranchDM`` (``maskBranch`` in a
  DeepMask file) Linear 512 -> 56 * 56 -> ``deepmask_head.mask_fc`` (1 x 1
  convs; Linears or their ``linear2convHead`` convs are both accepted).
* ``refs[0]`` Linear 512 -> 32 * 10 * 10 -> ``refine_head.start``;
  ``refs[k]`` (k = 1..4) = ``Sequential{ParallelTable{neth, netv}, CAddTable,
  ReLU, SpatialUpSamplingNearest}``: the three neth convs ->
  ``refine_head.refinements.{k-1}.horizontal.{0,1,2}.conv``, the two netv
  convs -> ``.vertical.{0,1}.conv``; the conv appended to the last ref ->
  ``refine_head.final.conv``. If ``inference()`` replaced the neths by
  ``Identity``, the model's ``neths`` list is read instead.

Padding, crops, ReLUs, views, dropout and upsampling carry no parameters and
are skipped. Note that the release pads the trunk's convs symmetrically
(pad 3 on the 7x7 conv1, pad 1 = replicate on the 3x3s), while mmdet's
ResNet zero-pads: the weights transfer exactly, the trunk's border pixels
differ.

Every parametrised module that could not be mapped, and (with ``--config``)
every key whose shape does not match the model or that the model lacks, is
reported; the exit status is 1 if there is any, unless ``--allow-partial``.
"""
import math
import sys
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

PARAM_FIELDS = ('weight', 'bias', 'a', 'b', 'running_mean', 'running_var',
                'running_std')
CONV_TYPES = ('SpatialConvolution', 'SpatialConvolutionMM')
BN_TYPES = ('SpatialBatchNormalization', 'BatchNormalization')
AFFINE_TYPES = ('ConstAffine', 'SpatialConstDiagonal', 'SpatialConstAffine')
# fb.resnet.torch ResNet-50 blocks per stage (the release keeps 3 stages)
RESNET50_BLOCKS = (3, 4, 6)
DEFAULT_BN_EPS = 1e-5  # mmdet's BatchNorm2d


class MissingTorchfileError(ImportError):
    """``torchfile`` is not installed."""


def load_t7(path: str) -> Any:
    """The release object of a ``.t7`` file (``torchfile`` imported here,
    so this module imports without it)."""
    try:
        import torchfile
    except ImportError:
        raise MissingTorchfileError(
            'reading a Torch7 .t7 file needs the torchfile package: '
            'pip install torchfile') from None
    return torchfile.load(path)


# ---------------------------------------------------------------- access
def _is_torch_object(obj: Any) -> bool:
    # class-level lookup: torchfile's table dict answers any attribute
    return callable(getattr(type(obj), 'torch_typename', None))


def _fields(obj: Any) -> Optional[dict]:
    if _is_torch_object(obj):
        return obj._obj if isinstance(obj._obj, dict) else None
    return obj if isinstance(obj, dict) else None


def _get(obj: Any, name: str, default: Any = None) -> Any:
    """Field ``name`` of a Torch object or Lua table (str or bytes keys)."""
    fields = _fields(obj)
    if fields is None:
        return default
    for key in (name, name.encode()):
        if key in fields:
            return fields[key]
    return default


def _text(value: Any) -> str:
    return value.decode('utf8', 'replace') if isinstance(value,
                                                         bytes) else str(value)


def _typename(obj: Any) -> str:
    """'nn.Sequential', 'cudnn.SpatialConvolution', ... ('' for tables)."""
    return _text(obj.torch_typename()) if _is_torch_object(obj) else ''


def _short_type(obj: Any) -> str:
    return _typename(obj).rsplit('.', 1)[-1]


def _table_items(table: Any) -> List[Tuple[int, Any]]:
    """(key, value) of a Lua array read as a list (0-based) or a dict with
    numeric keys, in key order."""
    if isinstance(table, (list, tuple)):
        return list(enumerate(table))
    if isinstance(table, dict):
        items = []
        for key, value in table.items():
            if isinstance(key, (int, float)) and float(key).is_integer():
                items.append((int(key), value))
        return sorted(items, key=lambda kv: kv[0])
    return []


def _children(module: Any) -> Optional[List[Any]]:
    """A container's ``modules`` in order (None if not a container)."""
    modules = _get(module, 'modules')
    if modules is None:
        return None
    if isinstance(modules, dict):  # a list-like table read as a dict
        return [value for _, value in _table_items(modules)]
    return list(modules)


def _array(module: Any, name: str) -> Optional[np.ndarray]:
    value = _get(module, name)
    if isinstance(value, np.ndarray) and value.size > 0:
        return value
    return None


def _tensor(array: np.ndarray) -> Tensor:
    return torch.from_numpy(np.array(array, dtype=np.float32, copy=True))


def _kind(module: Any) -> Optional[str]:
    """'conv', 'linear', 'bn', 'affine', 'unknown' (parametrised but not
    mapped) or None (no parameters)."""
    short = _short_type(module)
    if short in CONV_TYPES:
        return 'conv'
    if short == 'Linear':
        return 'linear'
    if short in BN_TYPES:
        return 'bn'
    if short in AFFINE_TYPES or (_array(module, 'a') is not None
                                 and _array(module, 'b') is not None):
        return 'affine'
    if any(_array(module, name) is not None for name in PARAM_FIELDS):
        return 'unknown'
    return None


Leaf = Tuple[str, str, Any]  # (Lua path, kind, module)


def _param_leaves(module: Any, path: str) -> List[Leaf]:
    """The parametrised leaf modules under ``module`` in forward order
    (containers flattened; paths 1-based like Lua's ``modules[i]``)."""
    children = _children(module)
    if children is not None:
        leaves = []
        for i, child in enumerate(children, 1):
            leaves += _param_leaves(child, f'{path}.modules[{i}]')
        return leaves
    kind = _kind(module)
    return [] if kind is None else [(path, kind, module)]


def _describe(leaves: Sequence[Leaf]) -> str:
    return ', '.join(f'{path} ({_typename(m) or "table"})'
                     for path, _, m in leaves) or 'none'


# ------------------------------------------------------------- converter
class _Converter:
    """Walks a release model and fills ``out``; ``problems`` lists what it
    could not map."""

    def __init__(self, bn_eps: float) -> None:
        self.bn_eps = bn_eps
        self.out: 'OrderedDict[str, Tensor]' = OrderedDict()
        self.problems: List[str] = []

    # ------------------------------------------------------ layer helpers
    def _expect(self, leaves: Sequence[Leaf], kinds: Sequence[Tuple[str, ...]],
                where: str, what: str) -> bool:
        """True if ``leaves`` are exactly ``kinds`` (one tuple of allowed
        kinds per leaf); a problem otherwise."""
        ok = len(leaves) == len(kinds) and all(
            kind in allowed for (_, kind, _), allowed in zip(leaves, kinds))
        if not ok:
            self.problems.append(
                f'{where}: expected {what}, found {len(leaves)} '
                f'parametrised module(s): {_describe(leaves)}')
        return ok

    @staticmethod
    def _conv_weight(module: Any, path: str) -> Tensor:
        weight = _array(module, 'weight')
        if weight is None:
            raise ValueError(f'{path}: {_typename(module)} has no weight')
        if weight.ndim == 2:  # SpatialConvolutionMM: (out, in * kh * kw)
            shape = tuple(
                int(_get(module, name, 0))
                for name in ('nOutputPlane', 'nInputPlane', 'kH', 'kW'))
            if int(np.prod(shape)) != weight.size:
                raise ValueError(
                    f'{path}: a 2-D conv weight {weight.shape} does not '
                    f'match nOutputPlane, nInputPlane, kH, kW = {shape}')
            weight = weight.reshape(shape)
        if weight.ndim != 4:
            raise ValueError(f'{path}: conv weight of shape {weight.shape}')
        return _tensor(weight)

    def _put(self, key: str, value: Tensor) -> None:
        self.out[key] = value

    def _conv(self, leaf: Leaf, prefix: str) -> None:
        """A conv with bias (heads, refinement)."""
        path, _, module = leaf
        self._put(f'{prefix}.weight', self._conv_weight(module, path))
        bias = _array(module, 'bias')
        if bias is None:
            self.problems.append(f'{path}: conv without bias, {prefix} has '
                                 'one')
        else:
            self._put(f'{prefix}.bias', _tensor(bias).flatten())

    def _fc(self, leaf: Leaf, prefix: str, shape: Sequence[int]) -> None:
        """A Linear, or the conv ``linear2conv*`` made of it, reshaped to
        ``shape`` (out, in, ...) in C order (``nn.View``'s flattening)."""
        path, kind, module = leaf
        weight = _array(module, 'weight')
        bias = _array(module, 'bias')
        if weight is None or bias is None:
            self.problems.append(f'{path}: {_typename(module)} without '
                                 'weight or bias')
            return
        if kind == 'conv' and weight.ndim == 2:
            weight = self._conv_weight(module, path).numpy()
        if weight.size != int(np.prod(shape)) or weight.shape[0] != shape[0]:
            self.problems.append(
                f'{path}: weight {tuple(weight.shape)} cannot become '
                f'{prefix}.weight {tuple(shape)}')
            return
        self._put(f'{prefix}.weight', _tensor(weight.reshape(shape)))
        self._put(f'{prefix}.bias', _tensor(bias).flatten())

    def _norm(self, leaf: Leaf, prefix: str,
              conv_bias: Optional[np.ndarray] = None) -> None:
        """A BN or the fixed affine BNtoFixed made of it -> mmdet BN (eval:
        ``(x - mean) / sqrt(var + eps) * weight + bias``)."""
        path, kind, module = leaf
        if kind == 'affine':
            scale = _tensor(_array(module, 'a')).flatten()
            shift = _tensor(_array(module, 'b')).flatten()
            mean = torch.zeros_like(scale)
            # sqrt(var + eps) = 1 exactly in real numbers
            var = torch.full_like(scale, 1. - self.bn_eps)
        else:
            mean = _array(module, 'running_mean')
            var = _array(module, 'running_var')
            std = _array(module, 'running_std')  # old nn: 1 / sqrt(var+eps)
            if mean is None or (var is None and std is None):
                self.problems.append(f'{path}: BN without running stats')
                return
            src_eps = float(_get(module, 'eps', 1e-5))
            mean = _tensor(mean).flatten()
            if var is not None:
                var = _tensor(var).flatten() + (src_eps - self.bn_eps)
            else:
                var = _tensor(std).flatten().pow(-2) - self.bn_eps
            weight, bias = _array(module, 'weight'), _array(module, 'bias')
            scale = torch.ones_like(mean) if weight is None else _tensor(
                weight).flatten()
            shift = torch.zeros_like(mean) if bias is None else _tensor(
                bias).flatten()
        if conv_bias is not None:
            # BN(y + c) with mean m is BN(y) with mean m - c
            mean = mean - _tensor(conv_bias).flatten()
        self._put(f'{prefix}.weight', scale)
        self._put(f'{prefix}.bias', shift)
        self._put(f'{prefix}.running_mean', mean)
        self._put(f'{prefix}.running_var', var)
        self._put(f'{prefix}.num_batches_tracked', torch.tensor(0))

    def _conv_norm(self, conv: Leaf, norm: Leaf, conv_key: str,
                   norm_prefix: str) -> None:
        """A bias-free mmdet conv and its BN (a nonzero Torch conv bias is
        folded into the BN's mean)."""
        path, _, module = conv
        self._put(conv_key, self._conv_weight(module, path))
        bias = _array(module, 'bias')
        if bias is not None and not np.any(bias):
            bias = None
        self._norm(norm, norm_prefix, conv_bias=bias)

    # ----------------------------------------------------------- trunk
    @staticmethod
    def _is_res_layer(module: Any) -> bool:
        """A ResNet stage: a Sequential of blocks that each start with a
        ConcatTable (residual branch, shortcut)."""
        blocks = _children(module)
        if not blocks or _short_type(module) != 'Sequential':
            return False
        for block in blocks:
            parts = _children(block)
            if not parts or _short_type(parts[0]) != 'ConcatTable':
                return False
        return True

    def _res_layer(self, layer: Any, stage: int, path: str) -> None:
        blocks = _children(layer)
        if len(blocks) != RESNET50_BLOCKS[stage - 1]:
            self.problems.append(
                f'{path}: ResNet-50 layer{stage} has '
                f'{RESNET50_BLOCKS[stage - 1]} blocks, found {len(blocks)}')
        conv_bn = [('conv', ), ('bn', 'affine')]
        for b, block in enumerate(blocks):
            block_path = f'{path}.modules[{b + 1}]'
            prefix = f'backbone.layer{stage}.{b}'
            parts = _children(block)
            branches = _children(parts[0])
            concat_path = f'{block_path}.modules[1]'
            if len(branches) != 2:
                self.problems.append(
                    f'{concat_path}: expected ConcatTable{{residual, '
                    f'shortcut}}, found {len(branches)} branches')
                continue
            main = _param_leaves(branches[0], f'{concat_path}.modules[1]')
            if self._expect(main, conv_bn * 3, f'{concat_path}.modules[1]',
                            '3 x (conv, BN)'):
                for i in range(3):
                    self._conv_norm(main[2 * i], main[2 * i + 1],
                                    f'{prefix}.conv{i + 1}.weight',
                                    f'{prefix}.bn{i + 1}')
            shortcut = _param_leaves(branches[1], f'{concat_path}.modules[2]')
            if shortcut and self._expect(shortcut, conv_bn,
                                         f'{concat_path}.modules[2]',
                                         'an identity or (conv, BN)'):
                self._conv_norm(shortcut[0], shortcut[1],
                                f'{prefix}.downsample.0.weight',
                                f'{prefix}.downsample.1')
            rest = []
            for i, part in enumerate(parts[1:], 2):
                rest += _param_leaves(part, f'{block_path}.modules[{i}]')
            if rest:
                self._expect(rest, [], block_path,
                             'no parameters after the ConcatTable')

    def trunk(self, trunk: Any, fsz: Optional[int]) -> None:
        modules = _children(trunk)
        if modules is None:
            raise ValueError('trunk: not a container (nn.Sequential) but '
                             f'{_typename(trunk) or type(trunk).__name__}')
        stem: List[Leaf] = []
        top: List[Leaf] = []
        stage = 0
        for i, module in enumerate(modules, 1):
            path = f'trunk.modules[{i}]'
            if self._is_res_layer(module):
                stage += 1
                if stage > len(RESNET50_BLOCKS):
                    self.problems.append(
                        f'{path}: a ResNet stage beyond layer3 (the release '
                        'removes layer4)')
                else:
                    self._res_layer(module, stage, path)
                continue
            leaves = _param_leaves(module, path)
            if stage == 0:
                stem += leaves
            elif stage >= len(RESNET50_BLOCKS):
                top += leaves
            elif leaves:
                self._expect(leaves, [], path,
                             'no parameters between ResNet stages')
        if stage < len(RESNET50_BLOCKS):
            self.problems.append(
                f'trunk: found {stage} ResNet stage(s), expected layer1-3')
        if self._expect(stem, [('conv', ), ('bn', 'affine')], 'trunk stem',
                        'conv1 7x7 and its BN'):
            self._conv_norm(stem[0], stem[1], 'backbone.conv1.weight',
                            'backbone.bn1')
        if not self._expect(top, [('conv', ), ('linear', 'conv')],
                            'trunk after layer3',
                            'conv1x1 1024->128 and Linear(128*fSz*fSz->512)'):
            return
        self._conv(top[0], 'deepmask_head.reduce')
        reduce = self.out.get('deepmask_head.reduce.weight')
        code = _array(top[1][2], 'weight')
        if reduce is None or code is None:
            return
        channels = reduce.shape[0]
        if top[1][1] == 'linear':
            cells = code.shape[1] // channels
            side = fsz or int(round(math.sqrt(cells)))
            if side * side * channels != code.shape[1]:
                self.problems.append(
                    f'{top[1][0]}: Linear input {code.shape[1]} is not '
                    f'{channels} x fSz x fSz')
                return
            shape = (code.shape[0], channels, side, side)
        else:
            shape = tuple(self._conv_weight(top[1][2], top[1][0]).shape)
        self._fc(top[1], 'deepmask_head.code', shape)

    # ----------------------------------------------------------- heads
    def fc_head(self, branch: Any, name: str,
                prefixes: Sequence[str]) -> None:
        """Linears (or 1x1 convs) of a DeepMask branch, as 1x1 convs."""
        leaves = _param_leaves(branch, name)
        if not self._expect(leaves, [('linear', 'conv')] * len(prefixes),
                            name, f'{len(prefixes)} Linear layer(s)'):
            return
        for leaf, prefix in zip(leaves, prefixes):
            weight = _array(leaf[2], 'weight')
            if weight is None:
                self.problems.append(f'{leaf[0]}: no weight')
                continue
            out_ch = weight.shape[0]
            self._fc(leaf, prefix, (out_ch, weight.size // out_ch, 1, 1))

    def refinement(self, refs: Any, neths: Any) -> None:
        items = _table_items(refs)
        if not items or items[0][0] != 0:
            self.problems.append('refs: expected a table with keys 0..n '
                                 f'(found keys {[k for k, _ in items]})')
            return
        start = _param_leaves(items[0][1], 'refs[0]')
        if self._expect(start, [('linear', 'conv')], 'refs[0]',
                        'Linear(512 -> km * fSz * fSz)'):
            weight = _array(start[0][2], 'weight')
            if weight is not None:
                out_ch = weight.shape[0]
                self._fc(start[0], 'refine_head.start',
                         (out_ch, weight.size // out_ch))
        neth_items = dict(_table_items(neths))
        last = items[-1][0]
        for k, ref in items[1:]:
            where = f'refs[{k}]'
            prefix = f'refine_head.refinements.{k - 1}'
            parts = _children(ref)
            branches = _children(parts[0]) if parts else None
            if not branches or _short_type(parts[0]) != 'ParallelTable' \
                    or len(branches) != 2:
                self.problems.append(
                    f'{where}.modules[1]: expected ParallelTable{{neth, '
                    f'netv}}, found {_typename(parts[0]) if parts else None}')
                continue
            horizontal = _param_leaves(branches[0],
                                       f'{where}.modules[1].modules[1]')
            if not horizontal:
                # inference() replaced the neth by Identity; neths[k] is it
                neth = neth_items.get(k - 1 if isinstance(neths, list) else k)
                horizontal = _param_leaves(neth, f'neths[{k}]')
            if self._expect(horizontal, [('conv', )] * 3,
                            f'{where} horizontal net', '3 convs'):
                for i, leaf in enumerate(horizontal):
                    self._conv(leaf, f'{prefix}.horizontal.{i}.conv')
            vertical = _param_leaves(branches[1],
                                     f'{where}.modules[1].modules[2]')
            if self._expect(vertical, [('conv', )] * 2,
                            f'{where} vertical net', '2 convs'):
                for i, leaf in enumerate(vertical):
                    self._conv(leaf, f'{prefix}.vertical.{i}.conv')
            rest = []
            for i, part in enumerate(parts[1:], 2):
                rest += _param_leaves(part, f'{where}.modules[{i}]')
            if k == last:
                if self._expect(rest, [('conv', )], f'{where} (last)',
                                'the final conv after the refinement'):
                    self._conv(rest[0], 'refine_head.final.conv')
            elif rest:
                self._expect(rest, [], where,
                             'no parameters after the ParallelTable')


def unwrap_release(release: Any) -> Tuple[Any, Dict[str, Any]]:
    """(model, config) of a release object: ``{model=..., config=...}`` or
    the model itself."""
    model = _get(release, 'model') if not _is_torch_object(release) else None
    if model is None:
        model = release
    if _get(model, 'trunk') is None:
        raise ValueError(
            'not a DeepMask / SharpMask release: no trunk (expected '
            f'{{model = nn.SharpMask, config = ...}} or the model, got '
            f'{_typename(model) or type(model).__name__})')
    config = {}
    for key, value in (_fields(_get(release, 'config')) or {}).items():
        if isinstance(value, (bool, int, float, str, bytes)):
            config[_text(key)] = _text(value) if isinstance(
                value, bytes) else value
    return model, config


def convert(release: Any, bn_eps: float = DEFAULT_BN_EPS
            ) -> Tuple['OrderedDict[str, Tensor]', List[str]]:
    """Map a release object (what ``torchfile.load`` returns) to mmembed
    ``SharpMaskProposer`` keys.

    A DeepMask file (no ``refs``) gives the keys of a model without
    ``refine_head``.

    Args:
        release: ``{model=..., config=...}`` or the ``nn.SharpMask`` /
            ``nn.DeepMask`` object.
        bn_eps: eps of the target BatchNorms (mmdet: 1e-5); fixed affines
            become BNs that reproduce them under it.

    Returns:
        (converted state dict, problems: parametrised release modules that
        could not be mapped, with their Lua paths).
    """
    model, _ = unwrap_release(release)
    converter = _Converter(bn_eps)
    fsz = _get(model, 'fSz')
    converter.trunk(_get(model, 'trunk'), int(fsz) if fsz else None)
    converter.fc_head(
        _get(model, 'scoreBranch'), 'scoreBranch',
        ('deepmask_head.score_branch.1', 'deepmask_head.score_branch.4'))
    mask_name = 'maskBranchDM' if _get(model, 'maskBranchDM') is not None \
        else 'maskBranch'
    converter.fc_head(_get(model, mask_name), mask_name,
                      ('deepmask_head.mask_fc', ))
    refs = _get(model, 'refs')
    if refs is not None:
        converter.refinement(refs, _get(model, 'neths'))
    return converter.out, converter.problems


def convert_sharpmask(release: Any, bn_eps: float = DEFAULT_BN_EPS
                      ) -> 'OrderedDict[str, Tensor]':
    """:func:`convert`, raising ``ValueError`` (listing them) if any
    parametrised module could not be mapped."""
    converted, problems = convert(release, bn_eps)
    if problems:
        raise ValueError('SharpMask release conversion failed:\n  ' +
                         '\n  '.join(problems))
    return converted


def main(argv: Optional[Sequence[str]] = None) -> int:
    from mmembed.utils.cli_utils import doc_summary
    from mmembed.utils.conversion import converter_main
    return converter_main(
        argv,
        description=doc_summary(__doc__),
        source='release',
        config_example='configs/sharpmask/sharpmask_r50_coco_proposals.py',
        converter='sharpmask_t7_to_mmembed',
        load=load_t7,
        convert=lambda release, args: convert(release),
        extra_meta=lambda release: dict(
            release_config=unwrap_release(release)[1]),
        unmapped_what='module')


if __name__ == '__main__':
    sys.exit(main())
