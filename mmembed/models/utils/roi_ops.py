# Copyright (c) mmembed authors. All rights reserved.
"""RoI feature extraction with a graph that does not depend on the data.

mmdet 3.3's ``SingleRoIExtractor`` assigns each RoI to one FPN level and runs
RoIAlign only on the RoIs of that level (``nonzero`` + a Python ``if`` on how
many there are). A trace (``torch.jit.trace``, the TorchScript ONNX
exporter) freezes the RoI counts of the example input, so the exported graph
fails or is wrong on any other image. :func:`extract_roi_feats_traceable`
runs every level's RoIAlign on every RoI and keeps each RoI's own level by a
one-hot weight: the same values (one term of the sum is non-zero), L times
the RoIAlign work. Heads use it only while tracing.

Shape shorthand: R RoIs, C channels, S x S output size, L levels.
"""
from typing import Sequence

import torch
from torch import Tensor


def extract_roi_feats_traceable(extractor: torch.nn.Module,
                                feats: Sequence[Tensor],
                                rois: Tensor) -> Tensor:
    """``extractor(feats, rois)`` with a data-independent graph.

    Args:
        extractor: an mmdet ``SingleRoIExtractor`` (``roi_layers``,
            ``map_roi_levels``).
        feats: L maps (B, C, H_l, W_l), finest first.
        rois: (R, 5) ``[batch index, x1, y1, x2, y2]`` in input pixels.

    Returns:
        (R, C, S, S), equal to ``extractor(feats, rois)``.
    """
    rois = rois.type_as(feats[0])
    num_levels = len(feats)
    if num_levels == 1:
        return extractor.roi_layers[0](feats[0], rois)
    levels = extractor.map_roi_levels(rois, num_levels)
    out = None
    for level in range(num_levels):
        weight = (levels == level).to(feats[0].dtype)[:, None, None, None]
        term = extractor.roi_layers[level](feats[level], rois) * weight
        out = term if out is None else out + term
    return out


def roi_align_dtype(feats: Tensor) -> Tensor:
    """``feats`` in a dtype mmcv's RoIAlign has a kernel for.

    Under CPU autocast convolutions return bfloat16, for which mmcv 2.1's
    CPU RoIAlign has no kernel (``NotImplementedError: "ROIAlign_forward"
    not implemented for 'BFloat16'``). Those maps are cast to float32 (the
    crop is a weighted average: no precision to lose); every other dtype,
    CUDA half included, passes through unchanged.
    """
    if feats.dtype == torch.bfloat16 and feats.device.type == 'cpu':
        return feats.float()
    return feats
