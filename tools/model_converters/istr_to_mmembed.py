# Copyright (c) mmembed authors. All rights reserved.
"""Convert an official ISTR v1 or v2 (detectron2) checkpoint to mmembed.

    python tools/model_converters/istr_to_mmembed.py \\
        ISTR-R50-3x.pth istr_r50_fpn_3x_mmembed.pth \\
        --config configs/istr/istr_r50_fpn_3x_coco.py
    python tools/model_converters/istr_to_mmembed.py \\
        ISTR-PCA-R50-3x.pth istr_v2_r50_fpn_3x_mmembed.pth \\
        --config configs/istr/istr_v2_r50_fpn_3x_coco.py

Official key layout (hujiecpp/ISTR @967c901, specs/methods.md 3.6):
``backbone.bottom_up.*`` (detectron2 ResNet, FrozenBN, norm inside each conv),
``backbone.fpn_lateral{2-5}`` / ``backbone.fpn_output{2-5}``,
``pos_embeddings`` / ``init_proposal_boxes``, ``mask_encoding.*`` (the PCA
codec: it lands in ``roi_head.mask_codec``, so no npz is needed afterwards)
and ``head.head_series.{0-5}.*`` (Sparse R-CNN ``RCNNHead``: self_attn,
inst_interact (DynamicConv), linear1/2, norm1-3, cls/reg/mask modules).

v2 (``hujiecpp/ISTR@1dac079``, ISTR-PCA / ISTR-DCT) has the same names;
its ``mask_module.{0,1,3,4,6}`` are the conv branch's convs and BNs
(``mask_convs`` here, same indices) and it has no ``mask_logits``; a DCT
checkpoint has no ``mask_encoding``. The version is read from the
checkpoint (4-d ``mask_module.0.weight`` = v2) unless ``--istr-version``
names it. The AE ("SMT") variant's ``mask_E`` / ``mask_D`` /
``ret_roi_layer_*`` are not built in mmembed and are reported unmapped.
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

_RULES: List[Tuple[str, str]] = [
    # backbone: detectron2 ResNet (stride in 3x3 = pytorch style)
    (r'^backbone\.bottom_up\.stem\.conv1\.weight$', r'backbone.conv1.weight'),
    (r'^backbone\.bottom_up\.stem\.conv1\.norm\.(.+)$', r'backbone.bn1.\1'),
    # FPN, P2-P5
    (r'^backbone\.fpn_lateral([2-5])\.(.+)$',
     'neck.lateral_convs.{L}.conv.\\2'),
    (r'^backbone\.fpn_output([2-5])\.(.+)$', 'neck.fpn_convs.{L}.conv.\\2'),
    # queries
    (r'^pos_embeddings\.weight$', 'rpn_head.init_proposal_features.weight'),
    (r'^init_proposal_boxes\.weight$', 'rpn_head.init_proposal_bboxes.weight'),
    # the PCA codec (nn.Parameter(requires_grad=False) there, buffers here)
    (r'^mask_encoding\.(components|explained_variances|means)$',
     r'roi_head.mask_codec.\1'),
]
# RCNNHead -> ISTRStageHead (DIIHead) names inside one stage
_STAGE_RULES: List[Tuple[str, str]] = [
    (r'^self_attn\.(in_proj_weight|in_proj_bias|out_proj\..+)$',
     r'attention.attn.\1'),
    (r'^norm1\.(.+)$', r'attention_norm.\1'),
    (r'^norm2\.(.+)$', r'instance_interactive_conv_norm.\1'),
    (r'^norm3\.(.+)$', r'ffn_norm.\1'),
    (r'^linear1\.(.+)$', r'ffn.layers.0.0.\1'),
    (r'^linear2\.(.+)$', r'ffn.layers.1.\1'),
    # DynamicConv: same computation, mmdet's names
    (r'^inst_interact\.dynamic_layer\.(.+)$',
     r'instance_interactive_conv.dynamic_layer.\1'),
    (r'^inst_interact\.norm1\.(.+)$', r'instance_interactive_conv.norm_in.\1'),
    (r'^inst_interact\.norm2\.(.+)$',
     r'instance_interactive_conv.norm_out.\1'),
    (r'^inst_interact\.out_layer\.(.+)$',
     r'instance_interactive_conv.fc_layer.\1'),
    (r'^inst_interact\.norm3\.(.+)$', r'instance_interactive_conv.fc_norm.\1'),
    # MLPs: Linear at 0/3/6, LN at 1/4/7 in both (ELU at 2/5/8 here)
    (r'^cls_module\.(\d+)\.(.+)$', r'cls_fcs.\1.\2'),
    (r'^reg_module\.(\d+)\.(.+)$', r'reg_fcs.\1.\2'),
    (r'^mask_module\.(\d+)\.(.+)$', r'{MASK}.\1.\2'),
    (r'^class_logits\.(.+)$', r'fc_cls.\1'),
    (r'^bboxes_delta\.(.+)$', r'fc_reg.\1'),
    (r'^mask_logits\.(.+)$', r'fc_mask.\1'),
]


def strip_prefix(state_dict: Dict[str, Tensor],
                 prefix: str = 'module.') -> Dict[str, Tensor]:
    """Drop ``prefix`` if every key has it (DDP-wrapped saves)."""
    if state_dict and all(k.startswith(prefix) for k in state_dict):
        return OrderedDict((k[len(prefix):], v) for k, v in state_dict.items())
    return state_dict


def _map_backbone_block(key: str) -> str:
    """``backbone.bottom_up.res{2-5}.{i}.{conv1-3,shortcut}[.norm].*``."""
    match = re.match(
        r'^backbone\.bottom_up\.res([2-5])\.(\d+)\.(conv[123]|shortcut)\.'
        r'(norm\.)?(.+)$', key)
    if not match:
        return ''
    res, block, layer, norm, rest = match.groups()
    prefix = f'backbone.layer{int(res) - 1}.{block}'
    if layer == 'shortcut':
        return f'{prefix}.downsample.{1 if norm else 0}.{rest}'
    index = layer[-1]
    return f'{prefix}.{"bn" if norm else "conv"}{index}.{rest}'


def detect_version(state_dict: Dict[str, Tensor]) -> str:
    """'v2' when a stage's ``mask_module.0.weight`` is a conv kernel (4-d),
    else 'v1' (an MLP's Linear)."""
    for key, value in state_dict.items():
        if re.search(r'head_series\.\d+\.mask_module\.0\.weight$', key):
            return 'v2' if value.dim() == 4 else 'v1'
    return 'v1'


def _map_key(key: str, version: str = 'v1') -> str:
    """Our name for an official key, or '' if unknown."""
    for pattern, repl in _RULES:
        match = re.match(pattern, key)
        if match:
            if '{L}' in repl:  # FPN level 2-5 -> index 0-3
                repl = repl.replace('{L}', str(int(match.group(1)) - 2))
            return re.sub(pattern, repl, key)
    new_key = _map_backbone_block(key)
    if new_key:
        return new_key
    match = re.match(r'^head\.head_series\.(\d+)\.(.+)$', key)
    if match:
        stage, rest = match.groups()
        for pattern, repl in _STAGE_RULES:
            if re.match(pattern, rest):
                repl = repl.replace(
                    '{MASK}', 'mask_convs' if version == 'v2' else 'mask_fcs')
                return (f'roi_head.bbox_head.{stage}.'
                        f'{re.sub(pattern, repl, rest)}')
    return ''


def convert(state_dict: Dict[str, Tensor],
            version: str = 'auto'
            ) -> Tuple['OrderedDict[str, Tensor]', List[str]]:
    """Map official ISTR v1 / v2 keys to mmembed keys.

    Args:
        version: 'v1', 'v2' or 'auto' (:func:`detect_version`).

    Returns:
        (converted state dict, official keys that were not mapped).
    """
    if version not in ('auto', 'v1', 'v2'):
        raise ValueError(f"version must be 'auto', 'v1' or 'v2', got "
                         f'{version!r}')
    state_dict = strip_prefix(state_dict)
    if version == 'auto':
        version = detect_version(state_dict)
    converted: 'OrderedDict[str, Tensor]' = OrderedDict()
    unmapped = []
    for key, value in state_dict.items():
        new_key = _map_key(key, version)
        if new_key:
            converted[new_key] = value
        else:
            unmapped.append(key)
    # mmdet's BatchNorm2d has a counter the FrozenBN files lack
    for key in list(converted):
        if key.startswith('backbone.') and key.endswith('.running_var'):
            converted[key[:-len('running_var')] + 'num_batches_tracked'] = \
                torch.tensor(0)
    return converted, unmapped


def _add_arguments(parser) -> None:
    parser.add_argument(
        '--istr-version', choices=('auto', 'v1', 'v2'), default='auto',
        help='official version of the checkpoint (auto: v2 when the mask '
        'branch is convolutional)')


def main(argv=None) -> int:
    return converter_main(
        argv,
        description=__doc__.split('\n')[0],
        source='official',
        config_example='configs/istr/istr_r50_fpn_3x_coco.py',
        converter='istr_to_mmembed',
        convert=lambda state_dict, args: convert(state_dict,
                                                 args.istr_version),
        add_arguments=_add_arguments)


if __name__ == '__main__':
    sys.exit(main())
