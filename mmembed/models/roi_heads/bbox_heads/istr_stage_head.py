# Copyright (c) mmembed authors. All rights reserved.
"""One ISTR refinement stage: mmdet's DIIHead + a mask-code branch
(v1: an MLP on the query feature; v2: convs on RoI features of the
stage's predicted boxes).

Shape shorthand: B images, Q queries, C channels, K classes, D code length,
P matched queries (all images), S x S codec mask size.
"""
from typing import Dict, Optional, Union

import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmdet.models.roi_heads.bbox_heads import DIIHead
from mmdet.registry import MODELS
from mmdet.utils import ConfigType
from torch import Tensor

from ....utils.arg_checks import check_init_args

MASK_BRANCHES = ('mlp', 'conv')
# False: v2 (the RoI alone); 'add' (True): + Linear(object feature) at every
# position; 'dynamic': QueryInst's instance-interactive conv
QUERY_FUSIONS = (False, 'add', 'dynamic')
# 'fc': v2 (a conv covering the 7 x 7 map, a global FC, regresses the code);
# 'dense': per-pixel mask logits whose codec encoding is the code
CODE_HEADS = ('fc', 'dense')


@MODELS.register_module()
@check_init_args
class ISTRStageHead(DIIHead):
    """Dynamic instance interaction (Sparse R-CNN) + ISTR's mask branch.

    Adds to :class:`DIIHead` a branch that predicts a D-dim mask code per
    query, one of (``mask_branch``):

    - ``'mlp'`` (ISTR v1): ``num_mask_fcs`` x [Linear (no bias) + LN + act]
      then Linear(C, D) on the query's object feature (:meth:`forward`
      returns the codes);
    - ``'conv'`` (ISTR v2, ``hujiecpp/ISTR@1dac079 head.py::RCNNHead
      .mask_module``): on ``mask_roi_size`` x ``mask_roi_size`` (28) RoI
      features of the stage's predicted boxes, [Conv 4x4 stride 2 + BN +
      act] x 2 then a Conv whose kernel covers the remaining map
      (7 x 7 -> 1 x 1) with D outputs (:meth:`forward_mask_conv`; the RoI
      head pools the features, :meth:`forward` returns no codes); or,
      with mmembed's ``mask_code_head='dense'``, per-pixel mask logits
      that the codec encodes (see the argument).

    It also makes the activation of the cls/reg/mask branches a config key
    (``fc_act_cfg``): ISTR uses
    ELU everywhere (``hujiecpp/ISTR projects/ISTR/istr/head.py::RCNNHead``,
    ``specs/methods.md`` 3.1), with 3 FCs for cls, reg and mask; the FFN and
    DynamicConv activations are DIIHead's own ``ffn_act_cfg`` /
    ``dynamic_conv_cfg.act_cfg`` keys. Box, class and IoU losses are
    DIIHead's (``loss_cls``, ``loss_bbox``, ``loss_iou``);
    :meth:`loss_mask` adds the code and dice losses of ISTR v1 (3.3).

    Args:
        code_dim: D, the codec's code length (ISTR v1: 60, v2: 256).
        mask_branch: ``'mlp'`` (v1) or ``'conv'`` (v2), see above.
        num_mask_fcs: hidden FCs of the MLP mask branch (ISTR v1: 3).
        mask_roi_size: side of the RoI features the conv branch reads
            (v2: 28); must be a multiple of 4.
        fc_act_cfg: activation of the cls / reg MLPs and of the mask
            branch (ISTR: ELU; mmdet's DIIHead hard-codes ReLU).
        mask_query_fusion: conv branch only, mmembed's key (False: v2,
            the branch sees the RoI alone). Makes the mask losses train
            the query features and the stages that produce them, as
            QueryInst's dynamic mask head (which reads them) does:
            ``'add'`` (or True) adds a linear projection of the query's
            object feature to every position of its RoI features before
            the convs; ``'dynamic'`` passes the RoI features through
            QueryInst's instance-interactive conv first (``DynamicConv``
            with ``mask_dynamic_conv_cfg``: per-query 1x1 convs C -> 64 ->
            C generated from the object feature, LN + ReLU, no projection),
            so the query decides what every RoI position carries.
        mask_code_head: conv branch only, mmembed's key: how the code is
            made from the branch's features. ``'fc'`` (v2): the last conv
            covers the whole 7 x 7 map, a global FC that regresses the D
            numbers, so every output reads every position through its own
            weights and the branch must learn where each mask pixel lies
            from the data. ``'dense'``: after v2's first strided conv
            (M -> M / 2), ``num_dense_convs`` 3 x 3 convs, a 2 x 2
            transposed conv back to M and a 1 x 1 conv predict per-pixel
            mask logits (QueryInst's FCN mask head, translation
            equivariant); their sigmoid, resized to the codec's S x S, is
            encoded by the codec: the code is the codec's projection of a
            dense mask (low-pass for DCT), and decoding, the code matching
            cost and the code loss stay ISTR's.
        num_dense_convs: 3 x 3 convs of the ``'dense'`` code head.
        mask_dynamic_conv_cfg: the ``DynamicConv`` of ``'dynamic'``
            fusion; ``in_channels``, ``out_channels`` and
            ``input_feat_shape`` are filled in (C, C, ``mask_roi_size``).
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
                 mask_branch: str = 'mlp',
                 num_mask_fcs: int = 3,
                 mask_roi_size: int = 28,
                 mask_query_fusion: Union[bool, str] = False,
                 mask_code_head: str = 'fc',
                 num_dense_convs: int = 2,
                 mask_dynamic_conv_cfg: ConfigType = dict(
                     type='DynamicConv',
                     feat_channels=64,
                     with_proj=False,
                     act_cfg=dict(type='ReLU', inplace=True),
                     norm_cfg=dict(type='LN')),
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
        if mask_branch not in MASK_BRANCHES:
            raise ValueError(f'mask_branch must be one of {MASK_BRANCHES}, '
                             f'got {mask_branch!r}')
        if mask_branch == 'conv' and (mask_roi_size < 4
                                      or mask_roi_size % 4):
            raise ValueError('the conv mask branch halves its input twice: '
                             'mask_roi_size must be a positive multiple of '
                             f'4, got {mask_roi_size}')
        if mask_query_fusion is True:
            mask_query_fusion = 'add'
        if mask_query_fusion not in QUERY_FUSIONS:
            raise ValueError(f'mask_query_fusion must be one of '
                             f'{QUERY_FUSIONS} (True means \'add\'), got '
                             f'{mask_query_fusion!r}')
        if mask_code_head not in CODE_HEADS:
            raise ValueError(f'mask_code_head must be one of {CODE_HEADS}, '
                             f'got {mask_code_head!r}')
        if mask_code_head != 'fc' and mask_branch != 'conv':
            raise ValueError('mask_code_head is a key of the conv mask '
                             'branch (mask_branch="conv")')
        if num_dense_convs < 0:
            raise ValueError('num_dense_convs must be >= 0, got '
                             f'{num_dense_convs}')
        if mask_query_fusion and mask_branch != 'conv':
            raise ValueError('mask_query_fusion is a key of the conv mask '
                             'branch (mask_branch="conv")')
        super().__init__(**kwargs)
        self.code_dim = code_dim
        self.mask_query_fusion = mask_query_fusion
        self.mask_code_head = mask_code_head
        self.mask_branch = mask_branch
        self.mask_roi_size = mask_roi_size
        # DIIHead builds its cls / reg MLPs with ReLU: swap the activations
        for fcs in (self.cls_fcs, self.reg_fcs):
            for idx, layer in enumerate(fcs):
                if isinstance(layer, nn.ReLU):
                    fcs[idx] = build_activation_layer(fc_act_cfg)
        channels = self.in_channels
        if mask_branch == 'mlp':
            self.mask_fcs = nn.ModuleList()
            for _ in range(num_mask_fcs):
                self.mask_fcs.extend([
                    nn.Linear(channels, channels, bias=False),
                    build_norm_layer(dict(type='LN'), channels)[1],
                    build_activation_layer(fc_act_cfg)
                ])
            self.fc_mask = nn.Linear(channels, code_dim)
        elif mask_code_head == 'fc':
            # v2's mask_module: 28 -> 14 -> 7, then one 7 x 7 "FC" conv
            self.mask_convs = nn.Sequential(
                nn.Conv2d(channels, channels, 4, 2, 1),
                nn.BatchNorm2d(channels),
                build_activation_layer(fc_act_cfg),
                nn.Conv2d(channels, channels, 4, 2, 1),
                nn.BatchNorm2d(channels),
                build_activation_layer(fc_act_cfg),
                nn.Conv2d(channels, code_dim, mask_roi_size // 4))
        else:
            # 28 -> 14 as v2, 3 x 3 convs at 14, back to 28, 1 mask logit
            layers = [
                nn.Conv2d(channels, channels, 4, 2, 1),
                nn.BatchNorm2d(channels),
                build_activation_layer(fc_act_cfg)
            ]
            for _ in range(num_dense_convs):
                layers += [
                    nn.Conv2d(channels, channels, 3, 1, 1),
                    nn.BatchNorm2d(channels),
                    build_activation_layer(fc_act_cfg)
                ]
            layers += [
                nn.ConvTranspose2d(channels, channels, 2, 2),
                build_activation_layer(fc_act_cfg),
                nn.Conv2d(channels, 1, 1)
            ]
            self.mask_convs = nn.Sequential(*layers)
        if mask_branch == 'conv':
            if mask_query_fusion == 'add':
                self.mask_query_proj = nn.Linear(channels, channels)
            elif mask_query_fusion == 'dynamic':
                dynamic_cfg = dict(mask_dynamic_conv_cfg)
                dynamic_cfg.update(
                    in_channels=channels,
                    out_channels=channels,
                    input_feat_shape=mask_roi_size)
                self.mask_dynamic_conv = MODELS.build(dynamic_cfg)
        # init: DIIHead.init_weights makes every matrix (conv kernels too)
        # xavier-uniform and leaves biases and BN at PyTorch's defaults, as
        # v2's DynamicHead._reset_parameters
        self.loss_mask_code = MODELS.build(loss_mask_code)
        self.loss_mask_dice = MODELS.build(loss_mask_dice)

    def forward(self, roi_feat: Tensor, proposal_feat: Tensor) -> tuple:
        """DIIHead's forward plus mask codes (MLP branch).

        Args:
            roi_feat: (B * Q, C, 7, 7) RoI features of the current boxes.
            proposal_feat: (B, Q, C) query features from the previous stage.

        Returns:
            ``cls_score`` (B, Q, K), ``bbox_delta`` (B, Q, 4), ``obj_feat``
            (B, Q, C) (the next stage's query features), ``attn_feats``
            (B, Q, C), ``mask_codes`` (B, Q, D), or None for the conv branch
            (see :meth:`forward_mask_conv`).
        """
        cls_score, bbox_delta, obj_feat, attn_feats = super().forward(
            roi_feat, proposal_feat)
        if self.mask_branch == 'conv':
            return cls_score, bbox_delta, obj_feat, attn_feats, None
        mask_feat = obj_feat
        for layer in self.mask_fcs:
            mask_feat = layer(mask_feat)
        return (cls_score, bbox_delta, obj_feat, attn_feats,
                self.fc_mask(mask_feat))

    def forward_mask_conv(self,
                          mask_roi_feat: Tensor,
                          obj_feat: Optional[Tensor] = None,
                          codec: Optional[nn.Module] = None) -> Tensor:
        """Codes of the conv branch (ISTR v2).

        Args:
            mask_roi_feat: (R, C, M, M) RoI features of predicted boxes,
                M = ``mask_roi_size``.
            obj_feat: (R, C) the object features of the RoIs' queries;
                read (and required) with ``mask_query_fusion``.
            codec: the mask codec (``encode``, ``mask_size``, ``code_dim``);
                read (and required) by the ``'dense'`` code head.

        Returns:
            (R, D) mask codes.
        """
        if self.mask_branch != 'conv':
            raise RuntimeError('forward_mask_conv needs mask_branch="conv"')
        size = self.mask_roi_size
        if mask_roi_feat.dim() != 4 or tuple(
                mask_roi_feat.shape[1:]) != (self.in_channels, size, size):
            raise ValueError(f'the conv mask branch reads (R, '
                             f'{self.in_channels}, {size}, {size}) RoI '
                             f'features, got {tuple(mask_roi_feat.shape)}')
        if self.mask_query_fusion:
            if obj_feat is None or tuple(obj_feat.shape) != (
                    len(mask_roi_feat), self.in_channels):
                raise ValueError(
                    'mask_query_fusion needs the (R, C) object features of '
                    f'the RoIs\' queries, got '
                    f'{None if obj_feat is None else tuple(obj_feat.shape)}'
                    f' for {len(mask_roi_feat)} RoIs')
            if self.mask_query_fusion == 'add':
                mask_roi_feat = mask_roi_feat + self.mask_query_proj(
                    obj_feat)[:, :, None, None]
            else:
                # (R, M * M, C) per-query 1x1 convs, back to (R, C, M, M)
                mask_roi_feat = self.mask_dynamic_conv(
                    obj_feat, mask_roi_feat).transpose(1, 2).reshape(
                        mask_roi_feat.shape)
        if self.mask_code_head == 'fc':
            return self.mask_convs(mask_roi_feat).flatten(1)
        if codec is None or getattr(codec, 'code_dim', None) != self.code_dim:
            raise ValueError(
                'the dense code head encodes its masks with the codec: '
                f'pass the mask codec (code_dim {self.code_dim}), got '
                f'{None if codec is None else type(codec).__name__}')
        # logits are resized before the sigmoid (sharper than resizing
        # probabilities), then projected onto the codec's basis
        logits = F.interpolate(
            self.mask_convs(mask_roi_feat),
            size=(codec.mask_size, codec.mask_size),
            mode='bilinear',
            align_corners=False)
        return codec.encode(logits.sigmoid().squeeze(1), random=False)

    def loss_mask(self, pos_code_preds: Tensor, pos_mask_targets: Tensor,
                  codec: nn.Module, avg_factor: Tensor) -> Dict[str, Tensor]:
        """Code and dice losses of the matched queries.

        Args:
            pos_code_preds: (P, D) predicted codes.
            pos_mask_targets: (P, S, S) {0, 1} GT masks cropped to their GT
                box (v1) or to the matched query's predicted box (v2); the
                codec encodes them (PCA: with its random soft targets).
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
