# Copyright (c) mmembed authors. All rights reserved.
"""Convert an AdelaiDet (detectron2) BlendMask checkpoint to mmembed.

    python tools/model_converters/blendmask_adet_to_mmembed.py \\
        R_50_1x.pth blendmask_r50_1x_mmembed.pth \\
        --config configs/blendmask/blendmask_r50_fpn_1x_coco.py

AdelaiDet files are ``{"model": state_dict, ...}`` (some also hold
``"iteration"`` or ``"__author__"``). Key layout (specs/methods.md 2.6):
``backbone.bottom_up.*`` (detectron2 ResNet with FrozenBN),
``backbone.fpn_{lateral,output}{3,4,5}``, ``backbone.top_block.{p6,p7}``,
``proposal_generator.fcos_head.*`` (towers as Sequential: conv at 3i, GN at
3i + 1; ``ctrness``, or ``centerness`` in older files, which AdelaiDet's
``tools/rename_blendmask.py`` renames), ``top_layer.*`` (the attention conv)
and ``basis_module.{refine,tower,seg_head}.*``.

BlendMask's FCOS has no per-level scales (``USE_SCALE False``); our box head
keeps frozen scales at 1.0, which are written here (one per FPN level, i.e.
per ``backbone.top_block`` level + P3-P5).

Every key that could not be mapped, and (with ``--config``) every key whose
shape does not match the model or that the model lacks, is reported; the
exit status is 1 if there is any, unless ``--allow-partial``.
"""
import argparse
import re
import sys
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch
from torch import Tensor

from mmembed.utils.conversion import converter_main

_RESNET_STAGES = {'res2': 'layer1', 'res3': 'layer2', 'res4': 'layer3',
                  'res5': 'layer4'}
_FCOS_TOWERS = {
    'cls_tower': 'bbox_head.cls_convs',
    'bbox_tower': 'bbox_head.reg_convs',
    'share_tower': 'bbox_head.share_convs',
}
_FCOS_PREDICTORS = {
    'cls_logits': 'bbox_head.conv_cls',
    'bbox_pred': 'bbox_head.conv_reg',
    'ctrness': 'bbox_head.conv_centerness',
    'centerness': 'bbox_head.conv_centerness',  # pre-rename checkpoints
}
# seg_head Sequential: conv 0, BN 1, ReLU 2, conv 3, BN 4, ReLU 5, conv 6;
# ours: two ConvModules, then the 1x1 classifier
_SEG_HEAD = {'0': 'seg_head.0.conv', '1': 'seg_head.0.bn',
             '3': 'seg_head.1.conv', '4': 'seg_head.1.bn', '6': 'seg_head.2'}


def _backbone_key(key: str) -> str:
    match = re.match(r'^backbone\.bottom_up\.stem\.conv1\.(norm\.)?(.+)$',
                     key)
    if match:
        return ('backbone.bn1.' if match.group(1) else 'backbone.conv1.') + \
            match.group(2)
    match = re.match(
        r'^backbone\.bottom_up\.(res[2-5])\.(\d+)\.(conv[123]|shortcut)\.'
        r'(norm\.)?(.+)$', key)
    if match:
        stage, block, layer, norm, param = match.groups()
        prefix = f'backbone.{_RESNET_STAGES[stage]}.{block}'
        if layer == 'shortcut':
            return f'{prefix}.downsample.{1 if norm else 0}.{param}'
        name = f'bn{layer[-1]}' if norm else layer
        return f'{prefix}.{name}.{param}'
    match = re.match(r'^backbone\.fpn_(lateral|output)([345])\.(.+)$', key)
    if match:
        kind = 'lateral_convs' if match.group(1) == 'lateral' else 'fpn_convs'
        return f'neck.{kind}.{int(match.group(2)) - 3}.conv.{match.group(3)}'
    match = re.match(r'^backbone\.top_block\.p([67])\.(.+)$', key)
    if match:
        return f'neck.fpn_convs.{int(match.group(1)) - 3}.conv.' \
            f'{match.group(2)}'
    return ''


def _head_key(key: str, norm_name: str) -> str:
    match = re.match(r'^proposal_generator\.fcos_head\.(\w+_tower)\.(\d+)\.'
                     r'(.+)$', key)
    if match and match.group(1) in _FCOS_TOWERS:
        layer, part = divmod(int(match.group(2)), 3)
        if part == 2:  # ReLU, no parameters
            return ''
        sub = 'conv' if part == 0 else 'gn'
        return f'{_FCOS_TOWERS[match.group(1)]}.{layer}.{sub}.' \
            f'{match.group(3)}'
    match = re.match(r'^proposal_generator\.fcos_head\.(\w+)\.(weight|bias)$',
                     key)
    if match and match.group(1) in _FCOS_PREDICTORS:
        return f'{_FCOS_PREDICTORS[match.group(1)]}.{match.group(2)}'
    match = re.match(r'^proposal_generator\.fcos_head\.scales\.(\d+)\.scale$',
                     key)
    if match:  # USE_SCALE True checkpoints
        return f'bbox_head.scales.{match.group(1)}.scale'
    match = re.match(r'^top_layer\.(weight|bias)$', key)
    if match:
        return f'bbox_head.conv_attn.{match.group(1)}'
    # basis module: conv_with_kaiming_uniform blocks are Sequential(conv,
    # norm, ReLU) -> ConvModule(conv, bn / gn); the tower keeps indices
    match = re.match(r'^basis_module\.(refine|tower)\.(\d+)\.([01])\.(.+)$',
                     key)
    if match:
        part, index, sub, param = match.groups()
        return f'mask_head.{part}.{index}.' \
            f'{"conv" if sub == "0" else norm_name}.{param}'
    match = re.match(r'^basis_module\.tower\.(\d+)\.(weight|bias)$', key)
    if match:  # the 1x1 base conv, no norm
        return f'mask_head.tower.{match.group(1)}.{match.group(2)}'
    match = re.match(r'^basis_module\.seg_head\.(\d+)\.(.+)$', key)
    if match and match.group(1) in _SEG_HEAD:
        return f'mask_head.{_SEG_HEAD[match.group(1)]}.{match.group(2)}'
    return ''


def convert(state_dict: Dict[str, Tensor],
            basis_norm: str = 'bn') -> Tuple['OrderedDict[str, Tensor]',
                                             List[str]]:
    """Map AdelaiDet BlendMask keys to mmembed keys.

    Args:
        state_dict: the checkpoint's ``model`` dict.
        basis_norm: name of the norm layer in our basis ConvModules:
            ``'bn'`` for BN / SyncBN (AdelaiDet's default ``SyncBN``),
            ``'gn'`` for GN.

    Returns:
        (converted state dict, AdelaiDet keys that were not mapped).
    """
    if state_dict and all(k.startswith('module.') for k in state_dict):
        state_dict = OrderedDict(
            (k[len('module.'):], v) for k, v in state_dict.items())
    converted: 'OrderedDict[str, Tensor]' = OrderedDict()
    unmapped = []
    for key, value in state_dict.items():
        new_key = _backbone_key(key) or _head_key(key, basis_norm)
        if new_key:
            converted[new_key] = value
        else:
            unmapped.append(key)
    # USE_SCALE False: no scales in the file; ours are frozen at 1.0, one
    # per FPN level (P3-P5 plus the top block's levels)
    if not any(k.startswith('bbox_head.scales.') for k in converted):
        num_top = len({k.split('.')[2] for k in converted
                       if re.match(r'^neck\.fpn_convs\.[34]\.', k)})
        for level in range(3 + num_top):
            converted[f'bbox_head.scales.{level}.scale'] = torch.tensor(1.0)
    # mmdet's BatchNorm2d has a counter that FrozenBN lacks
    for key in list(converted):
        if key.endswith('.running_var'):
            counter = key[:-len('running_var')] + 'num_batches_tracked'
            converted.setdefault(counter, torch.tensor(0))
    return converted, unmapped


def main(argv=None) -> int:

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            '--basis-norm',
            choices=['bn', 'gn'],
            default='bn',
            help="norm of the basis module: 'bn' for BN / SyncBN (AdelaiDet "
            "default), 'gn' for GN")

    return converter_main(
        argv,
        description=__doc__.split('\n')[0],
        source='AdelaiDet',
        config_example='configs/blendmask/blendmask_r50_fpn_1x_coco.py',
        converter='blendmask_adet_to_mmembed',
        convert=lambda state_dict, args: convert(state_dict, args.basis_norm),
        add_arguments=add_arguments)


if __name__ == '__main__':
    sys.exit(main())
