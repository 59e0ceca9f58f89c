# Copyright (c) mmembed authors. All rights reserved.
"""BlendMask: Top-Down Meets Bottom-Up for Instance Segmentation.

Paper: Chen et al., CVPR 2020 (arXiv 2001.00309). Official code (the
reference for every default here): ``aim-uofa/AdelaiDet``
``adet/modeling/blendmask/{blendmask,basis_module,blender}.py`` and
``adet/modeling/fcos/{fcos,fcos_outputs}.py``; constants in
``specs/methods.md`` section 2.

Shape shorthand: B images, K bases, M attention size (M x M per base),
R bottom (RoI) resolution, P positives (all images), G ground truths (all
images), N detections of one image, (h, w) the stride-4 basis map,
(h8, w8) the P3 map, C classes.

Each instance mask is a *blend*: the K bases are cropped to the instance's
box with RoIAlign (R x R), its attention (K x M x M, predicted by the box
head at its location) is upsampled bilinearly to R x R and soft-maxed over
K, and the product is summed over K. The result is a mask logit map
(R x R) inside the box.

Seed blog / paper vs released code: the released code is the default and
the differences are config keys (``docs/blendmask.md``):

==========================  ==========================  ===================
key                         AdelaiDet (default)         alternative
==========================  ==========================  ===================
box ``use_scale``           False (scales frozen 1.0)   True (mmdet FCOS)
box ``thresh_with_ctr``     True (threshold cls x ctr)  False (cls only)
box ``sqrt_score``          True                        False
mask ``loss_semantic``      CE x 0.3 on P3, target      None (off; AdelaiDet
                            built from instance masks   ``LOSS_ON False``)
mask ``max_pos_to_train``   -1 in AdelaiDet (no cap)    we default to 1000
==========================  ==========================  ===================
"""
import torch.nn as nn
from mmdet.registry import MODELS
from torch import Tensor

from ...utils.arg_checks import check_init_args
from .fcos_code_head import FCOSCodeHead


@MODELS.register_module()
@check_init_args
class BlendMaskBoxHead(FCOSCodeHead):
    """FCOS head that also predicts BlendMask's attention (the "top layer":
    one 3x3 conv, K * M * M channels) on the box tower of every level.

    Defaults follow AdelaiDet's BlendMask FCOS (``Base-BlendMask.yaml``):
    no per-level scales, threshold on cls x ctr, score sqrt(cls x ctr); the
    NMS IoU 0.6 and top-100 live in ``test_cfg``. The attention conv is
    initialised Normal(0, 0.01) with bias 0 by FCOSHead's ``init_cfg``, as
    the official ``top_layer``.

    Args:
        num_bases (int): K. Defaults to 4.
        attn_size (int): M. Defaults to 14.
        use_scale, thresh_with_ctr, sqrt_score, num_share_convs: see
            :class:`FCOSCodeHead`; AdelaiDet values by default.
        **kwargs: Passed unchanged to :class:`mmdet.models.FCOSHead`.
    """

    def __init__(self,
                 *,
                 num_bases: int = 4,
                 attn_size: int = 14,
                 use_scale: bool = False,
                 thresh_with_ctr: bool = True,
                 sqrt_score: bool = True,
                 **kwargs) -> None:
        if num_bases < 1 or attn_size < 1:
            raise ValueError('num_bases and attn_size must be >= 1, got '
                             f'{num_bases} and {attn_size}')
        self.num_bases = num_bases
        self.attn_size = attn_size
        # read by FCOSCodeHead.__init__ and _init_layers
        self.code_channels = num_bases * attn_size * attn_size
        super().__init__(
            use_scale=use_scale,
            thresh_with_ctr=thresh_with_ctr,
            sqrt_score=sqrt_score,
            **kwargs)

    def _init_layers(self) -> None:
        super()._init_layers()
        self.conv_attn = nn.Conv2d(
            self.feat_channels, self.code_channels, 3, padding=1)

    def forward_code(self, cls_feat: Tensor, reg_feat: Tensor,
                     bbox_pixels: Tensor, level: int) -> Tensor:
        """(B, K * M * M, H, W) attention logits from the box tower."""
        return self.conv_attn(reg_feat)
