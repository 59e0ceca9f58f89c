# Copyright (c) mmembed authors. All rights reserved.
"""One ISTR refinement stage: mmdet's DIIHead + a mask-code branch.

Shape shorthand: B images, Q queries, C channels, K classes, D code length,
P matched queries (all images), S x S codec mask size.
"""
from typing import Dict

import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmdet.models.roi_heads.bbox_heads import DIIHead
from mmdet.registry import MODELS
from mmdet.utils import ConfigType
from torch import Tensor

from ....utils.arg_checks import check_init_args


@MODELS.register_module()
@check_init_args
class ISTRStageHead(DIIHead):
    """Dynamic instance interaction (Sparse R-CNN) + ISTR v1's mask branch.

    Adds to :class:`DIIHead` an MLP that predicts a D-dim mask code per query
    (``num_mask_fcs`` x [Linear (no bias) + LN + act] then Linear(C, D)), and
    makes the activation of the cls/reg/mask MLPs a config key: ISTR v1 uses
    ELU everywhere (``hujiecpp/ISTR projects/ISTR/istr/head.py::RCNNHead``,
    ``specs/methods.md`` 3.1), with 3 FCs for cls, reg and mask; the FFN and
    DynamicConv activations are DIIHead's own ``ffn_act_cfg`` /
    ``dynamic_conv_cfg.act_cfg`` keys. Box, class and IoU losses are
    DIIHead's (``loss_cls``, ``loss_bbox``, ``loss_iou``);
    :meth:`loss_mask` adds the code and dice losses of ISTR v1 (3.3).

    Args:
        code_dim: D, the codec's code length (ISTR v1: 60).
        num_mask_fcs: hidden FCs of the mask branch (ISTR: 3).
        fc_act_cfg: activation of the cls / reg / mask MLPs (ISTR: ELU;
            mmdet's DIIHead hard-codes ReLU).
        loss_mask_code: loss on codes; ISTR v1: MSE summed over the D
            dimensions, divided by D and the number of GT (the head passes
            ``avg_factor * D``), weight 2.
        loss_mask_dice: loss on decoded S x S masks vs binary GT; ISTR v1:
            ``1 - 2 sum(pq) / (sum p^2 + sum q^2 + 1e-5)`` (mmdet DiceLoss,
            ``naive_dice=False``, eps 5e-6 per sum), weight 2.
        **kwargs: go to :class:`DIIHead`.
    """

    def __init__(self,
                 *,
                 code_dim: int = 60,
                 num_mask_fcs: int = 3,
                 fc_act_cfg: ConfigType = dict(type='ELU'),
                 loss_mask_code: ConfigType = dict(
                     type='MSELoss', reduction='mean', loss_weight=2.0),
                 loss_mask_dice: ConfigType = dict(
                     type='DiceLoss',
                     use_sigmoid=False,
                     activate=False,
                     naive_dice=False,
                     eps=5e-6,
                     reduction='mean',
                     loss_weight=2.0),
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.code_dim = code_dim
        # DIIHead builds its cls / reg MLPs with ReLU: swap the activations
        for fcs in (self.cls_fcs, self.reg_fcs):
            for idx, layer in enumerate(fcs):
                if isinstance(layer, nn.ReLU):
                    fcs[idx] = build_activation_layer(fc_act_cfg)
        self.mask_fcs = nn.ModuleList()
        for _ in range(num_mask_fcs):
            self.mask_fcs.extend([
                nn.Linear(self.in_channels, self.in_channels, bias=False),
                build_norm_layer(dict(type='LN'), self.in_channels)[1],
                build_activation_layer(fc_act_cfg)
            ])
        self.fc_mask = nn.Linear(self.in_channels, code_dim)
        self.loss_mask_code = MODELS.build(loss_mask_code)
        self.loss_mask_dice = MODELS.build(loss_mask_dice)

    def forward(self, roi_feat: Tensor, proposal_feat: Tensor) -> tuple:
        """DIIHead's forward plus mask codes.

        Args:
            roi_feat: (B * Q, C, 7, 7) RoI features of the current boxes.
            proposal_feat: (B, Q, C) query features from the previous stage.

        Returns:
            ``cls_score`` (B, Q, K), ``bbox_delta`` (B, Q, 4), ``obj_feat``
            (B, Q, C) (the next stage's query features), ``attn_feats``
            (B, Q, C), ``mask_codes`` (B, Q, D).
        """
        cls_score, bbox_delta, obj_feat, attn_feats = super().forward(
            roi_feat, proposal_feat)
        mask_feat = obj_feat
        for layer in self.mask_fcs:
            mask_feat = layer(mask_feat)
        return (cls_score, bbox_delta, obj_feat, attn_feats,
                self.fc_mask(mask_feat))

    def loss_mask(self, pos_code_preds: Tensor, pos_mask_targets: Tensor,
                  codec: nn.Module, avg_factor: Tensor) -> Dict[str, Tensor]:
        """Code and dice losses of the matched queries.

        Args:
            pos_code_preds: (P, D) predicted codes.
            pos_mask_targets: (P, S, S) {0, 1} GT masks cropped to their GT
                box (the codec encodes them, with its random soft targets).
            codec: the mask codec (``encode`` / ``decode``).
            avg_factor: number of GT, averaged over processes (ISTR's
                ``num_boxes``), a tensor.

        Returns:
            ``loss_mask_code`` and ``loss_mask_dice``, connected to the
            graph also when P = 0.
        """
        if len(pos_code_preds) == 0:
            zero = pos_code_preds.sum() * 0
            return dict(loss_mask_code=zero, loss_mask_dice=zero)
        code_targets = codec.encode(pos_mask_targets).detach()
        # unclamped where the codec clamps at inference (DCT): clamped
        # pixels would get no dice gradient. A codec without
        # decode_for_loss (a user's own) is trained through decode
        decode = getattr(codec, 'decode_for_loss', codec.decode)
        mask_probs = decode(pos_code_preds)
        return dict(
            # ISTR divides the summed squared error by num_boxes and by D
            loss_mask_code=self.loss_mask_code(
                pos_code_preds, code_targets,
                avg_factor=avg_factor * self.code_dim),
            loss_mask_dice=self.loss_mask_dice(
                mask_probs.flatten(1), pos_mask_targets.flatten(1),
                avg_factor=avg_factor))
