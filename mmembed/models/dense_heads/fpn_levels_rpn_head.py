# Copyright (c) mmembed authors. All rights reserved.
"""mmdet's RPNHead on the first neck outputs only.

``AnchorHead.forward`` runs on every neck output and its anchor generator
then expects one stride per output; a neck that appends a map for other
heads (:class:`mmembed.models.SharpMaskFPN`'s stride-2 mask map) would break
it. FCOS-family heads zip the outputs with their strides and need nothing.
"""
from typing import Tuple

from mmdet.models.dense_heads import RPNHead
from mmdet.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class FPNLevelsRPNHead(RPNHead):
    """``RPNHead`` that reads the first ``prior_generator.num_levels`` neck
    outputs (one per anchor stride) and leaves the rest to other heads."""

    def forward(self, x: Tuple[Tensor, ...]) -> Tuple[list, list]:
        """x: the neck outputs, (B, C, H_l, W_l) each; the anchor levels
        come first."""
        num_levels = self.prior_generator.num_levels
        if len(x) < num_levels:
            raise ValueError(
                f'FPNLevelsRPNHead: the anchor generator has {num_levels} '
                f'strides but the neck gave only {len(x)} outputs')
        return super().forward(tuple(x[:num_levels]))
