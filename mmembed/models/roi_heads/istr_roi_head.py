# Copyright (c) mmembed authors. All rights reserved.
"""ISTR: Sparse R-CNN's recurrent refinement with mask codes.

Shape shorthand: B images, Q queries, K classes, D code length, G GT
instances of an image, P matched queries (all images), N detections of an
image, S x S codec mask size, H x W output image.
"""
from typing import List, Optional, Tuple

import torch
from mmdet.models.roi_heads import SparseRoIHead
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi, get_box_tensor
from mmdet.utils import ConfigType, InstanceList, reduce_mean
from mmengine.structures import InstanceData
from torch import Tensor

from ...utils.arg_checks import check_init_args, check_keys
from ..task_modules.match_costs import MaskCodeCost
from ..utils.mask_ops import PASTE_IMPLS, paste_box_masks
from ..utils.result_checks import remove_non_finite
from ..utils.roi_ops import extract_roi_feats_traceable, roi_align_dtype
from .roi_extractors import channels_last_for_pooling

# A coordinate bound for boxes fed to RoIAlign: far outside any image, small
# enough that float32 box arithmetic stays exact to a pixel.
MAX_BOX_COORD = 1e5

TEST_CFG_KEYS = {'max_per_img', 'mask_thr_binary', 'mask_impl'}
# optional:
# - score_thr: detections scoring <= score_thr are dropped after the paste
#   (None, the default and the official model: the top max_per_img are kept)
# - cls_score_stages: the stages whose class logits are averaged to score
#   the detections (None, the default and v1: the last stage only; ISTR v2:
#   (2, 3, 4, 5), DynamicHead.forward at hujiecpp/ISTR@1dac079)
OPTIONAL_TEST_CFG_KEYS = {'score_thr', 'cls_score_stages'}
MASK_TARGET_BOXES = ('gt', 'pred')


def sanitize_boxes(boxes: Tensor) -> Tensor:
    """Boxes RoIAlign accepts: finite, in [-1e5, 1e5], x1 <= x2, y1 <= y2.

    Decoded deltas cannot invert a box, but once weights blow up (a huge
    learning rate, fp16 overflow) they become inf / NaN, and mmcv's RoIAlign
    asserts on a RoI whose width or height is not >= 0 (NaN included):
    mmdet's QueryInst crashes this way. Finite, ordered boxes keep the
    model running; their losses show the divergence.

    Args:
        boxes: (..., 4) ``(x1, y1, x2, y2)``.

    Returns:
        (..., 4) sanitised copy (unchanged where already valid).
    """
    boxes = torch.nan_to_num(
        boxes, nan=0.0, posinf=MAX_BOX_COORD,
        neginf=-MAX_BOX_COORD).clamp(-MAX_BOX_COORD, MAX_BOX_COORD)
    low = torch.minimum(boxes[..., :2], boxes[..., 2:])
    high = torch.maximum(boxes[..., :2], boxes[..., 2:])
    return torch.cat([low, high], dim=-1)


@MODELS.register_module()
@check_init_args
class ISTRRoIHead(SparseRoIHead):
    """ISTR's 6-stage refinement (``ISTRStageHead`` per stage) on
    :class:`SparseRoIHead`, with a mask codec and no mask RoI branch.

    ``hujiecpp/ISTR`` v1 (``projects/ISTR/istr/{head.py,loss.py,inseg.py}``,
    ``specs/methods.md`` 3.1-3.4). Every stage predicts classes, box deltas
    and a D-dim mask code per query; boxes are detached between stages
    (mmdet's ``detached_proposals``, ISTR's ``bboxes.detach()``); every
    stage is matched and supervised (deep supervision, ``stage_loss_weights``
    all 1). Differences from :class:`SparseRoIHead`:

    - the codec (``mask_codec``, a ``TASK_UTILS`` module such as
      ``PCAMaskCodec``) is held once here, so its buffers are in the
      checkpoint (``roi_head.mask_codec.*``);
    - GT masks are cropped to their GT boxes at S x S once per batch
      (:meth:`loss`), encoded per stage for matching (``MaskCodeCost`` in the
      ``HungarianAssigner``) and again for the code loss, each with fresh
      random soft targets, as ISTR;
    - boxes are sanitised (:func:`sanitize_boxes`) before RoIAlign, and the
      assigner sees finite scores, boxes and codes;
    - ISTR v2's conv mask branch (stage heads with ``mask_branch='conv'``):
      every stage pools ``code_roi_extractor`` (28 x 28) features of its
      predicted, detached boxes and predicts the codes from them; with
      ``mask_target_boxes='pred'`` the code and dice targets are the GT
      masks cropped by those boxes (clipped to the image), while the
      matching cost still encodes GT-box crops (v2 ``loss.py``);
    - :meth:`predict`: top ``max_per_img`` of the Q x K sigmoid scores of the
      last stage (or of the logits averaged over ``test_cfg
      .cls_score_stages``, v2), no NMS; each detection's code is decoded and the S x S map
      pasted into the image by the shared :func:`paste_box_masks`
      (``mask_impl``: 'dense' has no host synchronisation and a fixed op
      count on CUDA). Boxes are clipped to the image (detectron2's
      ``detector_postprocess``, which ISTR uses).

    Args:
        mask_codec: codec config (``encode`` / ``decode``, ``code_dim``,
            ``mask_size``).
        code_roi_extractor: RoI extractor of the conv mask branch (v2:
            ``RoIAlign(28, sampling_ratio=2, aligned=True)`` on P2-P5);
            required when a stage head has ``mask_branch='conv'``, refused
            otherwise. Without ``out_channels`` / ``featmap_strides`` it
            takes ``bbox_roi_extractor``'s.
        mask_target_boxes: the boxes the GT masks are cropped by for the
            code and dice losses: ``'gt'`` (v1: each matched GT's box) or
            ``'pred'`` (v2: the matched query's predicted box of the stage,
            detached and clipped to the image, so the target is what the
            pasted mask must show).
        match_random_soft_targets: encode the GT masks for the matching
            cost with the codec's random soft targets (True, the official
            code: fresh noise at every call, so the cost of a pair changes
            between iterations) or deterministically (False: the codec's
            lowest soft target everywhere; the losses keep the random
            targets). See docs/istr.md#why-istr-trails-queryinst-here.
        **kwargs: go to :class:`SparseRoIHead` (``bbox_head`` = per-stage
            ``ISTRStageHead`` configs, no ``mask_head``; a stage head config
            without ``code_dim`` gets the codec's).
    """

    # the test_cfg keys it reads (tools/analysis_tools/test_cfg_sweep.py
    # may set an optional one the config leaves out)
    TEST_CFG_KEYS = frozenset(TEST_CFG_KEYS | OPTIONAL_TEST_CFG_KEYS)

    def __init__(self,
                 *,
                 mask_codec: ConfigType,
                 code_roi_extractor: Optional[ConfigType] = None,
                 mask_target_boxes: str = 'gt',
                 match_random_soft_targets: bool = True,
                 **kwargs) -> None:
        if kwargs.get('mask_head') is not None:
            raise ValueError('ISTRRoIHead predicts masks from codes in its '
                             'stage heads; remove mask_head / '
                             'mask_roi_extractor from the config')
        codec = TASK_UTILS.build(mask_codec)
        # the stage heads predict codes of the codec's length unless a config
        # says otherwise (then the check below names the mismatch)
        heads = kwargs.get('bbox_head')
        if heads is not None:
            if not isinstance(heads, (list, tuple)):  # one for all stages
                heads = [heads] * kwargs.get('num_stages', 6)
            kwargs['bbox_head'] = [
                dict(head, code_dim=head.get('code_dim', codec.code_dim))
                for head in heads
            ]
        if mask_target_boxes not in MASK_TARGET_BOXES:
            raise ValueError(f'mask_target_boxes must be one of '
                             f'{MASK_TARGET_BOXES}, got {mask_target_boxes!r}')
        super().__init__(**kwargs)
        self.mask_codec = codec
        self.mask_target_boxes = mask_target_boxes
        self.match_random_soft_targets = match_random_soft_targets
        branches = {head.mask_branch for head in self.bbox_head}
        if len(branches) > 1:
            raise ValueError('all stage heads need the same mask_branch, got '
                             f'{sorted(branches)}')
        self.conv_codes = branches == {'conv'}
        if self.conv_codes:
            if code_roi_extractor is None:
                raise ValueError('stage heads with mask_branch="conv" read '
                                 'RoI features: set code_roi_extractor '
                                 '(ISTR v2: RoIAlign output_size=28)')
            # the widths and strides of the maps it pools are the box
            # extractor's unless the config says otherwise
            code_roi_extractor = dict(code_roi_extractor)
            for key in ('out_channels', 'featmap_strides'):
                code_roi_extractor.setdefault(
                    key, kwargs['bbox_roi_extractor'][key])
            self.code_roi_extractor = MODELS.build(code_roi_extractor)
            out_size = self.code_roi_extractor.roi_layers[0].output_size
            for stage, head in enumerate(self.bbox_head):
                if tuple(out_size) != (head.mask_roi_size, ) * 2:
                    raise ValueError(
                        f'code_roi_extractor pools {tuple(out_size)} but '
                        f'bbox_head[{stage}].mask_roi_size is '
                        f'{head.mask_roi_size}')
        elif code_roi_extractor is not None:
            raise ValueError('code_roi_extractor is read by the conv mask '
                             'branch only; the stage heads have '
                             'mask_branch="mlp"')
        for stage, head in enumerate(self.bbox_head):
            if getattr(head, 'code_dim', None) != self.mask_codec.code_dim:
                raise ValueError(
                    f'bbox_head[{stage}] predicts codes of length '
                    f'{getattr(head, "code_dim", None)} but the mask codec '
                    f'has code_dim {self.mask_codec.code_dim}; set '
                    'bbox_head.code_dim to the codec code_dim')
            if head.bbox_coder.clip_border:
                raise ValueError(
                    f'bbox_head[{stage}].bbox_coder.clip_border must be False'
                    ' (boxes are decoded for the whole batch at once)')
        if self.test_cfg is not None:
            self._check_test_cfg()

    def _check_test_cfg(self) -> None:
        keys = set(self.test_cfg.keys())
        check_keys(type(self).__name__, keys,
                   TEST_CFG_KEYS | OPTIONAL_TEST_CFG_KEYS, 'test_cfg.rcnn')
        if not TEST_CFG_KEYS <= keys:
            raise KeyError(f'ISTRRoIHead test_cfg needs '
                           f'{sorted(TEST_CFG_KEYS)} (optional '
                           f'{sorted(OPTIONAL_TEST_CFG_KEYS)}); missing '
                           f'{sorted(TEST_CFG_KEYS - keys)}')
        if self.test_cfg.mask_impl not in PASTE_IMPLS:
            raise ValueError(f'test_cfg.mask_impl must be one of '
                             f'{PASTE_IMPLS}, got {self.test_cfg.mask_impl!r}')
        stages = self.test_cfg.get('cls_score_stages')
        if stages is not None:
            stages = tuple(stages)
            if not stages or any(
                    not isinstance(i, int) or not 0 <= i < self.num_stages
                    for i in stages) or len(set(stages)) != len(stages):
                raise ValueError(
                    'test_cfg.cls_score_stages must be distinct stage '
                    f'indices in [0, {self.num_stages - 1}], got '
                    f'{self.test_cfg.cls_score_stages!r}')

    # ------------------------------------------------------------ forward
    def _bbox_forward(self,
                      stage: int,
                      x: Tuple[Tensor],
                      rois: Tensor,
                      object_feats: Tensor,
                      batch_img_metas: List[dict],
                      with_codes: bool = True) -> dict:
        """One stage on all queries (mirrors mmdet 3.3.0
        ``SparseRoIHead._bbox_forward``; differs: RoIs sanitised, mask codes
        returned, boxes decoded for the batch at once instead of through
        ``refine_bboxes`` and fake sampling results).

        Args:
            rois: (B * Q, 5) ``(img_id, x1, y1, x2, y2)``, Q per image in
                order.
            object_feats: (B, Q, C).
            with_codes: run the conv mask branch (v2) on this stage's
                boxes; the MLP branch (v1) always returns codes.

        Returns:
            dict with ``cls_score`` (B, Q, K), ``decoded_bboxes`` (B * Q, 4),
            ``object_feats`` (B, Q, C), ``attn_feats`` (B, Q, C),
            ``mask_codes`` (B, Q, D) (None for the conv branch without
            ``with_codes``), ``detached_cls_scores`` and
            ``detached_proposals`` (lists of (Q, K) / (Q, 4)).
        """
        rois = torch.cat([rois[:, :1], sanitize_boxes(rois[:, 1:])], dim=1)
        extractor = self.bbox_roi_extractor[stage]
        bbox_head = self.bbox_head[stage]
        feats = [roi_align_dtype(f) for f in x[:extractor.num_inputs]]
        if torch.jit.is_tracing():  # also true in the ONNX exporter
            # mmdet's extractor branches on per-level RoI counts, which a
            # trace would freeze
            bbox_feats = extract_roi_feats_traceable(extractor, feats, rois)
        else:
            bbox_feats = extractor(feats, rois)
        cls_score, bbox_pred, object_feats, attn_feats, mask_codes = \
            bbox_head(bbox_feats, object_feats)
        decoded = bbox_head.bbox_coder.decode(rois[:, 1:],
                                              bbox_pred.view(-1, 4))
        num_imgs, num_queries = cls_score.shape[:2]
        detached = sanitize_boxes(decoded.detach()).view(
            num_imgs, num_queries, 4)
        if self.conv_codes and with_codes:
            # v2 pools the stage's predicted boxes; RoIAlign passes no
            # gradient to boxes, so detached boxes change nothing
            mask_codes = self.conv_mask_codes(
                stage, x, bbox2roi(list(detached.unbind(0))),
                obj_feats=object_feats.flatten(0, 1)).view(
                    num_imgs, num_queries, -1)
        return dict(
            cls_score=cls_score,
            decoded_bboxes=decoded,
            object_feats=object_feats,
            attn_feats=attn_feats,
            mask_codes=mask_codes,
            detached_cls_scores=list(cls_score.detach().unbind(0)),
            detached_proposals=list(detached.unbind(0)))

    def matching_reads_codes(self, stage: int) -> bool:
        """Whether the stage's assigner reads predicted codes now: True
        for the MLP branch (its codes come free) and when a
        ``MaskCodeCost`` of the assigner is active (weight > 0 and past
        its ``start_iter``)."""
        if not self.conv_codes:
            return True
        costs = getattr(self.bbox_assigner[stage], 'match_costs', None)
        if costs is None:  # another assigner: give it the codes
            return True
        return any(
            cost.active() for cost in costs if isinstance(cost, MaskCodeCost))

    def conv_mask_codes(self,
                        stage: int,
                        x: Tuple[Tensor],
                        rois: Tensor,
                        obj_feats: Optional[Tensor] = None,
                        sync_free: Optional[bool] = None) -> Tensor:
        """Codes of the conv mask branch (v2) for given boxes.

        Args:
            stage: the stage head whose branch runs.
            x: neck outputs.
            rois: (R, 5) ``(img_id, x1, y1, x2, y2)``, valid boxes.
            obj_feats: (R, C) object features of the RoIs' queries (read by
                a head with ``mask_query_fusion``).
            sync_free: pool with a graph that never reads device values on
                the host (every level for every RoI, weighted by the
                level mask: :func:`extract_roi_feats_traceable`); None
                chooses it on CUDA and when tracing, and mmdet's cheaper
                per-level extractor on the CPU.

        Returns:
            (R, D) codes.
        """
        extractor = self.code_roi_extractor
        feats = [roi_align_dtype(f) for f in x[:extractor.num_inputs]]
        if sync_free is None:
            sync_free = feats[0].is_cuda or torch.jit.is_tracing()
        if sync_free:
            roi_feats = extract_roi_feats_traceable(extractor, feats, rois)
        else:
            roi_feats = extractor(feats, rois)
        return self.bbox_head[stage].forward_mask_conv(
            roi_feats, obj_feats, codec=self.mask_codec)

    # --------------------------------------------------------------- loss
    def crop_gt_masks(self, gt_instances: InstanceData) -> Tensor:
        """(G, S, S) float {0, 1}: each GT mask cropped to its GT box and
        resized (mmdet ``crop_and_resize``; ISTR
        ``gt_masks.crop_and_resize(gt_boxes, 28)``)."""
        if 'masks' not in gt_instances:
            raise ValueError('ISTR needs GT masks: add '
                             'LoadAnnotations(with_mask=True) to the train '
                             'pipeline')
        boxes = get_box_tensor(gt_instances.bboxes)
        return self.crop_gt_masks_by_boxes(
            gt_instances, boxes,
            torch.arange(len(boxes), device=boxes.device), img_shape=None)

    def crop_gt_masks_by_boxes(self, gt_instances: InstanceData,
                               boxes: Tensor, gt_inds: Tensor,
                               img_shape: Optional[Tuple[int, int]]) -> Tensor:
        """(P, S, S) float {0, 1}: GT masks ``gt_inds`` cropped by ``boxes``
        (mmdet ``crop_and_resize``), clipped to the image when ``img_shape``
        is given (ISTR v2 ``loss.py::loss_masks``: the matched query's
        detached predicted box, clamped to the image size; v1 crops by the
        GT boxes as they are).

        Args:
            boxes: (P, 4) detached boxes in input pixels.
            gt_inds: (P,) index of the matched GT of each box.
            img_shape: (h, w) of the input image, or None: no clipping.
        """
        size = self.mask_codec.mask_size
        if len(boxes) == 0:
            return boxes.new_zeros((0, size, size))
        if img_shape is not None:
            img_h, img_w = img_shape[:2]
            boxes = torch.stack([
                boxes[:, 0].clamp(0, img_w), boxes[:, 1].clamp(0, img_h),
                boxes[:, 2].clamp(0, img_w), boxes[:, 3].clamp(0, img_h)
            ], dim=1)
        cropped = gt_instances.masks.crop_and_resize(
            boxes.detach().cpu().numpy(), (size, size),
            gt_inds.cpu().numpy(), device=boxes.device)
        return cropped.to_tensor(torch.float32, boxes.device)

    def loss(self, x: Tuple[Tensor], rpn_results_list: InstanceList,
             batch_data_samples: SampleList) -> dict:
        """Crop the GT masks once (``gt_instances.mask_targets``), then
        :meth:`SparseRoIHead.loss` runs the stages through
        :meth:`bbox_loss`. Returns ``s{stage}.{loss_cls, loss_bbox,
        loss_iou, loss_mask_code, loss_mask_dice, pos_acc}``."""
        for data_sample in batch_data_samples:
            gt = data_sample.gt_instances
            gt.mask_targets = self.crop_gt_masks(gt)
        return super().loss(x, rpn_results_list, batch_data_samples)

    def bbox_loss(self, stage: int, x: Tuple[Tensor],
                  results_list: InstanceList, object_feats: Tensor,
                  batch_img_metas: List[dict],
                  batch_gt_instances: InstanceList) -> dict:
        """Forward, match and losses of one stage (mirrors mmdet 3.3.0
        ``SparseRoIHead.bbox_loss``; differs: mask codes join the matching
        and the losses, and the assigner sees sanitised inputs).

        Returns:
            the :meth:`_bbox_forward` dict plus ``sampling_results``,
            ``loss_bbox`` (dict of this stage's losses) and ``results_list``
            (next stage's proposals).
        """
        rois = bbox2roi([res.bboxes for res in results_list])
        # the conv branch (v2) runs on every query when the matching reads
        # codes (v2), else on the matched queries only, after the matching
        match_codes = self.matching_reads_codes(stage)
        bbox_results = self._bbox_forward(
            stage, x, rois, object_feats, batch_img_metas,
            with_codes=match_codes)
        bbox_head = self.bbox_head[stage]
        mask_codes = bbox_results['mask_codes']
        sampling_results = []
        for img_id, gt in enumerate(batch_gt_instances):
            gt_match = InstanceData(
                bboxes=get_box_tensor(gt.bboxes),
                labels=gt.labels,
                mask_codes=self.mask_codec.encode(
                    gt.mask_targets,
                    random=None if self.match_random_soft_targets else False))
            proposals = bbox_results['detached_proposals'][img_id]
            pred = InstanceData(
                bboxes=proposals,
                priors=proposals,
                scores=torch.nan_to_num(
                    bbox_results['detached_cls_scores'][img_id]))
            if mask_codes is not None:
                pred.mask_codes = torch.nan_to_num(
                    mask_codes[img_id].detach())
            assign_result = self.bbox_assigner[stage].assign(
                pred_instances=pred,
                gt_instances=gt_match,
                img_meta=batch_img_metas[img_id])
            sampling_results.append(self.bbox_sampler[stage].sample(
                assign_result, pred, gt_match))
        bbox_results.update(sampling_results=sampling_results)

        cls_score = bbox_results['cls_score']
        imgs_whwh = torch.cat(
            [res.imgs_whwh[None, ...] for res in results_list])
        loss_and_target = bbox_head.loss_and_target(
            cls_score.view(-1, cls_score.size(-1)),
            bbox_results['decoded_bboxes'],
            sampling_results,
            self.train_cfg[stage],
            imgs_whwh=imgs_whwh,
            concat=True)
        if mask_codes is None:  # conv branch, matching without codes
            pos_boxes = [
                proposals[res.pos_inds] for proposals, res in zip(
                    bbox_results['detached_proposals'], sampling_results)
            ]
            pos_obj = torch.cat([
                feats[res.pos_inds] for feats, res in zip(
                    bbox_results['object_feats'], sampling_results)
            ])
            pos_codes = self.conv_mask_codes(
                stage, x, bbox2roi(pos_boxes), obj_feats=pos_obj)
        else:
            pos_codes = torch.cat([
                codes[res.pos_inds]
                for codes, res in zip(mask_codes, sampling_results)
            ])
        if self.mask_target_boxes == 'pred':
            pos_targets = torch.cat([
                self.crop_gt_masks_by_boxes(
                    gt, proposals[res.pos_inds], res.pos_assigned_gt_inds,
                    meta['img_shape'])
                for gt, res, proposals, meta in zip(
                    batch_gt_instances, sampling_results,
                    bbox_results['detached_proposals'], batch_img_metas)
            ])
        else:
            pos_targets = torch.cat([
                gt.mask_targets[res.pos_assigned_gt_inds]
                for gt, res in zip(batch_gt_instances, sampling_results)
            ])
        # ISTR's num_boxes: matched GT, averaged over processes, at least 1
        avg_factor = reduce_mean(
            pos_codes.new_tensor(float(len(pos_codes)))).clamp(min=1)
        loss_and_target['loss_bbox'].update(
            bbox_head.loss_mask(pos_codes, pos_targets, self.mask_codec,
                                avg_factor))
        bbox_results.update(loss_and_target)

        next_results = []
        for img_id, res in enumerate(results_list):
            next_res = InstanceData()
            next_res.imgs_whwh = res.imgs_whwh
            next_res.bboxes = bbox_results['detached_proposals'][img_id]
            next_results.append(next_res)
        bbox_results.update(results_list=next_results)
        return bbox_results

    # ------------------------------------------------------------ predict
    def predict(self,
                x: Tuple[Tensor],
                rpn_results_list: InstanceList,
                batch_data_samples: SampleList,
                rescale: bool = False) -> InstanceList:
        """Detections with masks (replaces ``BaseRoIHead.predict``: the masks
        come from the box stages' codes, not from a mask RoI branch).

        Returns:
            per image :obj:`InstanceData` with ``bboxes`` (N, 4), ``scores``
            (N,), ``labels`` (N,), ``masks`` (N, H, W) bool, N =
            ``min(max_per_img, Q * K)``; H x W is ``ori_shape`` with
            ``rescale`` else ``img_shape``; fewer where scores are
            non-finite (removed with a warning) or, with
            ``test_cfg.score_thr``, not above it.
        """
        if self.test_cfg is None:
            raise ValueError('ISTRRoIHead.predict needs test_cfg')
        batch_img_metas = [ds.metainfo for ds in batch_data_samples]
        boxes, scores, labels, codes = self.predict_codes(
            x, rpn_results_list, self.test_cfg.max_per_img)
        results_list = self.predict_masks(boxes, scores, labels, codes,
                                          batch_img_metas, rescale)
        return [
            self._filter_results(results, meta)
            for results, meta in zip(results_list, batch_img_metas)
        ]

    def _filter_results(self, results: InstanceData,
                        img_meta: dict) -> InstanceData:
        """Drop rows with a non-finite box or score (warned, with the
        count) and, with ``test_cfg.score_thr``, rows not above it.

        A diverged or corrupted network can emit NaN logits, which ``topk``
        ranks first, and NaN box deltas (infinite boxes are clipped to the
        image already). This reads one value on the host, after the masks
        are pasted: the box-to-mask path stays free of host syncs."""
        results = remove_non_finite(results, img_meta, type(self).__name__)
        score_thr = self.test_cfg.get('score_thr')
        if score_thr is not None:
            return results[results.scores > score_thr]
        return results

    def predict_masks(self, boxes: Tensor, scores: Tensor, labels: Tensor,
                      codes: Tensor, batch_img_metas: List[dict],
                      rescale: bool) -> InstanceList:
        """Decode the detections' codes and paste them into the image.

        With ``mask_impl`` 'dense' (the default on CUDA) nothing here reads
        a device value on the host and the number of launched ops does not
        depend on N (decode is one matmul, boxes are rescaled with python
        scalars, :func:`paste_box_masks` is chunked by shapes only).

        Args:
            boxes: (B, N, 4) in input-image pixels.
            scores: (B, N). labels: (B, N).
            codes: (B, N, D).
            batch_img_metas: ``img_shape``, ``ori_shape`` and (with
                ``rescale``) ``scale_factor`` of each image.
            rescale: boxes and masks at ``ori_shape`` (else ``img_shape``).

        Returns:
            per image :obj:`InstanceData` (see :meth:`predict`).
        """
        num_imgs, num_dets = codes.shape[:2]
        mask_probs = self.mask_codec.decode(codes.flatten(0, 1)).view(
            num_imgs, num_dets, self.mask_codec.mask_size,
            self.mask_codec.mask_size)
        results_list = []
        for img_id, meta in enumerate(batch_img_metas):
            img_h, img_w = (float(v) for v in meta['img_shape'][:2])
            # clipped to the image, as detectron2's detector_postprocess
            img_boxes = torch.stack([
                boxes[img_id, :, 0].clamp(0, img_w),
                boxes[img_id, :, 1].clamp(0, img_h),
                boxes[img_id, :, 2].clamp(0, img_w),
                boxes[img_id, :, 3].clamp(0, img_h)
            ], dim=1)
            if rescale:
                out_size = tuple(meta['ori_shape'][:2])
                # python scalars: a tensor built from the host list would be
                # a host-to-device copy, which waits for the stream on CUDA
                scale_w, scale_h = (float(s) for s in meta['scale_factor'])
                img_boxes = torch.stack([
                    img_boxes[:, 0] / scale_w, img_boxes[:, 1] / scale_h,
                    img_boxes[:, 2] / scale_w, img_boxes[:, 3] / scale_h
                ], dim=1)
            else:
                out_size = tuple(meta['img_shape'][:2])
            results = InstanceData()
            results.bboxes = img_boxes
            results.scores = scores[img_id]
            results.labels = labels[img_id]
            # a NaN box (removed by predict, with a warning) pastes as an
            # empty (0, 0, 0, 0) box instead of reaching the paste's index math
            results.masks = paste_box_masks(
                mask_probs[img_id], torch.nan_to_num(img_boxes, nan=0.0),
                out_size,
                self.test_cfg.mask_thr_binary,
                impl=self.test_cfg.mask_impl)
            results_list.append(results)
        return results_list

    def predict_codes(
            self, x: Tuple[Tensor], rpn_results_list: InstanceList,
            max_per_img: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Run the stages and pick the detections.

        The MLP branch (v1) predicts a code for every query; the conv
        branch (v2) pools and encodes only the N detections' boxes
        (cheaper than v2's all-query pass, same codes: the branch sees one
        RoI at a time).

        Returns:
            ``boxes`` (B, N, 4) in input-image pixels, ``scores`` (B, N),
            ``labels`` (B, N) int64, ``codes`` (B, N, D), N =
            ``min(max_per_img, Q * K)``, by descending score.
        """
        # one layout change for the 6-7 pooling calls that read the maps
        x = channels_last_for_pooling(x, self._pooling_extractors())
        cls_scores, proposals, codes, obj_feats = self._run_stages(
            x, rpn_results_list, with_codes=not self.conv_codes)
        cls_probs = cls_scores.sigmoid()  # (B, Q, K)
        num_imgs, num_queries, num_classes = cls_probs.shape
        num_dets = min(max_per_img, num_queries * num_classes)
        scores, flat_inds = cls_probs.flatten(1).topk(num_dets, dim=1)
        labels = flat_inds % num_classes
        query_inds = torch.div(flat_inds, num_classes, rounding_mode='floor')
        boxes = proposals.gather(1, query_inds[..., None].expand(-1, -1, 4))
        if self.conv_codes:
            det_obj = obj_feats.gather(
                1, query_inds[..., None].expand(-1, -1, obj_feats.shape[-1]))
            det_codes = self.detection_conv_codes(
                x, bbox2roi(list(sanitize_boxes(boxes).unbind(0))),
                det_obj.flatten(0, 1),
                (query_inds + num_queries * torch.arange(
                    num_imgs, device=query_inds.device)[:, None]).flatten()
            ).view(num_imgs, num_dets, -1)
        else:
            det_codes = codes.gather(
                1, query_inds[..., None].expand(-1, -1, codes.shape[-1]))
        return boxes, scores, labels, det_codes

    def detection_conv_codes(self, x: Tuple[Tensor], rois: Tensor,
                             obj_feats: Tensor, query_ids: Tensor) -> Tensor:
        """Codes of the detections by the last stage's conv branch (v2).

        A query can give several detections (its best classes); they share
        its box and object feature, hence its code. On the CPU each distinct
        query is pooled and encoded once and the codes are gathered back
        (a third of the branch's work on the benchmark's 100 detections,
        docs/istr.md). Counting the distinct queries reads a value on the
        host, so on CUDA and while tracing or exporting every detection is
        encoded (the mask path stays free of host syncs there).

        Args:
            x: neck outputs.
            rois: (R, 5) the detections' boxes (valid).
            obj_feats: (R, C) their queries' object features.
            query_ids: (R,) the query of each detection, unique across
                the batch.

        Returns:
            (R, D) codes.
        """
        stage = self.num_stages - 1
        if x[0].is_cuda or torch.jit.is_tracing() or \
                torch.onnx.is_in_onnx_export() or len(query_ids) == 0:
            return self.conv_mask_codes(stage, x, rois, obj_feats=obj_feats)
        distinct, inverse = torch.unique(query_ids, return_inverse=True)
        # the first detection of each distinct query stands for it
        first = torch.full_like(distinct, len(query_ids)).scatter_reduce_(
            0, inverse, torch.arange(len(query_ids), device=query_ids.device),
            'amin')
        codes = self.conv_mask_codes(
            stage, x, rois[first], obj_feats=obj_feats[first])
        return codes[inverse]

    def _pooling_extractors(self) -> List[torch.nn.Module]:
        """The RoI extractors that read the neck's maps at test time."""
        extractors = list(self.bbox_roi_extractor) if isinstance(
            self.bbox_roi_extractor, torch.nn.ModuleList) else [
                self.bbox_roi_extractor]
        if self.conv_codes:
            extractors.append(self.code_roi_extractor)
        return extractors

    def run_stages(self,
                   x: Tuple[Tensor],
                   rpn_results_list: InstanceList,
                   with_codes: bool = True
                   ) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
        """All stages on the queries, without GT (see :meth:`_run_stages`,
        whose object features this leaves out)."""
        return self._run_stages(x, rpn_results_list, with_codes)[:3]

    def _run_stages(self,
                    x: Tuple[Tensor],
                    rpn_results_list: InstanceList,
                    with_codes: bool = True
                    ) -> Tuple[Tensor, Tensor, Optional[Tensor], Tensor]:
        """All stages on the queries, without GT.

        Args:
            x: neck outputs.
            rpn_results_list: per image ``bboxes`` (Q, 4) and ``features``
                (Q, C) (popped: the stages consume them).
            with_codes: return the last stage's codes of every query (the
                conv branch runs only when asked; the MLP branch always).

        Returns:
            ``cls_scores`` (B, Q, K) logits (the last stage's, or the mean
            over ``test_cfg.cls_score_stages``), ``boxes`` (B, Q, 4) of the
            last stage in input-image pixels (as decoded: unclipped, not
            sanitised) and its ``mask_codes`` (B, Q, D) (None for the conv
            branch without ``with_codes``), and the last stage's object
            features (B, Q, C).
        """
        proposal_list = [res.bboxes for res in rpn_results_list]
        object_feats = torch.stack(
            [res.pop('features') for res in rpn_results_list])
        batch_img_metas: List[Optional[dict]] = [None] * len(proposal_list)
        score_stages = None if self.test_cfg is None else \
            self.test_cfg.get('cls_score_stages')
        averaged = []
        for stage in range(self.num_stages):
            last = stage == self.num_stages - 1
            bbox_results = self._bbox_forward(
                stage, x, bbox2roi(proposal_list), object_feats,
                batch_img_metas, with_codes=with_codes and last)
            if score_stages is not None and stage in score_stages:
                averaged.append(bbox_results['cls_score'])
            object_feats = bbox_results['object_feats']
            proposal_list = bbox_results['detached_proposals']
        cls_scores = bbox_results['cls_score'] if score_stages is None \
            else torch.stack(averaged).mean(0)
        # the last stage's boxes as decoded, not sanitised: a non-finite box
        # reaches predict, which removes it with a warning, instead of
        # becoming a silent (0, 0, 0, 0) detection
        num_imgs, num_queries = bbox_results['cls_score'].shape[:2]
        boxes = bbox_results['decoded_bboxes'].detach().view(
            num_imgs, num_queries, 4)
        return (cls_scores, boxes, bbox_results['mask_codes'],
                bbox_results['object_feats'])

    def forward(self, x: Tuple[Tensor], rpn_results_list: InstanceList,
                batch_data_samples: SampleList) -> Tuple[Tensor, Tensor,
                                                         Tensor]:
        """``mode='tensor'``: the raw outputs of the last stage, no GT.

        mmdet's :meth:`SparseRoIHead.forward` runs the matching and needs GT
        in the data samples; this one does not, so a detector can be traced
        or exported from images alone. The top-k, the decode (one matrix
        product with ``mask_codec``'s buffers) and the paste are left to
        :meth:`predict` or to the deployment side.

        Returns:
            see :meth:`run_stages`.
        """
        return self.run_stages(x, rpn_results_list)
