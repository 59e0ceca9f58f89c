# Copyright (c) mmembed authors. All rights reserved.
"""mmdet's ResNet that also returns its stride-2 stem (C1).

SharpMask's last refinement step reads the stem (conv1 + BN + ReLU, before
the max-pool: 64 channels at stride 2), which mmdet's ``ResNet`` never
returns. Everything else (weights, keys, frozen stages, ``norm_eval``,
``init_cfg``) is mmdet's, so torchvision / mmdet ResNet checkpoints load
unchanged.
"""
from typing import Tuple

from mmdet.models.backbones import ResNet
from mmdet.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class ResNetWithStem(ResNet):
    """``ResNet`` whose outputs start with the stem feature.

    ``forward`` returns ``(C1, *outs)``: C1 is (B, stem_channels, H/2, W/2)
    (after the stem's ReLU, before the max-pool), followed by the stages in
    ``out_indices`` exactly as ``ResNet`` returns them. With
    ``out_indices=(0, 1, 2)`` and ``num_stages=3`` that is the DeepMask
    trunk (C1, C2, C3, C4 at strides 2, 4, 8, 16; the release drops
    ``layer4``).
    """

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(B, 3, H, W) -> (C1, *stages in out_indices)."""
        if self.deep_stem:
            stem = self.stem(x)
        else:
            stem = self.relu(self.norm1(self.conv1(x)))
        x = self.maxpool(stem)
        outs = [stem]
        for i, layer_name in enumerate(self.res_layers):
            x = getattr(self, layer_name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
