# Copyright (c) mmembed authors. All rights reserved.
"""Convert an official EmbedMask (v3, maskrcnn-benchmark) checkpoint to
mmembed.

    python tools/model_converters/embedmask_to_mmembed.py \\
        embed_mask_R50_1x.pth embedmask_r50_v3_mmembed.pth \\
        --config configs/embedmask/embedmask_r50_fpn_v3_1x_coco.py

Official files are ``{"model", "optimizer", "scheduler", "iteration"}``;
``model`` keys usually start with ``module.`` (DDP wrapped before saving).
Key layout (specs/methods.md 1.7): ``backbone.body.*`` (caffe ResNet with
FrozenBN), ``backbone.fpn.*``, ``rpn.head.*`` (towers as Sequential with the
conv at 0/3/6/9 and GN at 1/4/7/10; the spatial and other embedding convs are
separate and are concatenated here into one conv each).

Every key that could not be mapped, and (with ``--config``) every key whose
shape does not match the model or that the model lacks, is reported; the
exit status is 1 if there is any, unless ``--allow-partial``.
"""
import re
import sys
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch
from torch import Tensor

from mmembed.utils.conversion import converter_main

_DIRECT_RULES: List[Tuple[str, str]] = [
    # backbone: maskrcnn-benchmark ResNet -> mmdet ResNet (caffe style)
    (r'^backbone\.body\.stem\.conv1\.(.+)$', r'backbone.conv1.\1'),
    (r'^backbone\.body\.stem\.bn1\.(.+)$', r'backbone.bn1.\1'),
    (r'^backbone\.body\.(layer\d\.\d+\.(?:conv\d|bn\d|downsample\.\d)\.'
     r'.+)$', r'backbone.\1'),
    # FPN: fpn_inner{2,3,4} / fpn_layer{2,3,4} are C3-C5 (C2 is skipped)
    (r'^backbone\.fpn\.top_blocks\.p6\.(.+)$', r'neck.fpn_convs.3.conv.\1'),
    (r'^backbone\.fpn\.top_blocks\.p7\.(.+)$', r'neck.fpn_convs.4.conv.\1'),
    # head predictors and scales
    (r'^rpn\.head\.cls_logits\.(.+)$', r'bbox_head.conv_cls.\1'),
    (r'^rpn\.head\.bbox_pred\.(.+)$', r'bbox_head.conv_reg.\1'),
    (r'^rpn\.head\.centerness\.(.+)$', r'bbox_head.conv_centerness.\1'),
    (r'^rpn\.head\.scales\.(\d+)\.scale$', r'bbox_head.scales.\1.scale'),
    (r'^rpn\.head\.proposal_margin_pred\.(.+)$', r'bbox_head.conv_margin.\1'),
    (r'^rpn\.head\.margin_scales\.(\d+)\.scale$',
     r'bbox_head.margin_scales.\1.scale'),
    (r'^rpn\.head\.position_scale\.scale$', r'mask_head.position_scale.scale'),
]
_TOWERS = {
    'cls_tower': 'bbox_head.cls_convs',
    'bbox_tower': 'bbox_head.reg_convs',
    'mask_tower': 'mask_head.mask_convs',
}
# (spatial part, other part) -> our single conv
_SPLIT_CONVS = {
    'proposal': 'bbox_head.conv_embed',
    'pixel': 'mask_head.conv_pixel',
}


def strip_prefix(state_dict: Dict[str, Tensor],
                 prefix: str = 'module.') -> Dict[str, Tensor]:
    """Drop ``prefix`` if every key has it (as the official loader does)."""
    if state_dict and all(k.startswith(prefix) for k in state_dict):
        return OrderedDict((k[len(prefix):], v) for k, v in state_dict.items())
    return state_dict


def _map_key(key: str) -> str:
    """Our name for an official key, or '' if unknown."""
    for pattern, repl in _DIRECT_RULES:
        if re.match(pattern, key):
            return re.sub(pattern, repl, key)
    match = re.match(r'^backbone\.fpn\.fpn_(inner|layer)([234])\.(.+)$', key)
    if match:
        kind = 'lateral_convs' if match.group(1) == 'inner' else 'fpn_convs'
        return f'neck.{kind}.{int(match.group(2)) - 2}.conv.{match.group(3)}'
    match = re.match(r'^rpn\.head\.(cls_tower|bbox_tower|mask_tower)\.(\d+)\.'
                     r'(.+)$', key)
    if match:
        # Sequential: conv at 3i, GN at 3i + 1, ReLU at 3i + 2
        index = int(match.group(2))
        layer, part = divmod(index, 3)
        if part == 2:
            return ''
        sub = 'conv' if part == 0 else 'gn'
        return f'{_TOWERS[match.group(1)]}.{layer}.{sub}.{match.group(3)}'
    return ''


def convert(state_dict: Dict[str, Tensor]
            ) -> Tuple['OrderedDict[str, Tensor]', List[str]]:
    """Map official v3 keys to mmembed keys.

    Returns:
        (converted state dict, official keys that were not mapped).
    """
    state_dict = strip_prefix(state_dict)
    converted: 'OrderedDict[str, Tensor]' = OrderedDict()
    unmapped = []
    split_parts: Dict[str, Dict[str, Tensor]] = {}
    for key, value in state_dict.items():
        match = re.match(r'^rpn\.head\.(proposal|pixel)_(spatial|other)_embed_'
                         r'pred\.(weight|bias)$', key)
        if match:
            name = f'{_SPLIT_CONVS[match.group(1)]}.{match.group(3)}'
            split_parts.setdefault(name, {})[match.group(2)] = value
            continue
        new_key = _map_key(key)
        if new_key:
            converted[new_key] = value
        else:
            unmapped.append(key)
    for name, parts in split_parts.items():
        if set(parts) != {'spatial', 'other'}:
            unmapped.extend(f'{name} ({part} part only)' for part in parts)
            continue
        # channels 0-1 are the spatial dims (+ coordinates), then the rest
        converted[name] = torch.cat([parts['spatial'], parts['other']])
    # mmdet's BatchNorm2d has a counter the FrozenBN files lack
    for key in list(converted):
        if key.startswith('backbone.') and key.endswith('.running_var'):
            converted[key[:-len('running_var')] + 'num_batches_tracked'] = \
                torch.tensor(0)
    return converted, unmapped


def main(argv=None) -> int:
    from mmembed.utils.cli_utils import doc_summary
    return converter_main(
        argv,
        description=doc_summary(__doc__),
        source='official',
        config_example='configs/embedmask/embedmask_r50_fpn_v3_1x_coco.py',
        converter='embedmask_to_mmembed',
        convert=lambda state_dict, args: convert(state_dict))


if __name__ == '__main__':
    sys.exit(main())
