# Copyright (c) mmembed authors. All rights reserved.
"""mmdet's ``SingleRoIExtractor`` with a multi-threaded CPU RoIAlign.

mmdet builds ``roi_layer=dict(type='RoIAlign')`` from ``mmcv.ops`` by name,
so a layer outside mmcv needs an extractor that builds it. This one builds
:class:`mmembed.models.utils.SeparableRoIAlign` (mmcv's ``RoIAlign`` whose
CPU forward is two batched matmuls; the same values) for ``RoIAlign`` and
leaves every other layer type to mmdet. On that path the
pooled features come back in ``torch.channels_last`` memory format (the
layout the layer computes, and the one CPU convolutions read fastest): at
inference written into a buffer that is not zero-filled first (each RoI's
row is written by its level), in training concatenated and gathered back
into RoI order (one gather in the backward, not one output-sized copy per
chunk). Everything else is ``SingleRoIExtractor``'s: the level mapping,
``finest_scale``, ``roi_scale_factor``, and on CUDA, while tracing or
exporting, or for layers that are not separable, its own forward.
"""
from typing import Iterator, List, Optional, Sequence, Tuple

import torch

from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
from mmdet.registry import MODELS
from torch import Tensor, nn

from ...utils.separable_roi_align import SeparableRoIAlign


@MODELS.register_module()
class SeparableRoIExtractor(SingleRoIExtractor):
    """``SingleRoIExtractor`` whose ``RoIAlign`` layers are
    :class:`SeparableRoIAlign` (same arguments, same results; faster on the
    CPU for fixed ``sampling_ratio``). Use it as ``type=`` in place of
    ``'SingleRoIExtractor'``; ``roi_layer`` stays ``dict(type='RoIAlign',
    ...)``."""

    #: RoIs pooled per call of the layer, grouped by size (see forward)
    rois_per_call = 16

    def build_roi_layers(self, layer_cfg: dict,
                         featmap_strides: List[int]) -> nn.ModuleList:
        cfg = layer_cfg.copy()
        if cfg.get('type') == 'RoIAlign':
            cfg['type'] = SeparableRoIAlign
        return super().build_roi_layers(cfg, featmap_strides)

    def forward(self,
                feats: Sequence[Tensor],
                rois: Tensor,
                roi_scale_factor: Optional[float] = None) -> Tensor:
        """(R, out_channels, S, S) features of ``rois`` (R, 5) pooled from
        ``feats`` (L maps (B, C, H_l, W_l), finest first)."""
        layer = self.roi_layers[0]
        if len(feats) == 1 or not (isinstance(layer, SeparableRoIAlign)
                                   and layer.is_separable_for(feats[0])):
            return super().forward(feats, rois, roi_scale_factor)
        rois = rois.type_as(feats[0])
        levels = self.map_roi_levels(rois, len(feats))
        if roi_scale_factor is not None:
            rois = self.roi_rescale(rois, roi_scale_factor)
        shape = (rois.shape[0], self.out_channels, *layer.output_size)
        # an unused level stays in the graph, as in mmdet (DDP expects the
        # same graph on every process)
        unused = [feat.sum() * 0. for level, feat in enumerate(feats)
                  if not (levels == level).any()]
        chunks = self._pool_in_chunks(feats, rois, levels)
        if torch.is_grad_enabled() and (rois.requires_grad or any(
                feat.requires_grad for feat in feats)):
            # training: the chunks are concatenated and put back in RoI
            # order by one gather. Writing them into a preallocated output
            # (as below) would record one index_put per chunk, and the
            # backward of each copies the whole output gradient: with
            # ISTR v2's hundreds of 28 x 28 RoIs per stage that was over a
            # third of a training step
            order, pieces = zip(*chunks) if rois.shape[0] else ((), ())
            if not pieces:
                out = feats[0].new_zeros(shape).contiguous(
                    memory_format=torch.channels_last)
            else:
                order = torch.cat(order)
                inverse = torch.empty_like(order)
                inverse[order] = torch.arange(
                    order.numel(), device=order.device)
                # advanced indexing keeps the channels-last layout
                out = torch.cat(pieces)[inverse]
        else:
            # inference: each chunk is written straight into one buffer
            out = torch.empty(
                shape,
                dtype=feats[0].dtype,
                device=feats[0].device,
                memory_format=torch.channels_last)
            for chunk, piece in chunks:
                out[chunk] = piece
        for term in unused:
            out = out + term
        return out

    def _pool_in_chunks(self, feats: Sequence[Tensor], rois: Tensor,
                        levels: Tensor) -> Iterator[Tuple[Tensor, Tensor]]:
        """Yield (RoI indices (n, ), pooled (n, C, S, S)) for the RoIs of
        every level, at most :attr:`rois_per_call` per call."""
        # the layer pads every RoI of a call to the call's largest window:
        # RoIs of similar size go together (largest side on the map), a
        # few calls per level instead of one
        sides = torch.maximum(rois[:, 3] - rois[:, 1], rois[:, 4] - rois[:, 2])
        for level, feat in enumerate(feats):
            inds = (levels == level).nonzero(as_tuple=True)[0]
            if inds.numel() == 0:
                continue
            inds = inds[sides[inds].argsort()]
            for chunk in inds.split(self.rois_per_call):
                # under autocast the matmuls give bfloat16/half; mmcv's
                # kernel (and so mmdet's extractor) keeps the maps' dtype,
                # which is what the heads after it expect
                yield chunk, self.roi_layers[level](
                    feat, rois[chunk]).to(feats[0].dtype)


def channels_last_for_pooling(feats: Sequence[Tensor],
                              extractors: Sequence[nn.Module]
                              ) -> Tuple[Tensor, ...]:
    """``feats`` in ``torch.channels_last`` memory format when every one of
    ``extractors`` pools them by matmuls (a :class:`SeparableRoIExtractor`
    on the CPU, see :meth:`SeparableRoIAlign.is_separable_for`); else
    ``feats`` unchanged.

    The matmul path gathers each RoI's window cell by cell; on a
    channels-last map a cell is one contiguous C-vector (a row copy), on an
    NCHW map C scattered floats (about 1.5x the time per call on ISTR's
    boxes). A head that pools the same maps many times (ISTR's six box
    stages and its mask branch) converts them once, here, and passes the
    result to every call. The values pooled do not change. Any other
    extractor keeps the NCHW maps: mmcv's RoIAlign kernels read NCHW memory
    whatever the strides, so they pool wrong values from a channels-last
    map, without an error.

    Args:
        feats: L maps (B, C, H_l, W_l).
        extractors: the RoI extractors that will read them.

    Returns:
        the L maps, same shapes and values.
    """
    feats = tuple(feats)
    if not feats or not extractors:
        return feats
    for extractor in extractors:
        layer = extractor.roi_layers[0] if isinstance(
            extractor, SeparableRoIExtractor) else None
        if not (isinstance(layer, SeparableRoIAlign)
                and layer.is_separable_for(feats[0])):
            return feats
    return tuple(
        f.contiguous(memory_format=torch.channels_last) for f in feats)
