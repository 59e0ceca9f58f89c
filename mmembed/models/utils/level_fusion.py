# Copyright (c) mmembed authors. All rights reserved.
"""Summing FPN levels at the finest level's resolution.

BlendMask's bottom module (AdelaiDet ``ProtoNet``) and, with
``pixel_levels > 1``, EmbedMask's pixel branch both refine each FPN level
with its own conv and add the coarser levels, bilinearly upsampled, to the
finest one (CondInst's mask branch does the same). The sum lives here once.
"""
from typing import Sequence

import torch.nn.functional as F
from torch import Tensor


def sum_upsampled(feats: Sequence[Tensor]) -> Tensor:
    """Sum feature maps at the size of the first one.

    Args:
        feats: L >= 1 maps (B, C, h_l, w_l); ``feats[0]`` is the finest.
            The coarser ones are upsampled bilinearly (``align_corners``
            False) to ``feats[0]``'s size, which keeps ONNX tracing exact.

    Returns:
        (B, C, h_0, w_0).
    """
    if not feats:
        raise ValueError('sum_upsampled needs at least one feature map')
    merged = feats[0]
    for feat in feats[1:]:
        if feat.shape[:2] != merged.shape[:2]:
            raise ValueError(
                f'sum_upsampled: maps must share (B, C), got '
                f'{tuple(merged.shape[:2])} and {tuple(feat.shape[:2])}')
        merged = merged + F.interpolate(
            feat, size=merged.shape[-2:], mode='bilinear',
            align_corners=False)
    return merged
