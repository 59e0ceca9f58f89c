# Copyright (c) mmembed authors. All rights reserved.
"""DeepMask + SharpMask as a class-agnostic segment-proposal model.

The paper's own system (Pinheiro et al., ECCV 2016; Torch7 release
``facebookresearch/deepmask``, specs/methods.md 4.1-4.4):

- training on object-centred 192 x 192 patches
  (:class:`~mmembed.datasets.DeepMaskPatchSampler`), in two stages as the
  release: ``train_stage='deepmask'`` trains the trunk, the mask branch and
  the score branch (SoftMargin on each); ``train_stage='sharpmask'`` runs the
  trunk and DeepMask without gradients and trains only the refinement
  (plain SGD in the release, a config choice here);
- full-image inference: an image pyramid padded by iSz / 2, the trunk run
  fully convolutionally so every 192-pixel window at stride 16 gets a score,
  the top ``num_proposals`` windows over all scales refined to 160 x 160
  masks, pasted back and thresholded at sigmoid 0.2. No NMS, as the release.

Shapes: B images; windows at stride 16 of a scaled, padded image; N kept
windows.
"""
import numbers
import warnings
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.detectors.base import BaseDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.mask import mask2bbox
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.structures import InstanceData
from torch import Tensor

from ...utils.arg_checks import check_init_args, check_keys
from ..dense_heads.sharpmask_refinement_head import crop_windows
from ..utils.mask_ops import paste_box_masks

TRAIN_STAGES = ('deepmask', 'sharpmask')
# the release's pyramid: 2^s, s = -2.5 ... 0.5 step 0.5
DEFAULT_SCALES = tuple(2.**(s / 2) for s in range(-5, 2))
# every test_cfg key _predict_image reads (a misspelt one is refused, not
# read as its default)
TEST_CFG_KEYS = ('scales', 'num_proposals', 'mask_thr', 'pad_value',
                 'use_refinement', 'paste_impl')
PASTE_IMPLS = ('auto', 'dense', 'ragged', 'separable')


@MODELS.register_module()
@check_init_args
class SharpMaskProposer(BaseDetector):
    """DeepMask trunk and heads + SharpMask refinement.

    Args:
        backbone: a trunk returning ``(C1, C2, C3, C4)`` at strides 2, 4, 8,
            16 (:class:`ResNetWithStem` with ``num_stages=3``).
        deepmask_head: :class:`DeepMaskHead` on C4.
        refine_head: :class:`SharpMaskRefinementHead`; None gives plain
            DeepMask (its 56 x 56 mask branch makes the proposals).
        train_stage: 'deepmask' or 'sharpmask', see the module docstring.
        test_cfg: ``scales`` (pyramid, relative to the input image),
            ``num_proposals`` (release np: 500; 1000 for AR@1000; 0 gives
            an empty result),
            ``mask_thr`` (0.2), ``pad_value`` (0.5, in RGB 0-1 before
            normalisation, as the release fills), ``use_refinement``
            (default True with a refine head: False evaluates the
            DeepMask masks of the same model), ``paste_impl`` (see
            :func:`paste_box_masks`; 'separable' on a CPU, 'dense' on
            CUDA). A misspelt key or an unusable value is refused when the
            model is built.
    """

    def __init__(self,
                 backbone: ConfigType,
                 deepmask_head: ConfigType,
                 refine_head: OptConfigType = None,
                 train_stage: str = 'deepmask',
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if train_stage not in TRAIN_STAGES:
            raise ValueError(f'SharpMaskProposer: train_stage must be one '
                             f'of {TRAIN_STAGES}, got {train_stage!r}')
        if train_stage == 'sharpmask' and refine_head is None:
            raise ValueError('SharpMaskProposer: train_stage=\'sharpmask\' '
                             'trains the refinement, but refine_head is None')
        self.backbone = MODELS.build(backbone)
        self.deepmask_head = MODELS.build(deepmask_head)
        self.refine_head = None if refine_head is None else MODELS.build(
            refine_head)
        self.train_stage = train_stage
        self.train_cfg = train_cfg
        self.test_cfg = dict(test_cfg or {})
        self._check_test_cfg(self.test_cfg)
        if self.refine_head is not None and len(
                self.refine_head.refinements) > 4:
            raise ValueError('SharpMaskProposer: the trunk gives 4 skip '
                             'stages (C4, C3, C2, C1)')

    @staticmethod
    def _check_test_cfg(cfg: dict) -> None:
        """Refuse misspelt keys and values inference cannot use, naming the
        key (a typo would otherwise be read as its default, a bad value
        fail deep inside ``topk`` or the paste)."""
        check_keys('SharpMaskProposer', cfg, TEST_CFG_KEYS)
        scales = cfg.get('scales', DEFAULT_SCALES)
        if not len(scales) or not all(
                isinstance(s, numbers.Real) and s > 0 for s in scales):
            raise ValueError(f'SharpMaskProposer: test_cfg.scales must be '
                             f'positive numbers, got {scales!r}')
        num = cfg.get('num_proposals', 1000)
        if isinstance(num, bool) or not isinstance(
                num, numbers.Integral) or num < 0:
            raise ValueError(f'SharpMaskProposer: test_cfg.num_proposals '
                             f'must be an integer >= 0, got {num!r}')
        thr = cfg.get('mask_thr', 0.2)
        if not isinstance(thr, numbers.Real) or not 0 <= thr <= 1:
            raise ValueError(f'SharpMaskProposer: test_cfg.mask_thr is a '
                             f'probability in [0, 1], got {thr!r}')
        impl = cfg.get('paste_impl')
        if impl is not None and impl not in PASTE_IMPLS:
            raise ValueError(f'SharpMaskProposer: test_cfg.paste_impl must '
                             f'be one of {PASTE_IMPLS}, got {impl!r}')

    # ------------------------------------------------------------ features
    def extract_feat(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        """(B, 3, H, W) -> (C1, C2, C3, C4)."""
        feats = self.backbone(inputs)
        if len(feats) != 4:
            raise ValueError(
                f'SharpMaskProposer: the backbone must return (C1, C2, C3, '
                f'C4), got {len(feats)} maps (ResNetWithStem with '
                'out_indices=(0, 1, 2))')
        return feats

    def _skips(self, feats: Sequence[Tensor]) -> List[Tensor]:
        """Skip stages coarsest first, each cropped by t_j = 2^j cells
        per side (the release's trunk crop of C4 and the zero-crops c_i
        of the horizontal nets): on a 192-pixel patch they are 10 t_j
        cells, one window."""
        skips = []
        for j, feat in enumerate(reversed(feats)):
            if j >= len(self.refine_head.refinements):
                break
            t = 2**j
            skips.append(feat[..., t:-t, t:-t])
        return skips

    def _forward(self, inputs: Tensor,
                 data_samples: OptConfigType = None) -> Tuple[Tensor, ...]:
        """Window codes and scores of every window: ``(codes (B, 512, h',
        w'), scores (B, 1, h', w'))``."""
        return self.deepmask_head(self.extract_feat(inputs)[-1])

    # ------------------------------------------------------------ training
    def loss(self, inputs: Tensor, data_samples: SampleList) -> Dict:
        """Losses of a batch of 192 x 192 patches (``DeepMaskPatchSampler``
        with ``PackDetInputs(meta_keys=(..., 'patch_label',
        'patch_has_mask'))``)."""
        mask_targets, has_mask, score_targets, has_score = \
            self._patch_targets(inputs, data_samples)
        if self.train_stage == 'deepmask':
            codes, scores = self._forward(inputs)
            if codes.shape[-2:] != (1, 1):
                raise ValueError(
                    f'SharpMaskProposer: training patches must make one '
                    f'window; a {tuple(inputs.shape[-2:])} input made '
                    f'{tuple(codes.shape[-2:])} (use 192 x 192 patches)')
            return self.deepmask_head.loss(codes, scores, mask_targets,
                                           has_mask, score_targets,
                                           has_score)
        # the release does not back-propagate into the trunk here
        with torch.no_grad():
            feats = self.extract_feat(inputs)
            codes, _ = self.deepmask_head(feats[-1])
        if codes.shape[-2:] != (1, 1):
            raise ValueError(
                f'SharpMaskProposer: training patches must make one window; '
                f'a {tuple(inputs.shape[-2:])} input made '
                f'{tuple(codes.shape[-2:])} (use 192 x 192 patches)')
        logits = self.refine_head(codes.flatten(1), self._skips(feats))
        return self.refine_head.loss(logits, mask_targets, has_mask)

    @staticmethod
    def _patch_targets(inputs: Tensor, data_samples: SampleList
                       ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Mask targets (B, g, g) in {-1, +1} with their (B,) flags, and
        score targets (B,) in {-1, +1} with theirs."""
        masks, has_mask, labels, has_score = [], [], [], []
        for sample in data_samples:
            if 'patch_label' not in sample.metainfo:
                raise KeyError(
                    'SharpMaskProposer: a training sample has no '
                    '\'patch_label\'; train on DeepMaskPatchSampler patches '
                    'and add \'patch_label\' and \'patch_has_mask\' to '
                    'PackDetInputs\' meta_keys')
            gt_masks = sample.gt_instances.masks
            if len(gt_masks) != 1:
                raise ValueError(
                    f'SharpMaskProposer: a patch carries one label mask, got '
                    f'{len(gt_masks)}')
            masks.append(gt_masks.to_tensor(torch.float32,
                                            inputs.device)[0])
            mask_sample = bool(sample.metainfo['patch_has_mask'])
            has_mask.append(mask_sample)
            has_score.append(not mask_sample)
            labels.append(float(sample.metainfo['patch_label']))
        device = inputs.device
        return (torch.stack(masks) * 2 - 1,
                torch.tensor(has_mask, device=device),
                torch.tensor(labels, device=device),
                torch.tensor(has_score, device=device))

    # ----------------------------------------------------------- inference
    def predict(self, inputs: Tensor, data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Segment proposals of every image (class-agnostic, label 0).

        Returns the data samples with ``pred_instances``: ``masks`` (N, H,
        W) bool, ``scores`` (N,) window objectness, ``labels`` (N,) zeros,
        ``bboxes`` (N, 4) the masks' tight boxes; N = ``num_proposals``
        (fewer when the pyramid has fewer windows, or when a corrupt
        network gave NaN scores or masks: removed with a warning), sorted
        by score.
        """
        results = []
        for image, sample in zip(inputs, data_samples):
            height, width = sample.metainfo.get('img_shape',
                                                image.shape[-2:])
            results.append(
                self._predict_image(image[:, :height, :width], sample,
                                    rescale))
        return self.add_pred_to_datasample(data_samples, results)

    def _pad_value(self, image: Tensor) -> Tensor:
        """The release's 0.5 grey, normalised like the image: (3, 1, 1)."""
        fill = self.test_cfg.get('pad_value', 0.5) * 255.
        preprocessor = self.data_preprocessor
        if getattr(preprocessor, '_enable_normalize', False):
            return ((fill - preprocessor.mean) / preprocessor.std).to(image)
        return image.new_full((image.shape[0], 1, 1), fill)

    def _predict_image(self, image: Tensor, sample, rescale: bool
                       ) -> InstanceData:
        cfg = self.test_cfg
        scales = tuple(cfg.get('scales', DEFAULT_SCALES))
        num_proposals = int(cfg.get('num_proposals', 1000))
        mask_thr = float(cfg.get('mask_thr', 0.2))
        use_refinement = cfg.get('use_refinement', True) and \
            self.refine_head is not None
        head = self.deepmask_head
        window = 16 * (head.window_cells + 2)        # 192
        inner = 16 * head.window_cells               # iSz = 160
        pad = inner // 2
        fill = self._pad_value(image)
        height, width = image.shape[-2:]

        per_scale = []
        for scale in scales:
            size = (max(round(height * scale), 1), max(round(width * scale),
                                                       1))
            scaled = F.interpolate(
                image[None], size=size, mode='bilinear', align_corners=False)
            padded = fill.expand(3, size[0] + 2 * pad,
                                 size[1] + 2 * pad).clone()[None]
            padded[..., pad:pad + size[0], pad:pad + size[1]] = scaled
            if min(padded.shape[-2:]) < window:
                continue
            feats = self.extract_feat(padded)
            codes, scores = head(feats[-1])
            horizontal = self.refine_head.horizontal(
                self._skips(feats)) if use_refinement else None
            per_scale.append((scale, codes[0], scores[0, 0], horizontal))
        if not per_scale:
            raise ValueError(
                f'SharpMaskProposer: a {height}x{width} image gives no '
                f'{window}-pixel window at any of the scales {scales}')

        # top windows over all scales, without NMS (release). A diverged or
        # corrupted network's NaN scores would take the top places (topk
        # ranks NaN first): they rank last and are counted, the warning
        # below says how many
        flat_scores = torch.cat([s[2].flatten() for s in per_scale])
        nan_scores = torch.isnan(flat_scores)
        scale_ids = torch.cat([
            torch.full((s[2].numel(), ), i, device=image.device)
            for i, s in enumerate(per_scale)
        ])
        keep = flat_scores.masked_fill(nan_scores, float('-inf')).topk(
            min(num_proposals, len(flat_scores))).indices
        offsets = torch.tensor([0] + [s[2].numel() for s in per_scale],
                               device=image.device).cumsum(0)
        logits, boxes, scores = [], [], []
        # a loop over the (few) pyramid levels; windows are batched
        for i, (scale, codes, score_map, horizontal) in enumerate(per_scale):
            chosen = keep[scale_ids[keep] == i]
            if len(chosen) == 0:
                continue
            local = chosen - offsets[i]
            rows = torch.div(local, score_map.shape[1], rounding_mode='floor')
            cols = local % score_map.shape[1]
            window_codes = codes[:, rows, cols].t()
            if use_refinement:
                crops = [
                    crop_windows(h[0], rows * 2**j, cols * 2**j,
                                 head.window_cells * 2**j)
                    for j, h in enumerate(horizontal)
                ]
                logits.append(self.refine_head(
                    window_codes, crops, skips_are_horizontal=True))
            else:
                logits.append(head.mask_logits(window_codes, head.mask_size))
            # the window's central iSz square, in input-image pixels
            x1 = (cols * 16 + 16 - pad) / scale
            y1 = (rows * 16 + 16 - pad) / scale
            boxes.append(torch.stack(
                [x1, y1, x1 + inner / scale, y1 + inner / scale], dim=1))
            scores.append(score_map[rows, cols])
        if not logits:  # num_proposals = 0
            side = self.refine_head.out_size if use_refinement else \
                head.mask_size
            logits = [image.new_zeros((0, side, side))]
            boxes, scores = [image.new_zeros((0, 4))], [image.new_zeros(0)]
        logits = torch.cat(logits)
        boxes = torch.cat(boxes).float()
        scores = torch.cat(scores).sigmoid()
        order = scores.argsort(descending=True)
        logits, boxes, scores = logits[order], boxes[order], scores[order]

        out_size = (height, width)
        if rescale and 'scale_factor' in sample.metainfo:
            scale_w, scale_h = sample.metainfo['scale_factor']
            boxes = boxes / boxes.new_tensor(
                [scale_w, scale_h, scale_w, scale_h])
            out_size = sample.metainfo['ori_shape']
        # the windows are large and many (1000 per image, often covering
        # it whole): on a CPU the separable paste is the fast one
        impl = cfg.get('paste_impl',
                       'dense' if logits.is_cuda else 'separable')
        probs = logits.sigmoid()
        masks = paste_box_masks(probs, boxes, out_size, thr=mask_thr,
                                impl=impl)
        results = InstanceData()
        results.masks = masks
        results.scores = scores
        results.labels = torch.zeros_like(scores, dtype=torch.long)
        results.bboxes = mask2bbox(masks).to(scores)
        # NaN mask logits paste as an empty mask with a (0, 0, 0, 0) box: a
        # silent non-proposal. +-inf logits and scores are no such case:
        # the sigmoid saturates them to exact 0 / 1
        nan_masks = ~torch.isfinite(probs).flatten(1).all(1)
        return self._remove_non_finite(results, nan_masks, nan_scores,
                                       sample)

    @staticmethod
    def _remove_non_finite(results: InstanceData, nan_masks: Tensor,
                           nan_scores: Tensor, sample) -> InstanceData:
        """``results`` without the proposals whose score or mask is NaN,
        with one warning that counts them and names the image (as the
        detectors' heads do, mmembed.models.utils.result_checks).

        One host read per image, made after the paste, so it adds no wait
        inside the window-to-mask path.

        Args:
            results: N proposals (``masks`` (N, H, W), ``scores`` (N,),
                ``labels``, ``bboxes``).
            nan_masks: (N,) bool, proposals with a NaN mask probability.
            nan_scores: (W,) bool over every window of the pyramid, NaN
                score: ranked last, so kept only when fewer than N windows
                had a score.
        """
        bad_scores = torch.isnan(results.scores)
        num_nan_scores, num_nan_masks = torch.stack([
            nan_scores.sum(), (nan_masks & ~bad_scores).sum()
        ]).tolist()
        if not (num_nan_scores or num_nan_masks):
            return results
        meta = sample.metainfo
        warnings.warn(
            f'SharpMaskProposer: removed {num_nan_scores + num_nan_masks} '
            f'windows with non-finite (NaN) scores or masks '
            f'({num_nan_scores} with a NaN score, ranked below every other '
            f'window; {num_nan_masks} proposals with a NaN mask) in image '
            f'{meta.get("img_id")} ({meta.get("img_path")}); the network '
            'outputs are corrupt (diverged weights?)')
        return results[~(nan_masks | bad_scores)]
