# Copyright (c) mmembed authors. All rights reserved.
"""RoIAlign on one chosen neck output, e.g. SharpMaskFPN's mask map.

mmdet's ``StandardRoIHead`` hands its mask RoI extractor the first
``num_inputs`` neck outputs (``x[:extractor.num_inputs]``), so a
``SingleRoIExtractor`` can only read FPN's finest levels. A neck that
appends a map for the masks alone (:class:`mmembed.models.SharpMaskFPN`:
FPN's levels, then a stride-2 mask map) needs an extractor that picks it.
"""
import sys
from typing import Optional, Sequence, Tuple

from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
from mmdet.registry import MODELS
from torch import Tensor

from ....utils.arg_checks import check_init_args


@MODELS.register_module()
@check_init_args
class MaskMapRoIExtractor(SingleRoIExtractor):
    """``SingleRoIExtractor`` on the neck outputs ``in_levels``.

    Args:
        in_levels: indices of the neck outputs to pool from, one per entry
            of ``featmap_strides`` (default: the last output alone, the
            mask map of ``SharpMaskFPN``); negative indices count from the
            end.
        **kwargs: ``SingleRoIExtractor``'s (``roi_layer``,
            ``out_channels``, ``featmap_strides``: here the strides of the
            chosen maps, e.g. ``[2]``).

    ``forward(feats, rois)`` takes every neck output (:attr:`num_inputs` is
    unbounded, so the RoI head's ``x[:num_inputs]`` keeps them all) and
    returns (n, ``out_channels``, S, S) RoI features of the chosen maps, as
    ``SingleRoIExtractor`` would for those maps alone.
    """

    def __init__(self, *, in_levels: Sequence[int] = (-1, ),
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.in_levels = tuple(in_levels)
        if len(self.in_levels) != len(self.featmap_strides):
            raise ValueError(
                f'MaskMapRoIExtractor: in_levels {self.in_levels} must give '
                f'one neck output per featmap_strides entry '
                f'{list(self.featmap_strides)}')

    @property
    def num_inputs(self) -> int:
        """Unbounded: the RoI head slices ``x[:num_inputs]`` before calling
        :meth:`forward`, which must still see the last outputs."""
        return sys.maxsize

    def forward(self,
                feats: Tuple[Tensor, ...],
                rois: Tensor,
                roi_scale_factor: Optional[float] = None) -> Tensor:
        """RoIAlign on ``feats[in_levels]``; rois (n, 5) ``(batch, x1, y1,
        x2, y2)`` in input pixels."""
        try:
            chosen = tuple(feats[level] for level in self.in_levels)
        except IndexError:
            raise ValueError(
                f'MaskMapRoIExtractor: in_levels {self.in_levels} but the '
                f'neck gave {len(feats)} outputs') from None
        for level, feat, stride in zip(self.in_levels, chosen,
                                       self.featmap_strides):
            if feat.shape[1] != self.out_channels:
                raise ValueError(
                    f'MaskMapRoIExtractor: neck output {level} has '
                    f'{feat.shape[1]} channels, out_channels is '
                    f'{self.out_channels}')
        return super().forward(chosen, rois, roi_scale_factor)
