# Copyright (c) mmembed authors. All rights reserved.
"""ISTR heads: query initialisation, stage head layers and losses against
the ISTR v1 formulas, the mask-code cost, inference (top-k, no NMS, decoded
and pasted masks), degenerate boxes, and the mask path's op count / host
syncs."""
import copy
import functools
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.structures import InstanceData

from mmembed.models.roi_heads import sanitize_boxes
from mmembed.models.utils.mask_ops import paste_box_masks
from mmembed.testing import (HostSyncRecorder, count_aten_ops,
                             get_config_root)


@functools.lru_cache()
def _small_cfg() -> Config:
    return Config.fromfile(
        osp.join(get_config_root(), 'istr', 'istr_r18_fpn_synthetic.py'))


def tiny_istr_cfg(num_stages: int = 2, num_proposals: int = 12,
                  num_classes: int = 3, channels: int = 16):
    """The small ISTR config with 16 channels and 2 stages: every layer kind
    is kept, the test stays fast."""
    model = copy.deepcopy(_small_cfg().model)
    model.neck.out_channels = channels
    model.rpn_head.num_proposals = num_proposals
    model.rpn_head.proposal_feature_channel = channels
    roi = model.roi_head
    roi.num_stages = num_stages
    roi.stage_loss_weights = [1] * num_stages
    roi.proposal_feature_channel = channels
    roi.bbox_roi_extractor.out_channels = channels
    head = roi.bbox_head
    head.num_classes = num_classes
    head.in_channels = channels
    head.feedforward_channels = 2 * channels
    head.num_heads = 2
    head.dynamic_conv_cfg.update(in_channels=channels, feat_channels=8,
                                 out_channels=channels)
    roi.mask_codec = dict(type='PCAMaskCodec', code_dim=12, mask_size=14)
    model.train_cfg.rcnn = [model.train_cfg.rcnn[0]] * num_stages
    model.test_cfg.rcnn.max_per_img = 10
    return model


def build_tiny(**kwargs):
    torch.manual_seed(0)
    model = MODELS.build(tiny_istr_cfg(**kwargs))
    model.init_weights()
    return model


def tiny_batch(num_classes=3, seed=0):
    torch.manual_seed(seed)
    return demo_mm_inputs(
        2, [[3, 64, 96], [3, 72, 80]], num_items=[3, 2],
        num_classes=num_classes, with_mask=True)


# ---------------------------------------------------------------- queries
def test_query_features_are_embedding_plus_summed_gap():
    head = MODELS.build(dict(type='ISTREmbeddingRPNHead', num_proposals=5,
                             proposal_feature_channel=6))
    head.init_weights()
    feats = [torch.randn(2, 6, 16 // 2**i, 12 // 2**i) for i in range(4)]
    samples = demo_mm_inputs(2, [[3, 64, 48], [3, 40, 30]])['data_samples']
    results = head.predict(feats, samples)
    for img_id, res in enumerate(results):
        want = head.init_proposal_features.weight.detach().clone()
        for level in feats:  # reference: loop over levels and channels
            for c in range(6):
                want[:, c] += level[img_id, c].mean()
        torch.testing.assert_close(res.features, want)
        h, w = samples[img_id].img_shape
        torch.testing.assert_close(
            res.bboxes, torch.tensor([[0., 0., w, h]]).expand(5, 4))
    with pytest.raises(ValueError, match='channels'):
        head.predict([f[:, :3] for f in feats], samples)


# ------------------------------------------------------------- stage head
def test_stage_head_layers_follow_istr_v1():
    model = build_tiny()
    head = model.roi_head.bbox_head[0]
    for fcs in (head.cls_fcs, head.reg_fcs, head.mask_fcs):
        kinds = [type(m) for m in fcs]
        assert kinds == [nn.Linear, nn.LayerNorm, nn.ELU] * 3
    assert head.fc_mask.out_features == model.roi_head.mask_codec.code_dim
    assert head.fc_mask.out_features == 12
    assert isinstance(head.instance_interactive_conv.activation, nn.ELU)
    # focal prior on the class bias only (ISTR: every param of last dim K)
    torch.testing.assert_close(head.fc_cls.bias,
                               torch.full((3, ), -np.log(99.)))


def test_code_dim_mismatch_is_named():
    cfg = tiny_istr_cfg()
    cfg.roi_head.bbox_head.code_dim = 7
    with pytest.raises(ValueError, match='code_dim'):
        MODELS.build(cfg)
    cfg = tiny_istr_cfg()
    cfg.test_cfg.rcnn.nms = dict(type='nms', iou_threshold=0.5)
    with pytest.raises(KeyError, match='nms'):  # ISTR has no NMS
        MODELS.build(cfg)


def test_score_thr_drops_low_scores_after_the_paste():
    """No score_thr (the official model): exactly max_per_img detections;
    with one, only those above it, the masks still aligned with them."""
    model = build_tiny()
    model.eval()
    data = model.data_preprocessor(tiny_batch(), False)
    with torch.no_grad():
        # predict writes into the data samples: keep copies
        full = [s.pred_instances.clone()
                for s in model(**data, mode='predict')]
        scores = torch.cat([p.scores for p in full])
        thr = float(scores.median())
        model.roi_head.test_cfg.score_thr = thr
        kept = [s.pred_instances for s in model(**data, mode='predict')]
    for before, after in zip(full, kept):
        assert len(before) == model.roi_head.test_cfg.max_per_img
        keep = before.scores > thr
        assert len(after) == int(keep.sum())
        assert torch.equal(after.scores, before.scores[keep])
        assert torch.equal(after.masks, before.masks[keep])
    assert 0 < sum(len(p) for p in kept) < len(scores)


def test_mask_losses_equal_istr_formulas():
    """loss_feat = 2 * sum (c - c_gt)^2 / num_boxes / D; loss_dice = 2 *
    sum_i [1 - 2 sum(p q) / (sum p^2 + sum q^2 + 1e-5)] / num_boxes, with
    c_gt from the same random draw (seeded) and p = decode(c)."""
    model = build_tiny()
    head, codec = model.roi_head.bbox_head[0], model.roi_head.mask_codec
    torch.manual_seed(1)
    preds = torch.randn(4, 12, dtype=torch.float32)
    targets = (torch.rand(4, 14, 14) > 0.5).float()
    num_boxes = torch.tensor(5.)  # more GT than matches: another image's
    torch.manual_seed(7)
    losses = head.loss_mask(preds, targets, codec, num_boxes)
    torch.manual_seed(7)
    gt_codes = codec.encode(targets)
    want_feat = 2 * ((preds - gt_codes)**2).sum() / 5 / 12
    probs = codec.decode(preds).flatten(1)
    flat = targets.flatten(1)
    dice = [
        1 - 2 * (p * q).sum() / ((p * p).sum() + (q * q).sum() + 1e-5)
        for p, q in zip(probs, flat)
    ]
    want_dice = 2 * torch.stack(dice).sum() / 5
    torch.testing.assert_close(losses['loss_mask_code'], want_feat)
    torch.testing.assert_close(losses['loss_mask_dice'], want_dice)
    empty = head.loss_mask(preds[:0].requires_grad_(), targets[:0], codec,
                           num_boxes)
    assert empty['loss_mask_code'].item() == 0
    assert empty['loss_mask_code'].requires_grad


# --------------------------------------------------------------- matching
def test_mask_code_cost_is_scaled_cosine():
    cost = TASK_UTILS.build(dict(type='MaskCodeCost', weight=2.0))
    torch.manual_seed(0)
    pred = InstanceData(mask_codes=torch.randn(5, 7))
    gt = InstanceData(mask_codes=torch.randn(3, 7))
    got = cost(pred, gt)
    for i in range(5):
        for j in range(3):
            cos = F.cosine_similarity(pred.mask_codes[i], gt.mask_codes[j],
                                      dim=0)
            torch.testing.assert_close(got[i, j], -2 * (cos + 1) / 2)
    with pytest.raises(KeyError, match='mask_codes'):
        cost(InstanceData(bboxes=torch.zeros(5, 4)), gt)


def test_hungarian_assigner_uses_the_mask_code_cost():
    """Two predictions with equal boxes and scores: only the codes decide
    which GT each gets."""
    assigner = TASK_UTILS.build(
        dict(type='HungarianAssigner', match_costs=[
            dict(type='FocalLossCost', weight=2.0),
            dict(type='BBoxL1Cost', weight=5.0, box_format='xyxy'),
            dict(type='IoUCost', iou_mode='giou', weight=2.0),
            dict(type='MaskCodeCost', weight=2.0)]))
    box = torch.tensor([[10., 10., 30., 30.]])
    codes = torch.eye(4)[:2]
    pred = InstanceData(bboxes=box.repeat(2, 1), scores=torch.zeros(2, 3),
                        mask_codes=codes)
    gt = InstanceData(bboxes=box.repeat(2, 1), labels=torch.tensor([0, 0]),
                      mask_codes=codes.flip(0))
    result = assigner.assign(pred, gt, img_meta=dict(img_shape=(64, 64)))
    assert result.gt_inds.tolist() == [2, 1]


# ------------------------------------------------------------ training
def test_loss_keys_finite_and_every_parameter_gets_a_gradient():
    model = build_tiny()
    packed = tiny_batch()
    losses = model(**model.data_preprocessor(packed, True), mode='loss')
    names = {k for k in losses if 'loss' in k}
    assert names == {
        f's{s}.{n}' for s in range(2) for n in
        ('loss_cls', 'loss_bbox', 'loss_iou', 'loss_mask_code',
         'loss_mask_dice')}
    total = sum(losses[k] for k in names)
    assert torch.isfinite(total)
    total.backward()
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None, name
    # the codec is a buffer set: in the checkpoint, never trained
    keys = model.state_dict().keys()
    assert {'roi_head.mask_codec.components',
            'roi_head.mask_codec.explained_variances',
            'roi_head.mask_codec.means'} <= set(keys)


@pytest.mark.parametrize('random_match', [True, False])
def test_matching_encoding_is_random_or_deterministic(random_match):
    """match_random_soft_targets=False encodes the GT masks for the
    matching cost without noise (the losses keep the random targets)."""
    cfg = tiny_istr_cfg()
    cfg.roi_head.match_random_soft_targets = random_match
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    codec = model.roi_head.mask_codec
    calls = []
    real_encode = codec.encode

    def encode(masks, *args, **kwargs):
        calls.append(kwargs.get('random'))
        return real_encode(masks, *args, **kwargs)

    codec.encode = encode
    model(**model.data_preprocessor(tiny_batch(), True), mode='loss')
    # 2 images x 2 stages of matching encode deterministically when asked;
    # the loss encodings (one per stage) stay random
    assert len(calls) == 6
    assert calls.count(False) == (0 if random_match else 4)
    assert calls.count(None) == (6 if random_match else 2)
    masks = (torch.rand(3, 14, 14) > 0.5).float()
    torch.testing.assert_close(real_encode(masks, random=False),
                               real_encode(masks, random=False))
    assert not torch.allclose(real_encode(masks), real_encode(masks))


def test_boxes_are_detached_between_stages():
    """Stage 1's losses must not reach stage 0's box regressor through the
    boxes (only through the query features, as ISTR)."""
    model = build_tiny()
    packed = tiny_batch()
    data = model.data_preprocessor(packed, True)
    losses = model(**data, mode='loss')
    losses['s1.loss_bbox'].backward()
    assert model.roi_head.bbox_head[0].fc_reg.weight.grad is None or \
        model.roi_head.bbox_head[0].fc_reg.weight.grad.abs().sum() == 0


def test_images_without_gt_train():
    model = build_tiny()
    packed = demo_mm_inputs(2, [[3, 64, 96], [3, 72, 80]], num_items=[0, 2],
                            num_classes=3, with_mask=True)
    losses = model(**model.data_preprocessor(packed, True), mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()


def test_missing_masks_are_named():
    model = build_tiny()
    packed = tiny_batch()
    data = model.data_preprocessor(packed, True)
    for sample in data['data_samples']:
        del sample.gt_instances.masks
    with pytest.raises(ValueError, match='with_mask=True'):
        model(**data, mode='loss')


# ---------------------------------------------------- degenerate boxes
def test_sanitize_boxes():
    boxes = torch.tensor([[5., 6., 1., 2.], [float('nan'), 0., 3., 4.],
                          [0., float('-inf'), float('inf'), 1.],
                          [1., 2., 3., 4.]])
    got = sanitize_boxes(boxes)
    assert torch.isfinite(got).all()
    assert (got[:, 2:] >= got[:, :2]).all()
    torch.testing.assert_close(got[0], torch.tensor([1., 2., 5., 6.]))
    torch.testing.assert_close(got[3], boxes[3])
    torch.testing.assert_close(got[2], torch.tensor([0., -1e5, 1e5, 1.]))


def test_roi_align_really_rejects_nan_rois():
    """Why the guard exists: mmcv RoIAlign asserts on such a RoI."""
    from mmcv.ops import RoIAlign
    layer = RoIAlign(7, spatial_scale=1.0, sampling_ratio=2, aligned=True)
    feats = torch.randn(1, 2, 16, 16)
    bad = torch.tensor([[0., float('nan'), 1., 5., 6.]])
    with pytest.raises(Exception):
        layer(feats, bad)
    layer(feats, torch.cat([bad[:, :1], sanitize_boxes(bad[:, 1:])], 1))


def _diverge(model, packed, steps=4):
    """A few SGD steps at lr 1e4 from random weights: the weights and then
    the boxes blow up (NaN after the first step here)."""
    model.train()
    optim = torch.optim.SGD(model.parameters(), lr=1e4)
    saw_non_finite = False
    for _ in range(steps):
        data = model.data_preprocessor(copy.deepcopy(packed), True)
        losses = model(**data, mode='loss')
        total = sum(v for k, v in losses.items() if 'loss' in k)
        saw_non_finite |= not bool(torch.isfinite(total))
        optim.zero_grad()
        total.backward()
        optim.step()
    return saw_non_finite


def test_without_the_guard_roi_align_crashes(monkeypatch):
    """The same run with sanitize_boxes disabled dies as mmdet's QueryInst
    does, so the test below can fail."""
    from mmembed.models.roi_heads import istr_roi_head
    monkeypatch.setattr(istr_roi_head, 'sanitize_boxes', lambda boxes: boxes)
    with pytest.raises(RuntimeError, match='roi_width >= 0'):
        _diverge(build_tiny(), tiny_batch())


def test_random_weights_and_a_huge_learning_rate_never_crash():
    """mmdet's QueryInst dies in RoIAlign after a few steps like these; the
    ISTR model keeps running (its losses may explode: that is the point)."""
    model = build_tiny()
    packed = tiny_batch()
    saw_non_finite = _diverge(model, packed)
    assert saw_non_finite or any(
        not torch.isfinite(p).all() or p.abs().max() > 1e3
        for p in model.parameters()), 'the weights did not blow up'
    model.eval()
    with torch.no_grad():
        samples = model(**model.data_preprocessor(packed, False),
                        mode='predict')
    for sample in samples:
        masks = sample.pred_instances.masks
        assert masks.shape[1:] == tuple(sample.ori_shape)


# ------------------------------------------------------------- inference
def test_predict_is_topk_without_nms_and_pastes_decoded_codes():
    model = build_tiny()
    model.eval()
    packed = tiny_batch()
    data = model.data_preprocessor(packed, False)
    with torch.no_grad():
        feats = model.extract_feat(data['inputs'])
        rpn = model.rpn_head.predict(feats, data['data_samples'])
        rpn_copy = [r.clone() for r in rpn]
        boxes, scores, labels, codes = model.roi_head.predict_codes(
            feats, rpn, 10)
        samples = model(**data, mode='predict')
    # reference: run the stages by hand and pick the top 10 of Q x K
    roi = model.roi_head
    with torch.no_grad():
        props = [r.bboxes for r in rpn_copy]
        obj = torch.stack([r.features for r in rpn_copy])
        from mmdet.structures.bbox import bbox2roi
        for stage in range(roi.num_stages):
            res = roi._bbox_forward(stage, feats, bbox2roi(props), obj, None)
            obj, props = res['object_feats'], res['detached_proposals']
        probs = res['cls_score'].sigmoid()
    for img_id, sample in enumerate(samples):
        flat = probs[img_id].flatten()
        top = flat.topk(10).indices
        torch.testing.assert_close(scores[img_id], flat[top])
        assert labels[img_id].tolist() == (top % 3).tolist()
        torch.testing.assert_close(boxes[img_id], props[img_id][top // 3])
        torch.testing.assert_close(codes[img_id],
                                   res['mask_codes'][img_id][top // 3])
        pred = sample.pred_instances
        assert len(pred) == 10  # no NMS: duplicates of a query may stay
        h, w = sample.img_shape
        sx, sy = (float(s) for s in sample.scale_factor)
        clipped = torch.stack([
            boxes[img_id, :, 0].clamp(0, w), boxes[img_id, :, 1].clamp(0, h),
            boxes[img_id, :, 2].clamp(0, w), boxes[img_id, :, 3].clamp(0, h)
        ], 1)
        want_boxes = clipped / torch.tensor([sx, sy, sx, sy])
        torch.testing.assert_close(pred.bboxes, want_boxes)
        want_masks = paste_box_masks(
            roi.mask_codec.decode(codes[img_id]), want_boxes,
            sample.ori_shape, 0.5)
        assert torch.equal(pred.masks, want_masks)
        assert pred.masks.dtype == torch.bool


def _mask_path_ops(num_dets):
    model = build_tiny(num_proposals=30)
    model.eval()
    model.roi_head.test_cfg.mask_impl = 'dense'
    model.roi_head.test_cfg.max_per_img = num_dets
    data = model.data_preprocessor(tiny_batch(), False)
    with torch.no_grad():
        counts = count_aten_ops(model.roi_head, 'predict_masks',
                                lambda: model(**data, mode='predict'))
        with HostSyncRecorder() as recorder:
            feats = model.extract_feat(data['inputs'])
            rpn = model.rpn_head.predict(feats, data['data_samples'])
            dets = model.roi_head.predict_codes(feats, rpn, num_dets)
        with HostSyncRecorder() as recorder:
            out = model.roi_head.predict_masks(
                *dets, [s.metainfo for s in data['data_samples']], True)
    assert len(out[0]) == num_dets
    return sum(counts.values()), recorder.found


def test_mask_path_op_count_is_fixed_and_sync_free():
    ops_small, syncs = _mask_path_ops(5)
    ops_large, _ = _mask_path_ops(60)
    assert ops_small == ops_large
    assert syncs == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_mask_path_does_not_synchronise_on_cuda():
    model = build_tiny().cuda().eval()
    data = model.data_preprocessor(tiny_batch(), False)
    with torch.no_grad():
        feats = model.extract_feat(data['inputs'])
        rpn = model.rpn_head.predict(feats, data['data_samples'])
        dets = model.roi_head.predict_codes(feats, rpn, 10)
        metas = [s.metainfo for s in data['data_samples']]
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode('error')
        try:
            out = model.roi_head.predict_masks(*dets, metas, True)
        finally:
            torch.cuda.set_sync_debug_mode(0)
    assert out[0].masks.is_cuda


def test_tensor_mode_needs_no_gt_and_matches_predict():
    """mode='tensor' returns the last stage's logits, boxes and codes from
    images alone (no GT in the data samples), the same ones predict ranks,
    and traces with torch.jit."""
    model = build_tiny()
    model.eval()
    data = model.data_preprocessor(tiny_batch(), False)
    for sample in data['data_samples']:
        del sample.gt_instances
    with torch.no_grad():
        (cls_scores, boxes, codes), = model(**data, mode='tensor')
        feats = model.extract_feat(data['inputs'])
        rpn = model.rpn_head.predict(feats, data['data_samples'])
        det_boxes, scores, labels, det_codes = model.roi_head.predict_codes(
            feats, rpn, 10)
    num_imgs = len(data['data_samples'])
    assert cls_scores.shape == (num_imgs, 12, 3)
    assert boxes.shape == (num_imgs, 12, 4)
    assert codes.shape == (num_imgs, 12, model.roi_head.mask_codec.code_dim)
    top = cls_scores.sigmoid().flatten(1).topk(10, dim=1)
    torch.testing.assert_close(scores, top.values)
    query = top.indices // 3
    torch.testing.assert_close(
        det_boxes, boxes.gather(1, query[..., None].expand(-1, -1, 4)))
    torch.testing.assert_close(
        det_codes,
        codes.gather(1, query[..., None].expand(-1, -1, codes.shape[-1])))

    class ImagesOnly(nn.Module):

        def __init__(self, detector, samples):
            super().__init__()
            self.detector = detector
            self.samples = samples

        def forward(self, inputs):
            return self.detector(inputs, self.samples, mode='tensor')[0]

    with torch.no_grad():
        traced = torch.jit.trace(
            ImagesOnly(model, data['data_samples']), data['inputs'],
            check_trace=False)
        # the trace pools with mmcv's RoIAlign, eager CPU code with the
        # matmul one (SeparableRoIExtractor): equal up to float rounding,
        # compounded over the stages (boxes in pixels)
        for got, want in zip(traced(data['inputs']),
                             (cls_scores, boxes, codes)):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-3)
