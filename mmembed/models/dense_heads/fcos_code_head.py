# Copyright (c) mmembed authors. All rights reserved.
"""FCOS with an extra per-location *code*, carried through assignment and NMS.

Shape shorthand: B images, L levels, HW_l locations of level l, N_loc all
locations of one image (sum of HW_l), P positive locations of one image,
G ground truths, C code channels, N detections.

EmbedMask (proposal embedding + margin) and BlendMask (attention) both hang
a per-location vector on FCOS. ``mmdet.models.BaseDenseHead`` cannot carry
such extra outputs through target assignment, top-k and NMS, so this base
adds the hook once. Its overrides mirror mmdet 3.3.0 (each says which method
and what differs) and ``tests/.../test_fcos_code_head.py`` proves that the
FCOS losses and detections stay identical to ``mmdet.models.FCOSHead``.
"""
import warnings
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, Scale
from mmdet.models.dense_heads import FCOSHead
from mmdet.models.dense_heads.anchor_free_head import AnchorFreeHead
from mmdet.models.utils import (filter_scores_and_topk, multi_apply,
                                select_single_mlvl)
from mmdet.structures.bbox import cat_boxes
from mmdet.utils import InstanceList, OptInstanceList
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

from ...utils.arg_checks import check_init_args
from ..utils.result_checks import remove_non_finite

INF = 1e8
# The test_cfg keys the box head reads (mmdet 3.3.0
# BaseDenseHead._predict_by_feat_single and _bbox_post_process). The mask
# heads behind it get the same detector test_cfg and check every key against
# these plus their own, so a misspelt key raises instead of being ignored.
BOX_TEST_CFG_KEYS = ('nms_pre', 'min_bbox_size', 'score_thr', 'nms',
                     'max_per_img')


@check_init_args
class FCOSCodeHead(FCOSHead):
    """:class:`mmdet.models.FCOSHead` plus a per-location code of
    ``code_channels`` channels.

    Subclasses set ``self.code_channels`` before calling ``__init__`` of this
    class, create their layers in ``_init_layers`` (after ``super()``) and
    implement :meth:`forward_code`. The code reaches the mask head through
    :meth:`get_positive_infos` (training) and the ``codes`` field of the
    detections (inference).

    Args:
        sample_in_mask (bool): Keep a location positive for a GT only if its
            pixel lies inside the GT *mask* (EmbedMask ``SAMPLE_IN_MASK``;
            applies to the classification and box targets too). Needs
            ``gt_instances.masks``. Defaults to False (plain FCOS).
        use_scale (bool): Learn a per-level scale on the box regression
            (mmdet / official FCOS). False keeps the scales at 1.0 and frozen
            (AdelaiDet ``FCOS.USE_SCALE False``, set by BlendMask); the
            parameters stay in the state dict so checkpoints keep one layout.
        thresh_with_ctr (bool): At test time apply ``score_thr`` and
            ``nms_pre`` to cls x centerness instead of the class score alone
            (AdelaiDet ``FCOS.THRESH_WITH_CTR``). Defaults to False (mmdet).
        sqrt_score (bool): Report ``sqrt(cls x centerness)`` as the detection
            score (AdelaiDet); NMS order is unchanged (sqrt is monotone).
            Defaults to False (mmdet reports the product).
        num_share_convs (int): Convs shared by the cls and box towers, before
            them (AdelaiDet ``FCOS.NUM_SHARE_CONVS``; BlendMask's 550 model
            uses 3 with ``stacked_convs=0``). Needs ``in_channels ==
            feat_channels``. Defaults to 0 (mmdet).
        **kwargs: Passed unchanged to :class:`mmdet.models.FCOSHead`.
    """

    code_channels: int = 0

    def __init__(self,
                 *,
                 sample_in_mask: bool = False,
                 use_scale: bool = True,
                 thresh_with_ctr: bool = False,
                 sqrt_score: bool = False,
                 num_share_convs: int = 0,
                 **kwargs) -> None:
        if self.code_channels <= 0:
            raise ValueError(f'{type(self).__name__} must set code_channels '
                             'before FCOSCodeHead.__init__')
        if num_share_convs < 0:
            raise ValueError(
                f'num_share_convs must be >= 0, got {num_share_convs}')
        if num_share_convs and kwargs.get('in_channels') != kwargs.get(
                'feat_channels', 256):
            raise ValueError(
                f'{type(self).__name__}: num_share_convs={num_share_convs} '
                'needs in_channels == feat_channels (the towers after the '
                f'shared convs read feat_channels), got in_channels='
                f'{kwargs.get("in_channels")}, feat_channels='
                f'{kwargs.get("feat_channels", 256)}')
        self.sample_in_mask = sample_in_mask
        self.use_scale = use_scale
        self.thresh_with_ctr = thresh_with_ctr
        self.sqrt_score = sqrt_score
        self.num_share_convs = num_share_convs
        super().__init__(**kwargs)
        self._raw_positive_infos: Dict[str, object] = {}
        self._warned_ignore = False

    def _init_layers(self) -> None:
        """FCOSHead's layers, plus the optional shared tower; freezes the
        per-level scales when ``use_scale`` is False."""
        super()._init_layers()
        self.share_convs = nn.ModuleList([
            ConvModule(
                self.in_channels if i == 0 else self.feat_channels,
                self.feat_channels,
                3,
                padding=1,
                conv_cfg=self.conv_cfg,
                norm_cfg=self.norm_cfg,
                bias=self.conv_bias) for i in range(self.num_share_convs)
        ])
        if not self.use_scale:
            for scale in self.scales:
                scale.scale.requires_grad_(False)

    # ------------------------------------------------------------------ #
    # forward
    # ------------------------------------------------------------------ #
    def forward(self, x: Tuple[Tensor, ...]) -> Tuple[List[Tensor], ...]:
        """Returns ``(cls_scores, bbox_preds, centernesses, code_preds)``,
        each a list over levels of (B, *, H_l, W_l) tensors; code_preds have
        ``code_channels`` channels."""
        return multi_apply(self.forward_single, x, self.scales, self.strides,
                           list(range(len(x))))

    def forward_single(self, x: Tensor, scale: Scale, stride: int,
                       level: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Mirrors mmdet 3.3.0 ``FCOSHead.forward_single``; differs: keeps
        the tower features, runs the optional shared convs first and
        returns the level's code as a 4th output."""
        for conv in self.share_convs:
            x = conv(x)
        cls_score, bbox_pred, cls_feat, reg_feat = \
            AnchorFreeHead.forward_single(self, x)
        centerness = self.conv_centerness(
            reg_feat if self.centerness_on_reg else cls_feat)
        bbox_pred = scale(bbox_pred).float()
        if self.norm_on_bbox:
            bbox_pred = bbox_pred.clamp(min=0)
            if not self.training:
                bbox_pred = bbox_pred * stride
            # pixels in both modes, for codes that read the box
            bbox_pixels = bbox_pred if not self.training else \
                bbox_pred * stride
        else:
            bbox_pred = bbox_pred.exp()
            bbox_pixels = bbox_pred
        code_pred = self.forward_code(cls_feat, reg_feat, bbox_pixels, level)
        return cls_score, bbox_pred, centerness, code_pred

    def forward_code(self, cls_feat: Tensor, reg_feat: Tensor,
                     bbox_pixels: Tensor, level: int) -> Tensor:
        """Per-location code of one level.

        Args:
            cls_feat: (B, feat_channels, H, W) classification tower output.
            reg_feat: (B, feat_channels, H, W) regression tower output.
            bbox_pixels: (B, 4, H, W) predicted (l, t, r, b) in pixels.
            level: FPN level index.

        Returns:
            (B, code_channels, H, W).
        """
        raise NotImplementedError

    # ------------------------------------------------------------------ #
    # training
    # ------------------------------------------------------------------ #
    def loss_by_feat(
        self,
        cls_scores: List[Tensor],
        bbox_preds: List[Tensor],
        centernesses: List[Tensor],
        code_preds: List[Tensor],
        batch_gt_instances: InstanceList,
        batch_img_metas: List[dict],
        batch_gt_instances_ignore: OptInstanceList = None
    ) -> Dict[str, Tensor]:
        """FCOS losses (computed by ``FCOSHead.loss_by_feat``, whose target
        assignment runs through :meth:`get_targets` below) and the positive
        information for the mask head.

        ``batch_gt_instances_ignore`` (crowd regions) cannot be honoured by
        FCOS-style assignment; a non-empty one triggers a warning (once).
        """
        self._warn_ignored(batch_gt_instances_ignore)
        if self.sample_in_mask:
            for i, gt in enumerate(batch_gt_instances):
                if 'masks' not in gt:
                    raise ValueError(
                        f'{type(self).__name__}: sample_in_mask=True needs GT '
                        f'masks, but image {i} '
                        f'({batch_img_metas[i].get("img_path")}) has none; '
                        'add LoadAnnotations(with_mask=True) to the train '
                        'pipeline or set sample_in_mask=False.')
        losses = super().loss_by_feat(cls_scores, bbox_preds, centernesses,
                                      batch_gt_instances, batch_img_metas)
        self._raw_positive_infos = dict(
            bbox_preds=bbox_preds, code_preds=code_preds)
        return losses

    def _warn_ignored(self, batch_gt_instances_ignore: OptInstanceList):
        if self._warned_ignore or not batch_gt_instances_ignore:
            return
        num = sum(len(x) for x in batch_gt_instances_ignore if x is not None)
        if num:
            warnings.warn(
                f'{type(self).__name__}: {num} ignored (crowd) GT instances in '
                'this batch are not used: FCOS-style assignment has no ignore '
                'regions, they are treated as background. (Warned once.)')
            self._warned_ignore = True

    def get_targets(self, points: List[Tensor],
                    batch_gt_instances: InstanceList
                    ) -> Tuple[List[Tensor], List[Tensor]]:
        """Mirrors mmdet 3.3.0 ``FCOSHead.get_targets``; differs: also keeps
        each location's assigned GT index (-1 = background) per image, and
        the points, for :meth:`get_positive_infos`.

        Returns:
            ``(labels, bbox_targets)``, each a list over levels of tensors
            concatenated over images, exactly as ``FCOSHead.get_targets``.
        """
        num_levels = len(points)
        if num_levels != len(self.regress_ranges):
            raise ValueError(f'{num_levels} feature levels but '
                             f'{len(self.regress_ranges)} regress_ranges')
        concat_regress_ranges = torch.cat([
            points[i].new_tensor(self.regress_ranges[i])[None].expand_as(
                points[i]) for i in range(num_levels)
        ])
        concat_points = torch.cat(points)
        num_points = [center.size(0) for center in points]
        labels_list, bbox_targets_list, gt_inds_list = multi_apply(
            self._get_targets_single,
            batch_gt_instances,
            points=concat_points,
            regress_ranges=concat_regress_ranges,
            num_points_per_lvl=num_points)
        self._targets_cache = dict(
            gt_inds_list=gt_inds_list,
            bbox_targets_list=bbox_targets_list,
            points=points)

        labels_list = [labels.split(num_points) for labels in labels_list]
        bbox_targets_list = [t.split(num_points) for t in bbox_targets_list]
        concat_lvl_labels, concat_lvl_bbox_targets = [], []
        for i in range(num_levels):
            concat_lvl_labels.append(torch.cat([x[i] for x in labels_list]))
            bbox_targets = torch.cat([x[i] for x in bbox_targets_list])
            if self.norm_on_bbox:
                bbox_targets = bbox_targets / self.strides[i]
            concat_lvl_bbox_targets.append(bbox_targets)
        return concat_lvl_labels, concat_lvl_bbox_targets

    def _get_targets_single(
            self, gt_instances: InstanceData, points: Tensor,
            regress_ranges: Tensor,
            num_points_per_lvl: List[int]) -> Tuple[Tensor, Tensor, Tensor]:
        """Mirrors mmdet 3.3.0 ``FCOSHead._get_targets_single``; differs:
        the optional in-mask condition, and returns the assigned GT index.

        Returns:
            labels (N_loc,) long, bbox_targets (N_loc, 4) in pixels,
            gt_inds (N_loc,) long, -1 for background.
        """
        num_points = points.size(0)
        num_gts = len(gt_instances)
        gt_bboxes = gt_instances.bboxes
        gt_labels = gt_instances.labels
        if num_gts == 0:
            return (gt_labels.new_full((num_points, ), self.num_classes),
                    gt_bboxes.new_zeros((num_points, 4)),
                    gt_labels.new_full((num_points, ), -1))

        areas = (gt_bboxes[:, 2] - gt_bboxes[:, 0]) * (
            gt_bboxes[:, 3] - gt_bboxes[:, 1])
        areas = areas[None].repeat(num_points, 1)
        regress_ranges = regress_ranges[:, None, :].expand(
            num_points, num_gts, 2)
        gt_bboxes = gt_bboxes[None].expand(num_points, num_gts, 4)
        xs = points[:, 0, None].expand(num_points, num_gts)
        ys = points[:, 1, None].expand(num_points, num_gts)
        bbox_targets = torch.stack((xs - gt_bboxes[..., 0],
                                    ys - gt_bboxes[..., 1],
                                    gt_bboxes[..., 2] - xs,
                                    gt_bboxes[..., 3] - ys), -1)

        if self.center_sampling:
            # radius * stride around the GT *box* centre, clipped to the box
            strides = torch.cat([
                points.new_full((n, ), s * self.center_sample_radius)
                for n, s in zip(num_points_per_lvl, self.strides)
            ])[:, None]
            center_xs = (gt_bboxes[..., 0] + gt_bboxes[..., 2]) / 2
            center_ys = (gt_bboxes[..., 1] + gt_bboxes[..., 3]) / 2
            x_mins = torch.maximum(center_xs - strides, gt_bboxes[..., 0])
            y_mins = torch.maximum(center_ys - strides, gt_bboxes[..., 1])
            x_maxs = torch.minimum(center_xs + strides, gt_bboxes[..., 2])
            y_maxs = torch.minimum(center_ys + strides, gt_bboxes[..., 3])
            center_bbox = torch.stack(
                (xs - x_mins, ys - y_mins, x_maxs - xs, y_maxs - ys), -1)
            inside_gt_bbox_mask = center_bbox.min(-1)[0] > 0
        else:
            inside_gt_bbox_mask = bbox_targets.min(-1)[0] > 0

        if self.sample_in_mask:
            inside_gt_bbox_mask &= self._points_in_masks(
                gt_instances, points)

        max_regress_distance = bbox_targets.max(-1)[0]
        inside_regress_range = (
            (max_regress_distance >= regress_ranges[..., 0])
            & (max_regress_distance <= regress_ranges[..., 1]))

        # ties go to the GT with the smallest box area
        areas[~inside_gt_bbox_mask] = INF
        areas[~inside_regress_range] = INF
        min_area, min_area_inds = areas.min(dim=1)

        labels = gt_labels[min_area_inds]
        background = min_area == INF
        labels[background] = self.num_classes
        bbox_targets = bbox_targets[range(num_points), min_area_inds]
        gt_inds = min_area_inds.masked_fill(background, -1)
        return labels, bbox_targets, gt_inds

    @staticmethod
    def _points_in_masks(gt_instances: InstanceData, points: Tensor) -> Tensor:
        """(N_loc, G) bool: location pixel ``[int(y), int(x)]`` inside each
        GT mask (official EmbedMask indexes ``mask[y.long(), x.long()]``);
        points outside the mask canvas are outside."""
        masks = gt_instances.masks.to_tensor(
            dtype=torch.bool, device=points.device)
        height, width = masks.shape[-2:]
        xs, ys = points[:, 0].long(), points[:, 1].long()
        on_canvas = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)
        inside = masks[:, ys.clamp(0, height - 1), xs.clamp(0, width - 1)]
        return (inside & on_canvas[None]).t()

    def get_positive_infos(self) -> InstanceList:
        """Positive locations of the last :meth:`loss_by_feat` call.

        Returns:
            list over images of :obj:`InstanceData` with P entries:

            - ``codes`` (P, C): the location's code (with gradient).
            - ``points`` (P, 2): location (x, y) in input pixels.
            - ``strides`` (P,): the location's FPN stride.
            - ``bboxes`` (P, 4): predicted box (x1, y1, x2, y2) in input
              pixels, detached (for quality-based sample selection).
            - ``pos_inds`` (P,): index among the image's N_loc locations
              (levels concatenated).
            - ``pos_assigned_gt_inds`` (P,): assigned GT index.
            - ``centerness_targets`` (P,): the location's centerness target
              (the weight of its box loss; BlendMask weights its mask loss
              with it too).
        """
        if not self._raw_positive_infos:
            raise RuntimeError('get_positive_infos() needs a previous '
                               'loss_by_feat() call')
        bbox_preds = self._raw_positive_infos['bbox_preds']
        code_preds = self._raw_positive_infos['code_preds']
        gt_inds_list = self._targets_cache['gt_inds_list']
        points = self._targets_cache['points']
        num_imgs = bbox_preds[0].size(0)
        flat_points = torch.cat(points)
        flat_strides = torch.cat([
            p.new_full((len(p), ), s) for p, s in zip(points, self.strides)
        ])
        flat_codes = torch.cat([
            c.permute(0, 2, 3, 1).reshape(num_imgs, -1, self.code_channels)
            for c in code_preds
        ], dim=1)
        # training bbox_preds are in stride units when norm_on_bbox
        flat_ltrb = torch.cat([
            b.detach().permute(0, 2, 3, 1).reshape(num_imgs, -1, 4) *
            (s if self.norm_on_bbox else 1)
            for b, s in zip(bbox_preds, self.strides)
        ], dim=1)
        positive_infos = []
        for img_id in range(num_imgs):
            gt_inds = gt_inds_list[img_id]
            pos_inds = (gt_inds >= 0).nonzero().reshape(-1)
            info = InstanceData()
            info.codes = flat_codes[img_id][pos_inds]
            info.points = flat_points[pos_inds]
            info.strides = flat_strides[pos_inds]
            info.bboxes = self.bbox_coder.decode(info.points,
                                                 flat_ltrb[img_id][pos_inds])
            info.pos_inds = pos_inds
            info.pos_assigned_gt_inds = gt_inds[pos_inds]
            info.centerness_targets = self.centerness_target(
                self._targets_cache['bbox_targets_list'][img_id][pos_inds])
            positive_infos.append(info)
        return positive_infos

    # ------------------------------------------------------------------ #
    # inference
    # ------------------------------------------------------------------ #
    def predict_by_feat(self,
                        cls_scores: List[Tensor],
                        bbox_preds: List[Tensor],
                        score_factors: List[Tensor],
                        code_preds: List[Tensor],
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg: Optional[ConfigDict] = None,
                        rescale: bool = False,
                        with_nms: bool = True) -> InstanceList:
        """Mirrors mmdet 3.3.0 ``BaseDenseHead.predict_by_feat``; differs:
        passes each image's code maps on. Detections carry ``codes`` (N, C),
        ``points`` (N, 2) and ``strides`` (N,) besides bboxes, scores,
        labels."""
        if not (len(cls_scores) == len(bbox_preds) == len(score_factors) ==
                len(code_preds)):
            raise ValueError('cls_scores, bbox_preds, score_factors and '
                             'code_preds must have one entry per level')
        num_levels = len(cls_scores)
        featmap_sizes = [cls_scores[i].shape[-2:] for i in range(num_levels)]
        mlvl_priors = self.prior_generator.grid_priors(
            featmap_sizes,
            dtype=cls_scores[0].dtype,
            device=cls_scores[0].device)
        result_list = []
        for img_id, img_meta in enumerate(batch_img_metas):
            result_list.append(
                self._predict_by_feat_single(
                    cls_score_list=select_single_mlvl(cls_scores, img_id),
                    bbox_pred_list=select_single_mlvl(bbox_preds, img_id),
                    score_factor_list=select_single_mlvl(
                        score_factors, img_id),
                    code_pred_list=select_single_mlvl(code_preds, img_id),
                    mlvl_priors=mlvl_priors,
                    img_meta=img_meta,
                    cfg=cfg,
                    rescale=rescale,
                    with_nms=with_nms))
        return result_list

    def _predict_by_feat_single(self,
                                cls_score_list: List[Tensor],
                                bbox_pred_list: List[Tensor],
                                score_factor_list: List[Tensor],
                                code_pred_list: List[Tensor],
                                mlvl_priors: List[Tensor],
                                img_meta: dict,
                                cfg: Optional[ConfigDict],
                                rescale: bool = False,
                                with_nms: bool = True) -> InstanceData:
        """Mirrors mmdet 3.3.0 ``BaseDenseHead._predict_by_feat_single`` for
        sigmoid classifiers with score factors; differs: the code, point and
        stride of every kept location follow it through top-k and NMS, the
        centerness product is applied here (not in ``_bbox_post_process``)
        and ``thresh_with_ctr`` / ``sqrt_score`` select AdelaiDet's
        scoring."""
        cfg = ConfigDict(self.test_cfg if cfg is None else cfg)
        img_shape = img_meta['img_shape']
        nms_pre = cfg.get('nms_pre', -1)
        score_thr = cfg.get('score_thr', 0)

        mlvl_bbox_preds, mlvl_valid_priors, mlvl_scores = [], [], []
        mlvl_labels, mlvl_score_factors, mlvl_codes, mlvl_strides = \
            [], [], [], []
        # NaN scores fail the threshold below and would vanish unreported;
        # count them here (docs/reliability.md)
        num_nan_scores = cls_score_list[0].new_zeros((), dtype=torch.long)
        for cls_score, bbox_pred, score_factor, code_pred, priors, stride in \
                zip(cls_score_list, bbox_pred_list, score_factor_list,
                    code_pred_list, mlvl_priors, self.strides):
            bbox_pred = bbox_pred.permute(1, 2, 0).reshape(-1, 4)
            score_factor = score_factor.permute(1, 2, 0).reshape(-1).sigmoid()
            scores = cls_score.permute(1, 2, 0).reshape(
                -1, self.cls_out_channels).sigmoid()
            code_pred = code_pred.permute(1, 2, 0).reshape(
                -1, self.code_channels)
            if self.thresh_with_ctr:
                # AdelaiDet FCOS (THRESH_WITH_CTR): threshold and top-k on
                # cls x ctr, so the product is the score from here on
                scores = scores * score_factor[:, None]
            # otherwise the threshold sees the class score before the
            # centerness product, as mmdet FCOS and EmbedMask v3 do
            # (a NaN centerness without thresh_with_ctr passes the threshold
            # and is caught after the product, in remove_non_finite)
            num_nan_scores = num_nan_scores + scores.isnan().any(1).sum()
            scores, labels, keep_idxs, filtered = filter_scores_and_topk(
                scores, score_thr, nms_pre,
                dict(bbox_pred=bbox_pred, priors=priors, codes=code_pred))
            mlvl_bbox_preds.append(filtered['bbox_pred'])
            mlvl_valid_priors.append(filtered['priors'])
            mlvl_codes.append(filtered['codes'])
            mlvl_scores.append(scores)
            mlvl_labels.append(labels)
            mlvl_score_factors.append(score_factor[keep_idxs])
            mlvl_strides.append(scores.new_full((len(scores), ), stride))

        priors = cat_boxes(mlvl_valid_priors)
        results = InstanceData()
        results.bboxes = self.bbox_coder.decode(
            priors, torch.cat(mlvl_bbox_preds), max_shape=img_shape)
        scores = torch.cat(mlvl_scores)
        if not self.thresh_with_ctr:
            scores = scores * torch.cat(mlvl_score_factors)
        # _bbox_post_process multiplies by ``score_factors`` when present; we
        # apply the centerness above instead, so that the AdelaiDet sqrt can
        # follow (same NMS order: sqrt is monotone)
        results.scores = scores.sqrt() if self.sqrt_score else scores
        results.labels = torch.cat(mlvl_labels)
        results.codes = torch.cat(mlvl_codes)
        results.points = priors[:, :2]
        results.strides = torch.cat(mlvl_strides)
        # NMS orders NaN arbitrarily and the paste would spread it; the NMS
        # that follows reads the host anyway
        results = remove_non_finite(results, img_meta, type(self).__name__,
                                    num_nan_scores, 'detection candidates')
        return self._bbox_post_process(
            results=results,
            cfg=cfg,
            rescale=rescale,
            with_nms=with_nms,
            img_meta=img_meta)
