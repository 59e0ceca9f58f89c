# Copyright (c) mmembed authors. All rights reserved.
"""BlendMask's mask head: the bottom (basis) module, the blender, the mask
and semantic losses and mask inference (AdelaiDet
``adet/modeling/blendmask/{basis_module,blender}.py``). The box head that
predicts the attentions is :class:`BlendMaskBoxHead`
(``blendmask_head.py``, which also holds the overview and the table of
released-code vs paper keys).

Shape shorthand: B images, K bases, M attention size (M x M per base),
R bottom (RoI) resolution, P positives (all images), G ground truths (all
images), N detections of one image, (h, w) the stride-4 basis map,
(h8, w8) the P3 map, C classes.
"""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmcv.ops import RoIAlign
from mmdet.models.dense_heads.base_mask_head import BaseMaskHead
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import (ConfigType, InstanceList, OptConfigType,
                         OptInstanceList, OptMultiConfig, reduce_mean)
from mmengine.structures import InstanceData
from torch import Tensor

from ...utils.arg_checks import check_init_args, check_keys
from ..utils.level_fusion import sum_upsampled
from ..utils.mask_ops import (PASTE_IMPLS, clean_instance_masks,
                              paste_box_masks, read_mask_clean)
from ..utils.roi_ops import roi_align_dtype
from .fcos_code_head import BOX_TEST_CFG_KEYS


ATTN_INTERPS = ('bilinear', 'nearest')


def blend_bases(pooled_bases: Tensor,
                attns: Tensor,
                interp: str = 'bilinear') -> Tensor:
    """BlendMask's blender (AdelaiDet ``Blender.merge_bases``).

    Args:
        pooled_bases: (N, K, R, R) bases cropped to each instance's box.
        attns: (N, K * M * M) attention of each instance.
        interp: how the attention is resized M -> R: ``'bilinear'``
            (``align_corners=False``; AdelaiDet ``TOP_INTERP`` default) or
            ``'nearest'`` (also accepted by ``TOP_INTERP``).

    Returns:
        (N, R, R) mask logits: ``sum_k softmax_k(up(attn))_k * base_k``;
        the resize comes *before* the softmax, as in the released code.
    """
    if interp not in ATTN_INTERPS:
        raise ValueError(f'interp must be one of {ATTN_INTERPS}, got '
                         f'{interp!r}')
    num, num_bases, height, width = pooled_bases.shape
    if attns.dim() != 2 or len(attns) != num or \
            attns.shape[1] % num_bases:
        raise ValueError(f'attns must be ({num}, {num_bases} * M * M) for '
                         f'pooled_bases {tuple(pooled_bases.shape)}, got '
                         f'{tuple(attns.shape)}')
    attn_size = round((attns.shape[1] // num_bases)**0.5)
    if num_bases * attn_size**2 != attns.shape[1]:
        raise ValueError(f'attns width {attns.shape[1]} is not K * M * M '
                         f'with K = {num_bases}')
    attn_maps = attns.reshape(num, num_bases, attn_size, attn_size)
    weights = F.interpolate(
        attn_maps, size=(height, width), mode=interp,
        align_corners=False if interp == 'bilinear' else None).softmax(dim=1)
    return (pooled_bases * weights).sum(dim=1)


@MODELS.register_module()
@check_init_args
class BlenderHead(BaseMaskHead):
    """BlendMask's bottom module (bases), blender, mask loss and inference.

    Bases (AdelaiDet ``ProtoNet``): each FPN level of ``in_levels`` (P3-P5)
    is refined by a 3x3 conv to ``feat_channels``, the coarser ones are
    resized bilinearly to the first and summed; then ``num_convs`` 3x3
    convs, x2 bilinear upsampling, one 3x3 conv and a 1x1 conv to K bases
    at ``in_stride / 2`` (stride 4).

    Training: the bases are cropped with RoIAlign on the *GT* box of each
    positive's assigned GT and blended with the positive's attention; the
    target is the GT mask cropped to the same box (``crop_and_resize``).
    Per positive, BCE is averaged over its R x R pixels and weighted by its
    centerness target; the sum is divided by the sum of those centerness
    targets (averaged over GPUs), as AdelaiDet normalises both its box and
    mask losses. Inference crops the bases on the predicted boxes.

    Works behind any :class:`FCOSCodeHead` whose per-location codes hold
    the attention, e.g. :class:`BlendMaskBoxHead`, or another box head with
    a wider code via ``attn_offset``.

    Args:
        num_classes (int): C, for the auxiliary semantic head (C + 1
            outputs, 0 = background).
        in_channels (int | sequence[int]): channels of the levels the
            bases read: one int for all, or one per ``in_levels`` (e.g. a
            64-channel SharpMaskFPN mask map beside 256-channel FPN
            levels).
        feat_channels (int): basis module width (AdelaiDet ``CONVS_DIM``).
        num_bases (int): K; must equal the box head's.
        attn_size (int): M; must equal the box head's.
        num_convs (int): convs between the level sum and the upsampling
            (AdelaiDet ``NUM_CONVS``: 3; 2 in the 550 / RT models).
        in_levels (sequence[int]): FPN levels the bases read (0 = P3).
        in_stride (int): stride of ``in_levels[0]``; the bases have half
            (or the same without ``basis_upsample``).
        basis_upsample (bool): the x2 bilinear upsampling of the basis
            tower (AdelaiDet: True, bases at stride 4 from P3). False keeps
            the bases at ``in_stride``, for a stride-4 input such as the
            finest level of :class:`SharpMaskNeck`; the layer is then an
            identity at the same index, so checkpoints still map.
        norm_cfg (dict): norm of the basis convs (AdelaiDet ``SyncBN``;
            ``BN`` on one CPU). Convs have no bias when a norm follows.
        bottom_resolution (int): R (AdelaiDet ``BOTTOM_RESOLUTION`` 56).
        attn_interp (str): resize of the attention M -> R, ``'bilinear'``
            (AdelaiDet ``TOP_INTERP``) or ``'nearest'``.
        roi_sampling_ratio (int): RoIAlign sampling ratio (AdelaiDet 1).
        attn_offset (int, optional): None: codes must be exactly K * M * M
            wide. An int: the attention is channels ``[attn_offset,
            attn_offset + K * M * M)`` of a wider code.
        max_pos_to_train (int): cap on positives (all images of the batch)
            in the mask loss; above it a random subset is used and the loss
            is normalised by that subset's centerness sum, so its scale does
            not change. Bounds memory (each positive costs ~8 x K x R x R
            floats with gradients, ~0.4 MB at the defaults) on crowded
            images. -1 = no cap (AdelaiDet).
        loss_mask (dict): per-pixel mask loss on logits; it gets
            ``weight`` (P, 1) = centerness / R^2 and ``avg_factor`` = the
            centerness sum (so mmdet's ``CrossEntropyLoss`` with
            ``use_sigmoid=True`` reproduces AdelaiDet).
        loss_semantic (dict, optional): auxiliary "thing" semantic loss on
            P3 (AdelaiDet ``LOSS_ON``, weight 0.3). Its target is built on
            the fly from the GT instance masks: class + 1 where a mask
            covers the pixel (later instances overwrite earlier ones),
            sampled at the P3 stride like AdelaiDet's nearest 1/8 resize.
            None switches the semantic head off.
        semantic_norm_cfg (dict): norm of the semantic head (AdelaiDet uses
            plain BatchNorm2d even when the bases use SyncBN).
        train_cfg, test_cfg (dict): ``test_cfg`` keys: ``mask_thr``
            (probability threshold, ``>=``; AdelaiDet 0.5), optionally
            ``mask_chunk_pixels`` (memory budget of the paste: output pixels
            per chunk) and ``mask_impl`` (``'auto'`` (default): ``'dense'``
            on CUDA, no host sync and a fixed op count; ``'boxwise'`` on the
            CPU, box by box as mmdet's CPU paste; see
            :func:`paste_box_masks`) and ``mask_clean`` (default False:
            keep each mask's largest component and fill its holes,
            :func:`clean_instance_masks`; a host sync).
        init_cfg (dict, optional): extra init; the basis convs are always
            initialised kaiming-uniform(a=1) with zero bias, as AdelaiDet's
            ``conv_with_kaiming_uniform``.
    """

    TEST_CFG_KEYS = ('mask_thr', 'mask_chunk_pixels', 'mask_impl',
                     'mask_clean')

    def __init__(self,
                 *,
                 num_classes: int = 80,
                 in_channels: Union[int, Sequence[int]] = 256,
                 feat_channels: int = 128,
                 num_bases: int = 4,
                 attn_size: int = 14,
                 num_convs: int = 3,
                 in_levels: Sequence[int] = (0, 1, 2),
                 in_stride: int = 8,
                 basis_upsample: bool = True,
                 norm_cfg: OptConfigType = dict(
                     type='SyncBN', requires_grad=True),
                 bottom_resolution: int = 56,
                 attn_interp: str = 'bilinear',
                 roi_sampling_ratio: int = 1,
                 attn_offset: Optional[int] = None,
                 max_pos_to_train: int = 1000,
                 loss_mask: ConfigType = dict(
                     type='CrossEntropyLoss', use_sigmoid=True,
                     loss_weight=1.0),
                 loss_semantic: OptConfigType = dict(
                     type='CrossEntropyLoss', use_sigmoid=False,
                     loss_weight=0.3),
                 semantic_norm_cfg: ConfigType = dict(
                     type='BN', requires_grad=True),
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not in_levels:
            raise ValueError('in_levels must name at least one FPN level')
        if isinstance(in_channels, int):
            level_channels = [in_channels] * len(in_levels)
        else:
            level_channels = list(in_channels)
            if len(level_channels) != len(in_levels):
                raise ValueError(
                    f'in_channels has {len(level_channels)} entries for '
                    f'{len(in_levels)} in_levels {tuple(in_levels)}; give '
                    'one int or one per level')
        if basis_upsample and in_stride % 2:
            raise ValueError(f'in_stride must be even (the bases are at '
                             f'in_stride / 2), got {in_stride}')
        if num_bases < 1 or attn_size < 1 or bottom_resolution < 1:
            raise ValueError(
                'num_bases, attn_size and bottom_resolution must be >= 1, '
                f'got {num_bases}, {attn_size}, {bottom_resolution}')
        if attn_interp not in ATTN_INTERPS:
            raise ValueError(f'attn_interp must be one of {ATTN_INTERPS}, '
                             f'got {attn_interp!r}')
        if attn_offset is not None and attn_offset < 0:
            raise ValueError(f'attn_offset must be >= 0, got {attn_offset}')
        if max_pos_to_train == 0 or max_pos_to_train < -1:
            raise ValueError('max_pos_to_train must be -1 (no cap) or > 0, '
                             f'got {max_pos_to_train}')
        self.num_classes = num_classes
        self.num_bases = num_bases
        self.attn_size = attn_size
        self.attn_channels = num_bases * attn_size * attn_size
        self.in_levels = tuple(in_levels)
        self.in_stride = in_stride
        self.basis_stride = in_stride // 2 if basis_upsample else in_stride
        self.bottom_resolution = bottom_resolution
        self.attn_interp = attn_interp
        self.attn_offset = attn_offset
        self.max_pos_to_train = max_pos_to_train
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        if test_cfg is not None:
            self._check_test_cfg_keys()
        self.loss_mask = MODELS.build(loss_mask)
        self.loss_semantic = MODELS.build(loss_semantic) \
            if loss_semantic else None

        def conv(in_ch: int, out_ch: int, norm: OptConfigType) -> nn.Module:
            return ConvModule(in_ch, out_ch, 3, padding=1, norm_cfg=norm)

        self.refine = nn.ModuleList([
            conv(channels, feat_channels, norm_cfg)
            for channels in level_channels
        ])
        # same layout as AdelaiDet's tower (Upsample at index num_convs) so
        # that converted checkpoints map index to index
        self.tower = nn.Sequential(
            *[conv(feat_channels, feat_channels, norm_cfg)
              for _ in range(num_convs)],
            nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False)
            if basis_upsample else nn.Identity(),
            conv(feat_channels, feat_channels, norm_cfg),
            nn.Conv2d(feat_channels, num_bases, 1))
        # the semantic head reads the first (finest) level
        self.seg_head = nn.Sequential(
            conv(level_channels[0], feat_channels, semantic_norm_cfg),
            conv(feat_channels, feat_channels, semantic_norm_cfg),
            nn.Conv2d(feat_channels, num_classes + 1, 1)) \
            if self.loss_semantic is not None else None
        self.roi_align = RoIAlign(
            output_size=bottom_resolution,
            spatial_scale=1.0 / self.basis_stride,
            sampling_ratio=roi_sampling_ratio,
            aligned=True)

    def init_weights(self) -> None:
        super().init_weights()
        # AdelaiDet conv_with_kaiming_uniform: kaiming_uniform(a=1), bias 0
        for module in [*self.refine, *self.tower]:
            if isinstance(module, ConvModule):
                nn.init.kaiming_uniform_(module.conv.weight, a=1)
                if module.conv.bias is not None:
                    nn.init.zeros_(module.conv.bias)

    # ------------------------------------------------------------------ #
    # forward
    # ------------------------------------------------------------------ #
    def forward(self,
                x: Tuple[Tensor, ...],
                positive_infos: OptInstanceList = None) -> Tuple[Tensor, ...]:
        """Bases, and in training the semantic logits.

        Args:
            x: FPN features; ``x[in_levels[0]]`` is (B, in_channels, h8,
                w8).
            positive_infos: unused (the codes reach :meth:`loss_by_feat` and
                :meth:`predict_by_feat` directly); accepted for the
                :class:`BaseMaskHead` contract.

        Returns:
            ``(bases,)`` with bases (B, K, 2 h8, 2 w8), plus the semantic
            logits (B, C + 1, h8, w8) in training when ``loss_semantic`` is
            set.
        """
        feats = [x[level] for level in self.in_levels]
        merged = sum_upsampled(
            [refine(feat) for refine, feat in zip(self.refine, feats)])
        bases = self.tower(merged)
        if self.training and self.seg_head is not None:
            return bases, self.seg_head(feats[0])
        return (bases, )

    def get_attentions(self, codes: Tensor) -> Tensor:
        """The attention part of box-head codes: (N, code width) ->
        (N, K * M * M)."""
        width = self.attn_channels
        if codes.dim() != 2:
            raise ValueError(f'codes must be (N, channels), got '
                             f'{tuple(codes.shape)}')
        if self.attn_offset is None:
            if codes.shape[1] != width:
                raise ValueError(
                    f'{type(self).__name__}: codes have {codes.shape[1]} '
                    f'channels but the attention needs K * M * M = '
                    f'{self.num_bases} * {self.attn_size}^2 = {width}; make '
                    "the box head's num_bases / attn_size match, or set "
                    'attn_offset to read the attention from a wider code')
            return codes
        end = self.attn_offset + width
        if codes.shape[1] < end:
            raise ValueError(
                f'{type(self).__name__}: attn_offset {self.attn_offset} + '
                f'K * M * M {width} = {end} exceeds the code width '
                f'{codes.shape[1]}')
        return codes[:, self.attn_offset:end]

    # ------------------------------------------------------------------ #
    # training
    # ------------------------------------------------------------------ #
    def loss_by_feat(self,
                     bases: Tensor,
                     sem_logits: Optional[Tensor] = None,
                     *,
                     batch_gt_instances: InstanceList,
                     batch_img_metas: List[dict],
                     positive_infos: InstanceList,
                     batch_gt_instances_ignore: OptInstanceList = None
                     ) -> dict:
        """Blender mask loss and the auxiliary semantic loss.

        Args:
            bases: (B, K, h, w) from :meth:`forward`.
            sem_logits: (B, C + 1, h8, w8) from :meth:`forward` in training
                mode; required when ``loss_semantic`` is set.
            batch_gt_instances: GT with ``bboxes``, ``labels`` and ``masks``
                (mmdet mask structures, padded to the batch input by
                ``BaseMaskHead.loss``).
            batch_img_metas: image metas.
            positive_infos: from the box head's ``get_positive_infos()``:
                per image ``codes`` (P_i, code width),
                ``pos_assigned_gt_inds`` (P_i,) and ``centerness_targets``
                (P_i,).
            batch_gt_instances_ignore: accepted by name; crowd regions are
                not used (the box head warns about them).

        Returns:
            dict with ``loss_mask`` and, if enabled, ``loss_semantic``.
        """
        if positive_infos is None:
            raise ValueError(f'{type(self).__name__} needs positive_infos '
                             'from an FCOSCodeHead-style box head')
        self._check_gts(batch_gt_instances, batch_img_metas, positive_infos)
        losses = dict(
            loss_mask=self._mask_loss(bases, batch_gt_instances,
                                      positive_infos))
        if self.loss_semantic is not None:
            if sem_logits is None:
                raise ValueError(
                    f'{type(self).__name__}: loss_semantic is set but no '
                    'semantic logits were given; call the head in training '
                    'mode (forward returns them only then)')
            targets = torch.stack([
                self._semantic_target(gt, sem_logits.shape[-2:],
                                      sem_logits.device)
                for gt in batch_gt_instances
            ])
            losses['loss_semantic'] = self.loss_semantic(sem_logits, targets)
        return losses

    def _check_gts(self, batch_gt_instances: InstanceList,
                   batch_img_metas: List[dict],
                   positive_infos: InstanceList) -> None:
        if not len(batch_gt_instances) == len(batch_img_metas) == len(
                positive_infos):
            raise ValueError(
                f'{type(self).__name__}: {len(batch_gt_instances)} GT '
                f'instance sets, {len(batch_img_metas)} metas and '
                f'{len(positive_infos)} positive infos; expected one each '
                'per image')
        for img_id, (gt, meta, info) in enumerate(
                zip(batch_gt_instances, batch_img_metas, positive_infos)):
            where = f'image {img_id} ({meta.get("img_path")})'
            if 'masks' not in gt or not hasattr(gt.masks, 'crop_and_resize'):
                raise ValueError(
                    f'{type(self).__name__}: {where} has no GT masks as an '
                    'mmdet BitmapMasks / PolygonMasks; add '
                    'LoadAnnotations(with_mask=True) to the train pipeline.')
            if len(gt.masks) != len(gt.bboxes):
                raise ValueError(
                    f'{type(self).__name__}: {where} has {len(gt.bboxes)} '
                    f'boxes but {len(gt.masks)} masks.')
            if 'centerness_targets' not in info:
                raise ValueError(
                    f'{type(self).__name__}: positive infos lack '
                    '`centerness_targets` (the mask loss weights); use an '
                    'FCOSCodeHead box head')

    def _mask_loss(self, bases: Tensor, batch_gt_instances: InstanceList,
                   positive_infos: InstanceList) -> Tensor:
        """AdelaiDet ``Blender.__call__`` (training), all images at once."""
        codes = torch.cat([info.codes for info in positive_infos])
        # every prediction stays in the graph even without positives (DDP,
        # empty batches), as AdelaiDet's `0 * attns + 0 * bases`
        zero = bases.sum() * 0 + codes.sum() * 0
        attns = self.get_attentions(codes)
        gt_offsets = [0]
        for gt in batch_gt_instances[:-1]:
            gt_offsets.append(gt_offsets[-1] + len(gt))
        gt_inds = torch.cat([
            info.pos_assigned_gt_inds + offset
            for info, offset in zip(positive_infos, gt_offsets)
        ])
        ctr_targets = torch.cat(
            [info.centerness_targets for info in positive_infos])
        if 0 < self.max_pos_to_train < len(gt_inds):
            keep = torch.randperm(
                len(gt_inds), device=gt_inds.device)[:self.max_pos_to_train]
            attns, gt_inds, ctr_targets = attns[keep], gt_inds[keep], \
                ctr_targets[keep]
        # called on every rank, also one without positives (a collective);
        # AdelaiDet's loss_denorm, the same as mmdet FCOS's box-loss one
        denorm = reduce_mean(ctr_targets.sum().detach()).clamp(min=1e-6)
        if len(gt_inds) == 0:
            return zero
        res = self.bottom_resolution
        rois = bbox2roi([gt.bboxes for gt in batch_gt_instances])
        # pool each GT once, then gather one crop per positive
        bases = roi_align_dtype(bases)
        pooled = self.roi_align(bases, rois.type_as(bases))[gt_inds]
        mask_logits = blend_bases(pooled, attns, self.attn_interp)
        # mmdet's crop_and_resize (RoIAlign aligned, >= 0.5 for bitmaps) is
        # detectron2's, which AdelaiDet uses; it takes numpy boxes / indices
        mask_targets = torch.cat([
            gt.masks.crop_and_resize(
                gt.bboxes.detach().cpu().numpy(), (res, res),
                np.arange(len(gt)),
                device=bases.device).to_tensor(
                    dtype=torch.float32, device=bases.device)
            for gt in batch_gt_instances
        ])[gt_inds]
        # per positive: mean BCE over its R x R pixels x its centerness
        weight = (ctr_targets / (res * res))[:, None]
        return self.loss_mask(
            mask_logits.flatten(1),
            mask_targets.flatten(1),
            weight=weight,
            avg_factor=denorm) + zero

    def _semantic_target(self, gt: InstanceData, size: Tuple[int, int],
                         device: torch.device) -> Tensor:
        """(h8, w8) long "thing" map of one image: 0 = background, label + 1
        where a GT mask covers the pixel, later instances win (AdelaiDet
        ``prepare_thing_sem_from_instance.py``), sampled at every
        ``in_stride``-th pixel, which is what AdelaiDet's nearest resize by
        1 / 8 of the full-resolution map picks."""
        height, width = size
        target = torch.zeros((height, width), dtype=torch.long,
                             device=device)
        if len(gt) == 0:
            return target
        if (gt.labels >= self.num_classes).any():
            raise ValueError(
                f'{type(self).__name__}: GT label '
                f'{int(gt.labels.max())} >= num_classes '
                f'{self.num_classes}; set mask_head.num_classes to the '
                "box head's")
        stride = self.in_stride
        masks = gt.masks.to_tensor(
            dtype=torch.bool, device=device)[:, ::stride, ::stride]
        masks = masks[:, :height, :width]
        # index (1-based) of the last instance covering each pixel, 0 if none
        order = torch.arange(1, len(masks) + 1, device=device)[:, None, None]
        last = (masks * order).amax(dim=0)
        labels = torch.cat([gt.labels.new_zeros(1), gt.labels + 1])
        target[:last.shape[0], :last.shape[1]] = labels.to(device)[last]
        return target

    # ------------------------------------------------------------------ #
    # inference
    # ------------------------------------------------------------------ #
    def _check_test_cfg_keys(self) -> None:
        """Reject misspelt keys in the detector's test_cfg, which this head
        shares with the box head."""
        check_keys(type(self).__name__, self.test_cfg,
                   self.TEST_CFG_KEYS + BOX_TEST_CFG_KEYS, 'test_cfg',
                   'the detector passes one test_cfg to bbox_head and '
                   'mask_head')

    def _read_test_cfg(self) -> Tuple[float, int, str, bool]:
        cfg = self.test_cfg
        if cfg is None or 'mask_thr' not in cfg:
            raise KeyError(f'{type(self).__name__} needs test_cfg.mask_thr '
                           '(AdelaiDet: 0.5)')
        self._check_test_cfg_keys()
        mask_thr = float(cfg['mask_thr'])
        if not 0 <= mask_thr <= 1:
            raise ValueError(
                f'test_cfg.mask_thr must be in [0, 1], got {mask_thr}')
        chunk = int(cfg.get('mask_chunk_pixels', 1 << 26))
        if chunk <= 0:
            raise ValueError(
                f'test_cfg.mask_chunk_pixels must be > 0, got {chunk}')
        impl = cfg.get('mask_impl', 'auto')
        if impl not in PASTE_IMPLS:
            raise ValueError(f'test_cfg.mask_impl must be one of '
                             f'{PASTE_IMPLS}, got {impl!r}')
        return mask_thr, chunk, impl, read_mask_clean(cfg)

    def predict_by_feat(self,
                        bases: Tensor,
                        *,
                        results_list: InstanceList,
                        batch_img_metas: List[dict],
                        rescale: bool = True,
                        **kwargs) -> InstanceList:
        """Masks for the detections of the box head.

        With ``mask_impl`` ``'dense'`` (the default on CUDA) nothing is
        read back to the host between the box predictions and the pasted
        masks (RoIAlign, blend, sigmoid and :func:`paste_box_masks` are all
        device ops), and the number of launched ops does not depend on the
        number of detections.

        Args:
            bases: (B, K, h, w).
            results_list: per image, detections with ``bboxes`` (input-image
                pixels), ``scores``, ``labels`` and ``codes``.
            batch_img_metas: metas with ``img_shape``, ``ori_shape`` and
                (with ``rescale``) ``scale_factor``.
            rescale: return boxes and masks at ``ori_shape`` (else at
                ``img_shape``).

        Returns:
            per image :obj:`InstanceData` with ``bboxes`` (N, 4), ``scores``
            (N,), ``labels`` (N,), ``masks`` (N, H, W) bool.
        """
        if kwargs:
            raise TypeError(f'{type(self).__name__}.predict_by_feat got '
                            f'unexpected arguments {sorted(kwargs)}')
        if results_list is None:
            raise ValueError(f'{type(self).__name__} needs the box head '
                             'detections (results_list)')
        mask_thr, chunk, impl, clean = self._read_test_cfg()
        outputs = []
        for img_id, (results, meta) in enumerate(
                zip(results_list, batch_img_metas)):
            bboxes = results.bboxes
            out_size = tuple(meta['ori_shape'][:2]) if rescale else tuple(
                meta['img_shape'][:2])
            if rescale:
                # python scalars: a tensor built from the host list would be
                # a host-to-device copy, which waits for the stream on CUDA
                scale_w, scale_h = (float(s) for s in meta['scale_factor'])
                out_bboxes = torch.stack([
                    bboxes[:, 0] / scale_w, bboxes[:, 1] / scale_h,
                    bboxes[:, 2] / scale_w, bboxes[:, 3] / scale_h
                ], dim=1)
            else:
                out_bboxes = bboxes
            mask_probs = self.predict_mask_probs(bases, img_id, results)
            out = InstanceData()
            out.bboxes = out_bboxes
            out.scores = results.scores
            out.labels = results.labels
            out.masks = paste_box_masks(mask_probs, out_bboxes, out_size,
                                        mask_thr, chunk, impl)
            if clean:
                out.masks = clean_instance_masks(out.masks)
            outputs.append(out)
        return outputs

    def predict_mask_probs(self, bases: Tensor, img_id: int,
                           results: InstanceData) -> Tensor:
        """(N, R, R) mask probabilities inside the predicted boxes of image
        ``img_id`` (``results.bboxes`` in input pixels, ``results.codes``).
        """
        res = self.bottom_resolution
        if len(results) == 0:  # a shape, known on the host
            return bases.new_zeros((0, res, res))
        bboxes = results.bboxes
        rois = torch.cat([bboxes.new_full((len(bboxes), 1), img_id), bboxes],
                         dim=1)
        bases = roi_align_dtype(bases)
        pooled = self.roi_align(bases, rois.type_as(bases))
        return blend_bases(pooled, self.get_attentions(results.codes),
                           self.attn_interp).sigmoid()
