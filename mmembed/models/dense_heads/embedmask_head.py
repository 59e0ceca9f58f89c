# Copyright (c) mmembed authors. All rights reserved.
"""EmbedMask: Embedding Coupling for One-stage Instance Segmentation.

Paper: Ying et al., arXiv 1912.01954 (v1). Official code:
``yinghdb/EmbedMask`` ``fcos_core/modeling/rpn/embed_mask/{embed_mask,loss,
inference}.py`` (v1 = ``3b4d9fb``, v3 = ``e9d6142``); constants in
``specs/methods.md`` section 1.

Shape shorthand: B images, L levels, D embedding length, M margin length
(1 = one margin per proposal, D = one per dimension), S spatial embedding
dims (0 or 2), P positives / proposals of one image, G ground truths,
N detections, (h, w) the stride-4 pixel-embedding map.

A pixel p belongs to proposal j with probability
``exp(-sum_d m_jd (e_pd - q_jd)^2)`` (m = 1 / (2 sigma^2)).

Paper (v1) vs released code (v3), each one config key (defaults = paper):

================================  ==================  =====================
key                               paper / v1          official v3
================================  ==================  =====================
box head ``embed_dim``            32                  16
``spatial_dims`` (both heads)     0                   2 (+ coords / 100 with
                                                      a learnable scale)
box head ``margin_per_dim``       False (1 margin)    True (D margins)
box head ``margin_source``        ``'box'`` (1x1 conv ``'tower'`` (3x3 conv on
                                  on detached l,t,r,b bbox tower / 32)
                                  x stride / 800)
mask head ``proposal_sampling``   ``'iou_mean'``      ``'best_iou'``
mask head ``loss_region``         ``'box'`` (GT box   ``'image'``
                                  + 10 % + 1 px)
mask head ``normalize_by``        ``'all_gts'``       ``'sampled_gts'``
mask head ``loss_smooth``         weight 0.1          None
``test_cfg.mask_box_expand``      0                   2 (cells at stride 4)
``test_cfg.mask_thr``             0.5                 0.53
================================  ==================  =====================
"""
import math
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, Scale
from mmdet.models.dense_heads.base_mask_head import BaseMaskHead
from mmdet.registry import MODELS
from mmdet.utils import (ConfigType, InstanceList, OptConfigType,
                         OptInstanceList, OptMultiConfig)
from mmengine.structures import InstanceData
from torch import Tensor

from ...utils.arg_checks import check_init_args, check_keys
from ..utils.embedding_kernel import (embedding_logprob,
                                      embedding_logprob_pairs,
                                      logprob_to_logit)
from ..utils.level_fusion import sum_upsampled
from ..utils.mask_ops import (candidate_out_regions, clean_instance_masks,
                              paste_dense_logits, paste_ragged_logits,
                              read_mask_clean, rescale_gt_masks,
                              upsampled_size)
from ..utils.ragged_ops import (boxes_to_cells, chunk_ranges, even_chunks,
                                ragged_grid, region_areas, region_masks)
from ..utils.sample_selection import (SAMPLING_MODES,
                                      select_proposal_samples)
from .fcos_code_head import BOX_TEST_CFG_KEYS, FCOSCodeHead


def prior_margin_bias(prior_margin: float) -> float:
    """Log-margin bias that gives probability 0.5 at embedding distance
    ``prior_margin`` (official v3 ``PRIOR_MARGIN 2`` -> log(ln 2 / 4))."""
    return math.log(math.log(2) / prior_margin**2)


@MODELS.register_module()
@check_init_args
class EmbedMaskBoxHead(FCOSCodeHead):
    """FCOS head that also predicts a proposal embedding (D) and a margin
    (1 or D, predicted in log space and exp-activated) at every location.

    The code of a location is ``[embedding (D) | margin (M)]``. The spatial
    coordinate term of v3 embeddings is added by :class:`EmbedMaskHead`,
    which owns the learnable position scale shared by pixel and proposal
    embeddings.

    Args:
        embed_dim (int): D. Paper 32, v3 16.
        margin_per_dim (bool): One margin per dimension (v3) or one per
            proposal (paper).
        margin_source (str): ``'box'``: 1x1 conv on the detached predicted
            (l, t, r, b) x stride / ``box_margin_norm`` (paper / v1
            ``BOX_TO_MARGIN_BLOCK``); ``'tower'``: 3x3 conv on the bbox tower
            x ``margin_tower_scale`` (v3 ``MARGIN_REDUCE_FACTOR 32``).
        margin_tower_scale (float): see ``margin_source``. Defaults to 1/32.
        box_margin_norm (float): see ``margin_source``. Defaults to 800.
        spatial_dims (int): S; with ``margin_per_dim`` the first S margins
            get a per-level learnable scale (v3 ``margin_scales``).
        prior_margin (float): initial embedding distance at which the
            probability is 0.5 (sets the margin conv's bias).
        sample_in_mask (bool): see :class:`FCOSCodeHead`. True in paper and
            v3.
        **kwargs: Passed unchanged to :class:`mmdet.models.FCOSHead`.
    """

    def __init__(self,
                 *,
                 embed_dim: int = 32,
                 margin_per_dim: bool = False,
                 margin_source: str = 'box',
                 margin_tower_scale: float = 1 / 32,
                 box_margin_norm: float = 800.,
                 spatial_dims: int = 0,
                 prior_margin: float = 2.0,
                 sample_in_mask: bool = True,
                 **kwargs) -> None:
        if embed_dim < 1:
            raise ValueError(f'embed_dim must be >= 1, got {embed_dim}')
        if margin_source not in ('box', 'tower'):
            raise ValueError("margin_source must be 'box' or 'tower', got "
                             f'{margin_source!r}')
        if not 0 <= spatial_dims <= embed_dim:
            raise ValueError(f'spatial_dims must be in [0, embed_dim='
                             f'{embed_dim}], got {spatial_dims}')
        self.embed_dim = embed_dim
        self.margin_dims = embed_dim if margin_per_dim else 1
        self.margin_source = margin_source
        self.margin_tower_scale = margin_tower_scale
        self.box_margin_norm = box_margin_norm
        self.spatial_dims = spatial_dims
        self.prior_margin = prior_margin
        # read by FCOSCodeHead.__init__ and _init_layers
        self.code_channels = embed_dim + self.margin_dims
        super().__init__(sample_in_mask=sample_in_mask, **kwargs)

    def _init_layers(self) -> None:
        super()._init_layers()
        self.conv_embed = nn.Conv2d(
            self.feat_channels, self.embed_dim, 3, padding=1)
        if self.margin_source == 'tower':
            self.conv_margin = nn.Conv2d(
                self.feat_channels, self.margin_dims, 3, padding=1)
        else:
            self.conv_margin = nn.Conv2d(4, self.margin_dims, 1)
        self.margin_scales = nn.ModuleList(
            [Scale(1.0) for _ in self.strides]) \
            if self.spatial_dims and self.margin_dims > 1 else None

    def init_weights(self) -> None:
        super().init_weights()
        nn.init.constant_(self.conv_margin.bias,
                          prior_margin_bias(self.prior_margin))

    def forward_code(self, cls_feat: Tensor, reg_feat: Tensor,
                     bbox_pixels: Tensor, level: int) -> Tensor:
        """(B, D + M, H, W): embeddings, then exp-activated margins."""
        embeds = self.conv_embed(reg_feat)
        if self.margin_source == 'tower':
            log_margins = self.conv_margin(reg_feat * self.margin_tower_scale)
        else:
            # the margin reads the box but must not train the box branch
            log_margins = self.conv_margin(bbox_pixels.detach() /
                                           self.box_margin_norm)
        if self.margin_scales is not None:
            num = self.spatial_dims
            log_margins = torch.cat([
                self.margin_scales[level](log_margins[:, :num]),
                log_margins[:, num:]
            ], dim=1)
        return torch.cat([embeds, log_margins.float().exp()], dim=1)


@MODELS.register_module()
@check_init_args
class EmbedMaskHead(BaseMaskHead):
    """Pixel-embedding branch and mask losses / inference of EmbedMask.

    Takes P3 (``in_level``) through ``stacked_convs`` convs and a predictor
    to D pixel-embedding channels at stride 8, adds the spatial term, and
    upsamples bilinearly x2 to stride 4 (official ``MASK_SCALE_FACTOR 2``).
    Works behind any :class:`FCOSCodeHead` whose codes are
    ``[embedding (D) | margin (M)]``, such as :class:`EmbedMaskBoxHead`.

    Args:
        in_channels (int): FPN channels.
        feat_channels (int): Mask tower width.
        stacked_convs (int): Convs in the mask tower (4; the paper's "five
            layers" count the predictor).
        embed_dim (int): D, must equal the box head's.
        margin_dims (int): M, 1 or D, must equal the box head's.
        spatial_dims (int): S (v3: 2): ``position_scale * (x, y) / 100`` is
            added to the first S dims of pixel and proposal embeddings.
        coord_scale (float): the 1/100 above.
        in_level (int): FPN level of the pixel branch (0 = P3).
        in_stride (int): its stride (8).
        pixel_levels (int): mmembed's own (neither the paper nor the
            official code): with L > 1 the branch reads the L FPN levels
            from ``in_level`` up (e.g. P3-P5), each through its own conv,
            the coarser ones upsampled to ``in_level`` and summed, before
            the tower (the layout of CondInst's mask branch and BlendMask's
            bottom module). 1 (default) = paper and official: ``in_level``
            alone.
        upsample_factor (int): map stride = in_stride / upsample_factor.
        conv_bias (bool): bias in tower convs (the official towers have one
            next to GN; needed to load converted official weights).
        norm_cfg (dict): tower norm.
        proposal_sampling (str): ``'iou_mean'`` (paper) or ``'best_iou'``
            (v3), see :func:`select_proposal_samples`.
        sample_iou_thr (float): IoU threshold of ``'iou_mean'``.
        sample_reduction (str): what the mask loss supervises.
            ``'mean'`` (paper and official): the selected samples of a GT
            are averaged into one proposal embedding and margin, which get
            one mask loss. ``'none'`` (mmembed's own): every selected sample
            gets its own mask loss, weighted 1 / (its GT's sample count) so
            each GT keeps the weight it has with ``'mean'``; inference reads
            single locations, so this trains what inference uses (the
            paper's smooth loss only pulls them toward the mean). Same as
            ``'mean'`` with ``'best_iou'`` sampling (one sample per GT).
        loss_region (str): ``'box'`` (paper: pixels inside the GT box grown
            by ``box_expand_ratio`` of its size plus ``box_expand_cells``
            cells) or ``'image'`` (v3: the whole map).
        box_expand_ratio (float): see ``loss_region``. Defaults to 0.1.
        box_expand_cells (int): see ``loss_region``. Defaults to 1.
        normalize_by (str): per-image denominator of the mask and smooth
            losses: ``'all_gts'`` (paper / v1: every GT of the image) or
            ``'sampled_gts'`` (v3: GTs that have samples); the result is then
            averaged over images.
        loss_mask (dict): Mask loss on probabilities. Defaults to the
            official per-instance Lovász hinge, weight 0.5.
        loss_smooth (dict, optional): Paper's smooth loss (weight 0.1);
            None disables it (v3).
        loss_mask_aux (dict, optional): mmembed's own (neither the paper
            nor the official code): a second loss on the same mask
            probabilities, targets, instance weights and supervised region
            as ``loss_mask``, reported as ``loss_mask_aux``, e.g.
            ``dict(type='RegionDiceLoss', loss_weight=1.0)``. None (default)
            keeps the paper and v3 behaviours exact.
        max_masks_to_train (int): cap on GTs per image in the mask loss,
            -1 = no cap (memory guard for crowded images).
        train_cfg, test_cfg (dict): ``test_cfg`` keys: ``mask_thr``
            (probability threshold), ``mask_box_expand`` (cells at stride 4
            around the box where probabilities are computed; elsewhere the
            log-probability is -10, as in official v3), ``mask_interp``
            (``'logprob'`` (default, paper and official): log-probabilities
            are upsampled bilinearly and thresholded; ``'logit'``
            (mmembed's own): logits ``log p - log(1 - p)`` are, which
            removes the shrinking bias of upsampling a map that saturates at
            0 inside; see :func:`logprob_to_logit`), ``mask_impl``
            (``'auto'`` (default): ``'dense'`` on CUDA, ``'ragged'``
            elsewhere; both give the same masks, see
            :meth:`_predict_masks_single`), ``mask_chunk_pixels`` (memory
            budget of ``'ragged'``: summed box-region output pixels per
            chunk, default 2e6), ``mask_dense_chunk_pixels`` (memory budget
            of ``'dense'``: N x H x W output pixels per chunk, default 1.5e8,
            i.e. 100 detections at 1333 x 800 in one chunk), ``mask_clean``
            (default False: keep each mask's largest component and fill its
            holes, :func:`clean_instance_masks`; a host sync).
        init_cfg (dict): Normal(0, 0.01) on convs, as the official heads.
    """

    TEST_CFG_KEYS = ('mask_thr', 'mask_box_expand', 'mask_interp',
                     'mask_impl',
                     'mask_chunk_pixels', 'mask_dense_chunk_pixels',
                     'mask_clean')
    MASK_IMPLS = ('auto', 'ragged', 'dense')
    MASK_INTERPS = ('logprob', 'logit')
    # output pixels evaluated per chunk. ragged: summed box-region pixels
    # (about 100 MB of temporaries); dense: N x H x W, i.e. 100 detections at
    # 1333 x 800 in one chunk (about 0.6 GB of float32 temporaries)
    DEFAULT_CHUNK_PIXELS = dict(ragged=2_000_000, dense=150_000_000)
    OUTSIDE_LOGPROB = -10.0  # official v3 MaskProb_cuda.cu initial value
    SAMPLE_REDUCTIONS = ('mean', 'none')

    def __init__(self,
                 *,
                 in_channels: int = 256,
                 feat_channels: int = 256,
                 stacked_convs: int = 4,
                 embed_dim: int = 32,
                 margin_dims: int = 1,
                 spatial_dims: int = 0,
                 coord_scale: float = 0.01,
                 in_level: int = 0,
                 in_stride: int = 8,
                 pixel_levels: int = 1,
                 upsample_factor: int = 2,
                 conv_bias: bool = True,
                 norm_cfg: OptConfigType = dict(
                     type='GN', num_groups=32, requires_grad=True),
                 proposal_sampling: str = 'iou_mean',
                 sample_iou_thr: float = 0.5,
                 sample_reduction: str = 'mean',
                 loss_region: str = 'box',
                 box_expand_ratio: float = 0.1,
                 box_expand_cells: int = 1,
                 normalize_by: str = 'all_gts',
                 loss_mask: ConfigType = dict(
                     type='LovaszHingeLoss',
                     input_type='probs',
                     prob_eps=1e-9,
                     loss_weight=0.5),
                 loss_smooth: OptConfigType = dict(
                     type='SmoothEmbeddingLoss', loss_weight=0.1),
                 loss_mask_aux: OptConfigType = None,
                 max_masks_to_train: int = -1,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = dict(
                     type='Normal', layer='Conv2d', std=0.01)) -> None:
        super().__init__(init_cfg=init_cfg)
        if margin_dims not in (1, embed_dim):
            raise ValueError(f'margin_dims must be 1 or embed_dim '
                             f'({embed_dim}), got {margin_dims}')
        if not 0 <= spatial_dims <= embed_dim:
            raise ValueError(f'spatial_dims must be in [0, {embed_dim}], got '
                             f'{spatial_dims}')
        if proposal_sampling not in SAMPLING_MODES:
            raise ValueError(f'proposal_sampling must be one of '
                             f'{SAMPLING_MODES}, got {proposal_sampling!r}')
        if sample_reduction not in self.SAMPLE_REDUCTIONS:
            raise ValueError(f'sample_reduction must be one of '
                             f'{self.SAMPLE_REDUCTIONS}, got '
                             f'{sample_reduction!r}')
        if not isinstance(pixel_levels, int) or pixel_levels < 1:
            raise ValueError(
                f'pixel_levels must be an int >= 1, got {pixel_levels!r}')
        if loss_region not in ('box', 'image'):
            raise ValueError("loss_region must be 'box' or 'image', got "
                             f'{loss_region!r}')
        if normalize_by not in ('all_gts', 'sampled_gts'):
            raise ValueError("normalize_by must be 'all_gts' or "
                             f"'sampled_gts', got {normalize_by!r}")
        if in_stride % upsample_factor:
            raise ValueError(f'in_stride {in_stride} is not divisible by '
                             f'upsample_factor {upsample_factor}')
        self.embed_dim = embed_dim
        self.margin_dims = margin_dims
        self.spatial_dims = spatial_dims
        self.coord_scale = coord_scale
        self.in_level = in_level
        self.in_stride = in_stride
        self.pixel_levels = pixel_levels
        self.upsample_factor = upsample_factor
        self.mask_stride = in_stride // upsample_factor
        self.proposal_sampling = proposal_sampling
        self.sample_iou_thr = sample_iou_thr
        self.sample_reduction = sample_reduction
        self.loss_region = loss_region
        self.box_expand_ratio = box_expand_ratio
        self.box_expand_cells = box_expand_cells
        self.normalize_by = normalize_by
        self.max_masks_to_train = max_masks_to_train
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        if test_cfg is not None:
            self._check_test_cfg_keys()
        self.loss_mask = MODELS.build(loss_mask)
        self.loss_smooth = MODELS.build(loss_smooth) if loss_smooth else None
        # mmembed's own, neither paper nor official code: a second mask loss
        # on the same probabilities, targets, weights and region (e.g.
        # RegionDiceLoss); None (the default) keeps both behaviours exact
        self.loss_mask_aux = MODELS.build(
            loss_mask_aux) if loss_mask_aux else None

        # one conv per fused level (none at 1 level: the paper's exact
        # parameters, so official checkpoints still convert)
        self.level_convs = nn.ModuleList([
            ConvModule(
                in_channels,
                feat_channels,
                3,
                padding=1,
                norm_cfg=norm_cfg,
                bias=conv_bias) for _ in range(pixel_levels)
        ]) if pixel_levels > 1 else None
        tower_in = feat_channels if self.level_convs else in_channels
        self.mask_convs = nn.ModuleList([
            ConvModule(
                tower_in if i == 0 else feat_channels,
                feat_channels,
                3,
                padding=1,
                norm_cfg=norm_cfg,
                bias=conv_bias) for i in range(stacked_convs)
        ])
        self.conv_pixel = nn.Conv2d(
            feat_channels if stacked_convs else tower_in, embed_dim, 3,
            padding=1)
        self.position_scale = Scale(1.0) if spatial_dims else None

    # ------------------------------------------------------------------ #
    # shared pieces
    # ------------------------------------------------------------------ #
    def _coord_term(self, points: Tensor) -> Tensor:
        """(K, 2) pixel (x, y) -> (K, S) term added to spatial dims."""
        return self.position_scale(points * self.coord_scale)

    def forward(self,
                x: Tuple[Tensor, ...],
                positive_infos: OptInstanceList = None) -> Tuple[Tensor]:
        """Pixel embeddings.

        Args:
            x: FPN features; ``x[in_level]`` is (B, in_channels, H/8, W/8)
                (with ``pixel_levels`` L, levels ``in_level`` to
                ``in_level + L - 1`` are read).
            positive_infos: unused (codes reach :meth:`loss_by_feat` and
                :meth:`predict_by_feat` directly); accepted for the
                :class:`BaseMaskHead` contract.

        Returns:
            tuple with one (B, D, H/4, W/4) tensor.
        """
        if self.level_convs is None:
            feat = x[self.in_level]
        else:
            levels = list(x[self.in_level:])[:self.pixel_levels]
            if len(levels) < self.pixel_levels:
                raise ValueError(
                    f'{type(self).__name__}: pixel_levels '
                    f'{self.pixel_levels} from in_level {self.in_level} needs '
                    f'{self.pixel_levels} FPN levels, the neck gives '
                    f'{len(levels)} from there')
            feat = sum_upsampled(
                [conv(level) for conv, level in zip(self.level_convs, levels)])
        for conv in self.mask_convs:
            feat = conv(feat)
        embeds = self.conv_pixel(feat)
        if self.spatial_dims:
            height, width = embeds.shape[-2:]
            # location (x, y) = index * stride + stride // 2, as the official
            # compute_locations; the same convention as mmdet's priors
            ys = torch.arange(height, device=embeds.device,
                              dtype=embeds.dtype) * self.in_stride
            xs = torch.arange(width, device=embeds.device,
                              dtype=embeds.dtype) * self.in_stride
            half = self.in_stride // 2
            coords = torch.stack(
                torch.meshgrid(xs + half, ys + half, indexing='xy'), dim=-1)
            coord_term = self._coord_term(coords.reshape(-1, 2)).t().reshape(
                1, 2, height, width)[:, :self.spatial_dims]
            embeds = torch.cat([
                embeds[:, :self.spatial_dims] + coord_term,
                embeds[:, self.spatial_dims:]
            ], dim=1)
        if self.upsample_factor > 1:
            embeds = F.interpolate(
                embeds,
                scale_factor=self.upsample_factor,
                mode='bilinear',
                align_corners=False)
        return (embeds, )

    def split_codes(self, codes: Tensor,
                    points: Tensor) -> Tuple[Tensor, Tensor]:
        """Codes ``[embedding | margin]`` -> (embeddings (K, D) with the
        spatial term added, margins (K, M))."""
        expected = self.embed_dim + self.margin_dims
        if codes.dim() != 2 or codes.shape[1] != expected:
            raise ValueError(
                f'{type(self).__name__}: codes must be (K, {expected}) = '
                f'embed_dim {self.embed_dim} + margin_dims '
                f'{self.margin_dims}, got {tuple(codes.shape)}; make the box '
                "head's embed_dim / margin_per_dim match the mask head's")
        if not self.spatial_dims:
            embeds, margins = codes.split([self.embed_dim, self.margin_dims],
                                          1)
            return embeds, margins
        num = self.spatial_dims
        spatial, rest, margins = codes.split(
            [num, self.embed_dim - num, self.margin_dims], 1)
        if num < points.shape[1]:
            points = points[:, :num]
        # the _coord_term of forward(), fused into one op (the inference
        # mask path counts its launched ops)
        spatial = torch.addcmul(
            spatial, points, self.position_scale.scale, value=self.coord_scale)
        return torch.cat([spatial, rest], dim=1), margins

    # ------------------------------------------------------------------ #
    # training
    # ------------------------------------------------------------------ #
    def loss_by_feat(self,
                     pixel_embeds: Tensor,
                     batch_gt_instances: InstanceList,
                     batch_img_metas: List[dict],
                     positive_infos: InstanceList,
                     batch_gt_instances_ignore: OptInstanceList = None
                     ) -> dict:
        """Lovász mask loss (per instance, on probabilities) and the smooth
        loss.

        Args:
            pixel_embeds: (B, D, h, w) from :meth:`forward`.
            batch_gt_instances: GT with ``bboxes``, ``labels`` and ``masks``
                (padded to the batch input shape by ``BaseMaskHead.loss``).
            batch_img_metas: image metas.
            positive_infos: from the box head's ``get_positive_infos()``.
            batch_gt_instances_ignore: accepted by name; crowd regions are
                not used (the box head warns about them).

        Returns:
            dict with ``loss_mask`` and, if enabled, ``loss_smooth``.
        """
        if positive_infos is None:
            raise ValueError(f'{type(self).__name__} needs positive_infos '
                             'from an FCOSCodeHead-style box head')
        num_imgs = len(batch_img_metas)
        map_h, map_w = pixel_embeds.shape[-2:]
        # "meaningless loss" of the official code: every prediction stays in
        # the graph even when no GT has a sample (DDP, empty batches)
        zero = pixel_embeds.sum() * 0 + sum(
            info.codes.sum() for info in positive_infos) * 0

        mask_probs, mask_targets, mask_valid, mask_weights = [], [], [], []
        smooth_samples, smooth_inst, smooth_weights = [], [], []
        inst_offset = 0
        for img_id, (gt, info, meta) in enumerate(
                zip(batch_gt_instances, positive_infos, batch_img_metas)):
            if 'masks' not in gt:
                raise ValueError(
                    f'{type(self).__name__}: image {img_id} '
                    f'({meta.get("img_path")}) has no GT masks; add '
                    'LoadAnnotations(with_mask=True) to the train pipeline.')
            if len(gt.masks) != len(gt.bboxes):
                raise ValueError(
                    f'{type(self).__name__}: image {img_id} '
                    f'({meta.get("img_path")}) has {len(gt.bboxes)} boxes '
                    f'but {len(gt.masks)} masks.')
            samples = select_proposal_samples(
                info.bboxes, gt.bboxes, info.pos_assigned_gt_inds,
                self.proposal_sampling, self.sample_iou_thr)
            if len(samples.gt_inds) == 0:
                continue
            sampled_gts, inst_ids = torch.unique_consecutive(
                samples.gt_inds, return_inverse=True)
            if 0 < self.max_masks_to_train < len(sampled_gts):
                keep_gts = torch.randperm(
                    len(sampled_gts),
                    device=sampled_gts.device)[:self.max_masks_to_train]
                keep = torch.zeros_like(sampled_gts, dtype=torch.bool)
                keep[keep_gts] = True
                keep_samples = keep[inst_ids]
                samples = type(samples)(samples.pos_inds[keep_samples],
                                        samples.gt_inds[keep_samples])
                sampled_gts, inst_ids = torch.unique_consecutive(
                    samples.gt_inds, return_inverse=True)
            num_inst = len(sampled_gts)
            embeds, margins = self.split_codes(
                info.codes[samples.pos_inds], info.points[samples.pos_inds])
            counts = torch.bincount(
                inst_ids, minlength=num_inst).clamp(min=1)[:, None]
            denom = len(gt) if self.normalize_by == 'all_gts' else num_inst
            inst_weight = embeds.new_full((num_inst, ), 1.0 / denom)
            gt_masks = rescale_gt_masks(
                gt.masks[sampled_gts.cpu().numpy()].to_tensor(
                    dtype=torch.bool, device=pixel_embeds.device),
                (map_h, map_w)).flatten(1)
            regions = self._box_region(
                gt.bboxes[sampled_gts], (map_h, map_w)).flatten(
                    1) if self.loss_region == 'box' else None
            if self.sample_reduction == 'mean':
                row_embeds = embeds.new_zeros(
                    num_inst, self.embed_dim).index_add(0, inst_ids,
                                                        embeds) / counts
                row_margins = margins.new_zeros(
                    num_inst, self.margin_dims).index_add(
                        0, inst_ids, margins) / counts
                row_weights = inst_weight
            else:
                # one row per sample, its GT's mask and region; a GT's rows
                # share its weight
                row_embeds, row_margins = embeds, margins
                gt_masks = gt_masks[inst_ids]
                regions = regions[inst_ids] if regions is not None else None
                row_weights = inst_weight[inst_ids] / counts[inst_ids, 0]
            logprob = embedding_logprob(pixel_embeds[img_id].flatten(1),
                                        row_embeds, row_margins)
            mask_probs.append(logprob.exp())
            mask_targets.append(gt_masks)
            if regions is not None:
                mask_valid.append(regions)
            mask_weights.append(row_weights)
            smooth_samples.append(torch.cat([embeds, margins], dim=1))
            smooth_inst.append(inst_ids + inst_offset)
            smooth_weights.append(inst_weight)
            inst_offset += num_inst

        if not mask_probs:
            losses = dict(loss_mask=zero)
            if self.loss_smooth is not None:
                losses['loss_smooth'] = zero
            if self.loss_mask_aux is not None:
                losses['loss_mask_aux'] = zero
            return losses
        mask_args = (torch.cat(mask_probs), torch.cat(mask_targets))
        mask_kwargs = dict(
            weight=torch.cat(mask_weights),
            avg_factor=num_imgs,
            valid_mask=torch.cat(mask_valid) if mask_valid else None)
        losses = dict(
            loss_mask=self.loss_mask(*mask_args, **mask_kwargs) + zero)
        if self.loss_mask_aux is not None:
            losses['loss_mask_aux'] = self.loss_mask_aux(
                *mask_args, **mask_kwargs) + zero
        if self.loss_smooth is not None:
            samples_cat = torch.cat(smooth_samples)
            losses['loss_smooth'] = self.loss_smooth(
                samples_cat[:, :self.embed_dim],
                torch.cat(smooth_inst),
                samples_cat[:, self.embed_dim:],
                num_insts=inst_offset,
                weight=torch.cat(smooth_weights),
                avg_factor=num_imgs) + zero
        return losses

    def _box_region(self, boxes: Tensor, map_size: Tuple[int, int]) -> Tensor:
        """(G, 4) GT boxes in input pixels -> (G, h, w) bool: cells inside
        the box grown by ``box_expand_ratio`` of its width / height plus
        ``box_expand_cells`` cells (official v1 ``crop_by_box``)."""
        stride = self.mask_stride
        wh = (boxes[:, 2:] - boxes[:, :2]) / stride
        grow = wh * self.box_expand_ratio + self.box_expand_cells
        low = torch.floor(boxes[:, :2] / stride - grow)
        high = torch.ceil(boxes[:, 2:] / stride + grow)
        return region_masks(torch.cat([low, high], dim=1).long(), map_size)

    # ------------------------------------------------------------------ #
    # inference
    # ------------------------------------------------------------------ #
    def _check_test_cfg_keys(self) -> None:
        """Reject misspelt keys (``mask_trh``) in the detector's test_cfg,
        which this head shares with the box head."""
        check_keys(type(self).__name__, self.test_cfg,
                   self.TEST_CFG_KEYS + BOX_TEST_CFG_KEYS, 'test_cfg',
                   'the detector passes one test_cfg to bbox_head and '
                   'mask_head')

    def _read_test_cfg(self, device: torch.device
                       ) -> Tuple[float, int, str, int, str]:
        """Validated ``(mask_thr, mask_box_expand, impl, chunk budget,
        interp)``."""
        cfg = self.test_cfg
        if cfg is None:
            raise ValueError(f'{type(self).__name__} needs a test_cfg with '
                             f'{self.TEST_CFG_KEYS[:2]}')
        self._check_test_cfg_keys()
        missing = [k for k in ('mask_thr', 'mask_box_expand') if k not in cfg]
        if missing:
            raise KeyError(f'{type(self).__name__}: test_cfg lacks {missing}; '
                           'paper: mask_thr=0.5, mask_box_expand=0; official '
                           'v3: mask_thr=0.53, mask_box_expand=2')
        mask_thr = float(cfg['mask_thr'])
        if not math.exp(self.OUTSIDE_LOGPROB) < mask_thr < 1:
            raise ValueError(f'test_cfg.mask_thr must be in (exp(-10), 1), '
                             f'got {mask_thr}')
        expand = int(cfg['mask_box_expand'])
        if expand < 0:
            raise ValueError(
                f'test_cfg.mask_box_expand must be >= 0, got {expand}')
        impl = cfg.get('mask_impl', 'auto')
        if impl not in self.MASK_IMPLS:
            raise ValueError(f'test_cfg.mask_impl must be one of '
                             f'{self.MASK_IMPLS}, got {impl!r}')
        if impl == 'auto':
            impl = 'dense' if device.type == 'cuda' else 'ragged'
        # the two layouts spend memory differently, hence one budget each
        key = 'mask_dense_chunk_pixels' if impl == 'dense' \
            else 'mask_chunk_pixels'
        chunk = int(cfg.get(key, self.DEFAULT_CHUNK_PIXELS[impl]))
        if chunk <= 0:
            raise ValueError(f'test_cfg.{key} must be > 0, got {chunk}')
        interp = cfg.get('mask_interp', 'logprob')
        if interp not in self.MASK_INTERPS:
            raise ValueError(f'test_cfg.mask_interp must be one of '
                             f'{self.MASK_INTERPS}, got {interp!r}')
        return mask_thr, expand, impl, chunk, interp

    def predict_by_feat(self,
                        pixel_embeds: Tensor,
                        results_list: InstanceList,
                        batch_img_metas: List[dict],
                        rescale: bool = True,
                        **kwargs) -> InstanceList:
        """Masks for the detections of the box head.

        Args:
            pixel_embeds: (B, D, h, w).
            results_list: per image, detections with ``bboxes`` (input-image
                pixels), ``scores``, ``labels``, ``codes``, ``points``.
            batch_img_metas: metas with ``img_shape``, ``ori_shape``,
                ``scale_factor``.
            rescale: return boxes and masks at ``ori_shape`` (else at
                ``img_shape``).

        Returns:
            per image :obj:`InstanceData` with ``bboxes`` (N, 4), ``scores``
            (N,), ``labels`` (N,), ``masks`` (N, H, W) bool.
        """
        mask_thr, expand, impl, chunk, interp = self._read_test_cfg(
            pixel_embeds.device)
        clean = read_mask_clean(self.test_cfg)
        if kwargs:
            raise TypeError(f'{type(self).__name__}.predict_by_feat got '
                            f'unexpected arguments {sorted(kwargs)}')
        if results_list is None:
            raise ValueError(f'{type(self).__name__} needs the box head '
                             'detections (results_list)')
        # the threshold in the space the maps are upsampled in
        thr = math.log(mask_thr)
        if interp == 'logit':
            thr -= math.log1p(-mask_thr)
        map_size = tuple(pixel_embeds.shape[-2:])
        outputs = []
        for img_id, (results, meta) in enumerate(
                zip(results_list, batch_img_metas)):
            img_h, img_w = meta['img_shape'][:2]
            out_size = tuple(meta['ori_shape'][:2]) if rescale else (img_h,
                                                                     img_w)
            masks = self._predict_masks_single(
                pixel_embeds[img_id], results, (img_h, img_w), out_size,
                map_size, expand, thr, impl, chunk, interp)
            bboxes = results.bboxes
            if rescale:
                # filled on the device: new_tensor(scale_factor) would copy
                # from the host, which synchronises a CUDA stream
                scale_w, scale_h = meta['scale_factor']
                scale = bboxes.new_full((2, ), scale_w)
                scale[1] = scale_h
                bboxes = (bboxes.view(-1, 2, 2) / scale).view(-1, 4)
            out = InstanceData()
            out.bboxes = bboxes
            out.scores = results.scores
            out.labels = results.labels
            out.masks = clean_instance_masks(masks) if clean else masks
            outputs.append(out)
        return outputs

    def _predict_masks_single(self, pixel_embeds: Tensor,
                              results: InstanceData,
                              input_size: Tuple[int, int],
                              out_size: Tuple[int, int],
                              map_size: Tuple[int, int], expand: int,
                              thr: float, impl: str, chunk: int,
                              interp: str = 'logprob') -> Tensor:
        """(N, H, W) bool masks of one image.

        ``interp='logit'`` (mmembed's own ``test_cfg.mask_interp``) turns the
        log-probabilities into logits (:func:`logprob_to_logit`) before the
        upsampling; ``thr`` must then be a logit. Outside the box region the
        value stays -10 (the logit of exp(-10) to 5e-5).

        Both implementations compute the official v3 inference (log-prob
        inside the box region, -10 elsewhere, bilinear upsampling, crop,
        threshold) and give the same masks:

        - ``'ragged'`` evaluates only the pixels around each box, so its
          cost grows with the summed box area (the fast choice on a CPU).
          Listing those pixels needs their count on the host, a device
          synchronisation.
        - ``'dense'`` evaluates every detection on the whole map in a fixed
          number of batched ops (matmul kernel, region mask, one
          ``F.interpolate``) with no synchronisation, chunked over N by a
          budget computed from shapes only (the fast choice on a GPU).
        """
        num = len(results)
        if num == 0:
            return pixel_embeds.new_zeros((0, *out_size), dtype=torch.bool)
        embeds, margins = self.split_codes(results.codes, results.points)
        up_size = upsampled_size(map_size, self.mask_stride, input_size,
                                 out_size)
        to_space = logprob_to_logit if interp == 'logit' else (lambda x: x)
        if impl == 'dense':
            flat_embeds = pixel_embeds.flatten(1)  # (D, h * w)

            def dense_masks(codes: Tensor, margins: Tensor,
                            boxes: Tensor) -> Tensor:
                logprob = to_space(
                    embedding_logprob(flat_embeds, codes, margins))
                return paste_dense_logits(
                    logprob.view(-1, *map_size), boxes, self.mask_stride,
                    expand, up_size, out_size, self.OUTSIDE_LOGPROB, thr)

            ranges = even_chunks(num, out_size[0] * out_size[1], chunk)
            if len(ranges) == 1:  # the usual case, with no slicing ops
                return dense_masks(embeds, margins, results.bboxes)
            return torch.cat([
                dense_masks(embeds[start:end], margins[start:end],
                            results.bboxes[start:end])
                for start, end in ranges
            ])
        cells = boxes_to_cells(results.bboxes, self.mask_stride, expand,
                               map_size)
        masks = torch.zeros((num, *out_size),
                            dtype=torch.bool,
                            device=pixel_embeds.device)
        out_areas = region_areas(
            candidate_out_regions(cells, up_size, map_size, out_size))
        pixel_rows = pixel_embeds.flatten(1).t()  # (h * w, D)
        for start, end in chunk_ranges(out_areas, chunk):
            grid = ragged_grid(cells[start:end])
            logprob = to_space(embedding_logprob_pairs(
                pixel_rows, grid.ys * map_size[1] + grid.xs, grid.box_inds,
                embeds[start:end], margins[start:end]))
            masks[start:end] = paste_ragged_logits(
                logprob, cells[start:end], grid.offsets, map_size, up_size,
                out_size, self.OUTSIDE_LOGPROB, thr)
        return masks
