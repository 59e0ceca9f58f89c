# Copyright (c) mmembed authors. All rights reserved.
"""ISTR v2 (hujiecpp/ISTR@1dac079) and the small-data keys: the conv mask
branch against the official layer stack, targets cropped by predicted
boxes, class logits averaged over stages, the v2 mask path's op count and
host syncs, the image-conditioned query start's scale, and the mask-code
cost's switch-on iteration."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS, TASK_UTILS
from mmengine.logging import MessageHub
from mmengine.structures import InstanceData

from mmembed.testing import HostSyncRecorder, count_aten_ops

from test_istr_roi_head import tiny_batch, tiny_istr_cfg  # noqa: I100


def tiny_v2_cfg(**kwargs):
    """The tiny ISTR of test_istr_roi_head.py with the v2 keys (conv branch
    on 28 x 28 RoIs, DCT codec, SmoothL1 + dice, targets by predicted boxes,
    logits averaged over both stages)."""
    model = tiny_istr_cfg(**kwargs)
    roi = model.roi_head
    roi.bbox_head.update(
        mask_branch='conv',
        mask_roi_size=28,
        loss_mask_code=dict(
            type='SmoothL1Loss', beta=1.0, reduction='mean', loss_weight=1.0))
    roi.bbox_head.loss_mask_dice.loss_weight = 5.0
    roi.code_roi_extractor = dict(
        type='SingleRoIExtractor',
        roi_layer=dict(
            type='RoIAlign', output_size=28, sampling_ratio=2, aligned=True))
    roi.mask_target_boxes = 'pred'
    roi.mask_codec = dict(type='DCTMaskCodec', code_dim=12, mask_size=16)
    model.test_cfg.rcnn.cls_score_stages = (0, 1)
    return model


def build(cfg):
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


# ------------------------------------------------------------ conv branch
def test_conv_branch_is_the_official_mask_module():
    """Conv(C, C, 4, 2, 1) BN ELU Conv(C, C, 4, 2, 1) BN ELU Conv(C, D, 7),
    xavier-initialised, computed as the official Sequential would."""
    model = build(tiny_v2_cfg())
    head = model.roi_head.bbox_head[0]
    convs = head.mask_convs
    kinds = [type(m).__name__ for m in convs]
    assert kinds == ['Conv2d', 'BatchNorm2d', 'ELU'] * 2 + ['Conv2d']
    for idx, (k, stride, pad, out_ch) in zip(
            (0, 3, 6), ((4, 2, 1, 16), (4, 2, 1, 16), (7, 1, 0, 12))):
        conv = convs[idx]
        assert conv.kernel_size == (k, k) and conv.stride == (stride, stride)
        assert conv.padding == (pad, pad) and conv.out_channels == out_ch
        # xavier-uniform bound sqrt(6 / (fan_in + fan_out))
        fan_in, fan_out = conv.in_channels * k * k, out_ch * k * k
        bound = (6 / (fan_in + fan_out))**0.5
        assert conv.weight.abs().max() <= bound
        assert conv.weight.abs().max() > 0.8 * bound
    assert not hasattr(head, 'fc_mask') and not hasattr(head, 'mask_fcs')

    head.eval()
    for bn in (convs[1], convs[4]):  # non-trivial running statistics
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    feats = torch.randn(5, 16, 28, 28)

    def bn(x, m):
        return F.batch_norm(x, m.running_mean, m.running_var, m.weight,
                            m.bias, False, 0.0, m.eps)

    x = F.elu(bn(F.conv2d(feats, convs[0].weight, convs[0].bias, 2, 1),
                 convs[1]))
    x = F.elu(bn(F.conv2d(x, convs[3].weight, convs[3].bias, 2, 1),
                 convs[4]))
    want = F.conv2d(x, convs[6].weight, convs[6].bias).flatten(1)
    with torch.no_grad():
        torch.testing.assert_close(head.forward_mask_conv(feats), want)
    # the box / class forward carries no codes for this branch
    out = head(torch.randn(2 * 12, 16, 7, 7), torch.randn(2, 12, 16))
    assert out[4] is None
    with pytest.raises(ValueError, match=r'\(R, 16, 28, 28\)'):
        head.forward_mask_conv(torch.randn(2, 16, 14, 14))


def test_v2_key_errors_are_named():
    cfg = tiny_v2_cfg()
    bad = copy.deepcopy(cfg)
    bad.roi_head.bbox_head.mask_branch = 'transformer'
    with pytest.raises(ValueError, match='mask_branch must be one of'):
        MODELS.build(bad)
    bad = copy.deepcopy(cfg)
    bad.roi_head.bbox_head.mask_roi_size = 30
    with pytest.raises(ValueError, match='multiple of 4'):
        MODELS.build(bad)
    bad = copy.deepcopy(cfg)
    bad.roi_head.code_roi_extractor = None
    with pytest.raises(ValueError, match='set code_roi_extractor'):
        MODELS.build(bad)
    bad = copy.deepcopy(cfg)
    bad.roi_head.code_roi_extractor.roi_layer.output_size = 14
    with pytest.raises(ValueError, match='mask_roi_size is 28'):
        MODELS.build(bad)
    bad = copy.deepcopy(cfg)
    bad.roi_head.bbox_head.mask_branch = 'mlp'
    with pytest.raises(ValueError, match='conv mask branch only'):
        MODELS.build(bad)
    bad = copy.deepcopy(cfg)
    bad.roi_head.mask_target_boxes = 'anchor'
    with pytest.raises(ValueError, match='mask_target_boxes'):
        MODELS.build(bad)
    for stages in [(0, 2), (), (1, 1)]:
        bad = copy.deepcopy(cfg)
        bad.test_cfg.rcnn.cls_score_stages = stages
        with pytest.raises(ValueError, match='cls_score_stages'):
            MODELS.build(bad)


@pytest.mark.parametrize('code_head', ['fc', 'dense'])
def test_v2_trains_and_every_parameter_gets_a_gradient(code_head):
    cfg = tiny_v2_cfg()
    cfg.roi_head.bbox_head.mask_code_head = code_head
    model = build(cfg)
    model.train()
    data = model.data_preprocessor(tiny_batch(), True)
    losses = model(**data, mode='loss')
    for stage in range(2):
        for key in ('loss_mask_code', 'loss_mask_dice', 'loss_cls'):
            assert torch.isfinite(losses[f's{stage}.{key}'])
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    # (the backbone's residual branches start at zero: zero_init_residual)
    missing = [
        name for name, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or (
            name.startswith('roi_head.') and not p.grad.abs().sum()))
    ]
    assert missing == []


def _one_stage_loss(model, monkeypatch, stage=0):
    """bbox_loss of one stage, with the arguments of loss_mask and of
    conv_mask_codes recorded."""
    roi = model.roi_head
    data = model.data_preprocessor(tiny_batch(), True)
    samples = data['data_samples']
    x = model.extract_feat(data['inputs'])
    rpn = model.rpn_head.predict(x, samples)
    gts = [s.gt_instances for s in samples]
    for gt in gts:
        gt.mask_targets = roi.crop_gt_masks(gt)
    seen = {}
    head = roi.bbox_head[stage]
    loss_mask = head.loss_mask
    conv_codes = roi.conv_mask_codes

    def record_loss(codes, targets, codec, avg_factor):
        seen['codes'], seen['targets'] = codes, targets
        return loss_mask(codes, targets, codec, avg_factor)

    def record_codes(stage_, x_, rois, obj_feats=None, sync_free=None):
        seen.setdefault('rois', []).append(rois)
        return conv_codes(stage_, x_, rois, obj_feats, sync_free)

    monkeypatch.setattr(head, 'loss_mask', record_loss)
    monkeypatch.setattr(roi, 'conv_mask_codes', record_codes)
    object_feats = torch.stack([r.pop('features') for r in rpn])
    results = roi.bbox_loss(stage, x, rpn, object_feats,
                            [s.metainfo for s in samples], gts)
    return results, seen, gts, samples


def test_targets_are_gt_masks_cropped_by_the_predicted_boxes(monkeypatch):
    model = build(tiny_v2_cfg())
    results, seen, gts, samples = _one_stage_loss(model, monkeypatch)
    want = []
    for res, proposals, gt, sample in zip(results['sampling_results'],
                                          results['detached_proposals'],
                                          gts, samples):
        h, w = sample.metainfo['img_shape']
        boxes = proposals[res.pos_inds].clone()
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
        want.append(
            gt.masks.crop_and_resize(
                boxes.numpy(), (16, 16),
                res.pos_assigned_gt_inds.numpy()).to_tensor(
                    torch.float32, 'cpu'))
    want = torch.cat(want)
    assert len(want) == 5  # every GT matched
    torch.testing.assert_close(seen['targets'], want)
    # ... not the GT-box crops the matching cost encodes (v1's targets)
    gt_box = torch.cat([
        gt.mask_targets[res.pos_assigned_gt_inds]
        for gt, res in zip(gts, results['sampling_results'])
    ])
    assert not torch.equal(seen['targets'], gt_box)


def test_without_a_code_cost_only_matched_queries_get_codes(monkeypatch):
    """v2 (cost on) runs the branch on all Q queries per image before the
    matching; with the cost off it runs once, after the matching, on the
    matched queries' boxes."""
    cfg = tiny_v2_cfg()
    model = build(cfg)
    _, seen, _, _ = _one_stage_loss(model, monkeypatch)
    assert [len(r) for r in seen['rois']] == [2 * 12]

    for stage_cfg in cfg.train_cfg.rcnn:
        stage_cfg.assigner.match_costs[-1].weight = 0.0
    model = build(cfg)
    results, seen, _, _ = _one_stage_loss(model, monkeypatch)
    rois, = seen['rois']
    assert len(rois) == len(seen['codes']) == 5
    want = torch.cat([
        proposals[res.pos_inds] for res, proposals in zip(
            results['sampling_results'], results['detached_proposals'])
    ])
    torch.testing.assert_close(rois[:, 1:], want)


# ------------------------------------------------------------- inference
def test_scores_average_the_chosen_stages(monkeypatch):
    model = build(tiny_v2_cfg())
    model.eval()
    roi = model.roi_head
    logits = []
    forward = roi._bbox_forward

    def record(*args, **kwargs):
        out = forward(*args, **kwargs)
        logits.append(out['cls_score'])
        return out

    monkeypatch.setattr(roi, '_bbox_forward', record)
    data = model.data_preprocessor(tiny_batch(), False)
    with torch.no_grad():
        x = model.extract_feat(data['inputs'])
        scores, _, codes = roi.run_stages(
            x, model.rpn_head.predict(x, data['data_samples']),
            with_codes=False)
        torch.testing.assert_close(scores, (logits[0] + logits[1]) / 2)
        assert codes is None
        logits.clear()
        roi.test_cfg.cls_score_stages = None  # v1: the last stage
        scores, _, codes = roi.run_stages(
            x, model.rpn_head.predict(x, data['data_samples']))
        torch.testing.assert_close(scores, logits[1])
        assert codes.shape == (2, 12, 12)


@pytest.mark.parametrize('fusion,code_head', [(False, 'fc'), (True, 'fc'),
                                              ('dynamic', 'fc'),
                                              (False, 'dense')])
def test_predict_encodes_the_detections_boxes(fusion, code_head):
    """Codes of the top-k detections = the last stage's conv branch on
    their boxes (and, query by query, the codes of tensor mode)."""
    cfg = tiny_v2_cfg()
    cfg.roi_head.bbox_head.mask_query_fusion = fusion
    cfg.roi_head.bbox_head.mask_code_head = code_head
    model = build(cfg)
    model.eval()
    roi = model.roi_head
    data = model.data_preprocessor(tiny_batch(), False)
    with torch.no_grad():
        x = model.extract_feat(data['inputs'])
        boxes, scores, labels, codes = roi.predict_codes(
            x, model.rpn_head.predict(x, data['data_samples']), 10)
    if not fusion:  # (with fusion the codes also need the object features)
        want = roi.bbox_head[1].forward_mask_conv(
            roi.code_roi_extractor(
                list(x), torch.cat([
                    torch.cat([boxes.new_full((10, 1), i), boxes[i]], 1)
                    for i in range(2)
                ])), codec=roi.mask_codec).view(2, 10, -1)
        torch.testing.assert_close(codes, want)
    with torch.no_grad():
        (cls_all, boxes_all, codes_all), = model(**data, mode='tensor')
    top = cls_all.sigmoid().flatten(1).topk(10, dim=1)
    query = top.indices // 3
    torch.testing.assert_close(scores, top.values)
    torch.testing.assert_close(
        codes, codes_all.gather(1, query[..., None].expand(-1, -1, 12)),
        rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        out = model(**data, mode='predict')
    assert out[0].pred_instances.masks.shape[0] == 10


def test_predict_encodes_each_query_once_on_the_cpu(monkeypatch):
    """A query's detections (its best classes) share box, object feature
    and code: on the CPU the branch runs once per distinct query, and the
    codes equal those of encoding every detection."""
    cfg = tiny_v2_cfg(num_proposals=6)
    cfg.roi_head.bbox_head.mask_query_fusion = 'dynamic'
    model = build(cfg)
    model.eval()
    roi = model.roi_head
    data = model.data_preprocessor(tiny_batch(), False)
    seen = []
    conv_codes = roi.conv_mask_codes

    def record(stage, x, rois, obj_feats=None, sync_free=None):
        seen.append(len(rois))
        return conv_codes(stage, x, rois, obj_feats, sync_free)

    monkeypatch.setattr(roi, 'conv_mask_codes', record)
    with torch.no_grad():
        x = model.extract_feat(data['inputs'])
        rpn = model.rpn_head.predict(x, data['data_samples'])
        # 6 queries x 3 classes: all 18 (query, class) pairs are detections
        boxes, scores, labels, codes = roi.predict_codes(x, rpn, 18)
        assert seen == [12]  # 6 distinct queries in each of 2 images
        rois = torch.cat([
            torch.cat([boxes.new_full((18, 1), i), boxes[i]], 1)
            for i in range(2)
        ])
        cls_all, _, _, obj_all = roi._run_stages(
            x, model.rpn_head.predict(x, data['data_samples']), False)
        query = cls_all.sigmoid().flatten(1).topk(18, dim=1).indices // 3
        obj = obj_all.gather(1, query[..., None].expand(-1, -1, 16))
        want = conv_codes(1, x, rois, obj.flatten(0, 1)).view(2, 18, -1)
    torch.testing.assert_close(codes, want, rtol=1e-5, atol=1e-6)


def _v2_mask_path_ops(num_dets, code_head='fc'):
    """Aten ops of the v2 mask path (pool the detections' boxes, conv
    branch, decode, paste) with the sync-free pooling, and host syncs."""
    cfg = tiny_v2_cfg(num_proposals=30)
    cfg.roi_head.bbox_head.mask_code_head = code_head
    model = build(cfg)
    model.eval()
    roi = model.roi_head
    roi.test_cfg.mask_impl = 'dense'
    data = model.data_preprocessor(tiny_batch(), False)
    metas = [s.metainfo for s in data['data_samples']]
    with torch.no_grad():
        x = model.extract_feat(data['inputs'])
        boxes, scores, labels, _ = roi.predict_codes(
            x, model.rpn_head.predict(x, data['data_samples']), num_dets)

        def mask_path():
            from mmdet.structures.bbox import bbox2roi
            codes = roi.conv_mask_codes(
                1, x, bbox2roi(list(boxes.unbind(0))),
                sync_free=True).view(2, num_dets, -1)
            return roi.predict_masks(boxes, scores, labels, codes, metas,
                                     True)

        holder = nn.Module()
        holder.run = mask_path
        counts = count_aten_ops(holder, 'run', lambda: holder.run())
        with HostSyncRecorder() as recorder:
            out = mask_path()
    assert len(out[0]) == num_dets
    return sum(counts.values()), recorder.found


@pytest.mark.parametrize('code_head', ['fc', 'dense'])
def test_v2_mask_path_op_count_is_fixed_and_sync_free(code_head):
    ops_small, syncs = _v2_mask_path_ops(5, code_head)
    ops_large, _ = _v2_mask_path_ops(50, code_head)
    assert ops_small == ops_large
    assert syncs == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_v2_mask_path_does_not_synchronise_on_cuda():
    from mmdet.structures.bbox import bbox2roi
    model = build(tiny_v2_cfg()).cuda().eval()
    roi = model.roi_head
    data = model.data_preprocessor(tiny_batch(), False)
    metas = [s.metainfo for s in data['data_samples']]
    with torch.no_grad():
        x = model.extract_feat(data['inputs'])
        boxes, scores, labels, _ = roi.predict_codes(
            x, model.rpn_head.predict(x, data['data_samples']), 10)
        rois = bbox2roi(list(boxes.unbind(0)))
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode('error')
        try:
            codes = roi.conv_mask_codes(1, x, rois).view(2, 10, -1)
            out = roi.predict_masks(boxes, scores, labels, codes, metas, True)
        finally:
            torch.cuda.set_sync_debug_mode(0)
    assert out[0].masks.is_cuda


# ------------------------------------------------------ small-data keys
@pytest.mark.parametrize('scale', [0.0, 0.25, 1.0])
def test_image_feat_scale_scales_the_image_part_of_the_start(scale):
    cfg = tiny_istr_cfg()
    cfg.rpn_head.image_feat_scale = scale
    model = build(cfg)
    data = model.data_preprocessor(tiny_batch(), False)
    with torch.no_grad():
        x = model.extract_feat(data['inputs'])
        results = model.rpn_head.predict(x, data['data_samples'])
        img = model.rpn_head.image_features(x)
    embed = model.rpn_head.init_proposal_features.weight
    for img_id, res in enumerate(results):
        torch.testing.assert_close(res.features,
                                   embed + scale * img[img_id][None])
    if scale == 0.0:  # Sparse R-CNN's start: the embeddings alone
        assert torch.equal(results[0].features, embed)
    cfg.rpn_head.image_feat_scale = -1.0
    with pytest.raises(ValueError, match='image_feat_scale'):
        MODELS.build(cfg)


def _code_cost_matrix(cost):
    pred = InstanceData(mask_codes=torch.tensor([[1., 0.], [0., 1.]]))
    gt = InstanceData(
        mask_codes=torch.tensor([[1., 0.]]), labels=torch.tensor([0]))
    return cost(pred, gt)


def test_mask_code_cost_switches_on_at_start_iter():
    cost = TASK_UTILS.build(dict(type='MaskCodeCost', weight=2.0,
                                 start_iter=100))
    hub = MessageHub.get_instance('test_mask_code_cost_start_iter')
    on = torch.tensor([[-2.0], [-1.0]])
    hub.update_info('iter', 99)
    assert torch.equal(_code_cost_matrix(cost), torch.zeros(2, 1))
    # off, it reads no codes: the conv branch may skip them
    assert torch.equal(
        cost(InstanceData(bboxes=torch.zeros(2, 4)),
             InstanceData(labels=torch.tensor([0]))), torch.zeros(2, 1))
    hub.update_info('iter', 100)
    torch.testing.assert_close(_code_cost_matrix(cost), on)
    # the official behaviour: on from the start, iteration or not
    official = TASK_UTILS.build(dict(type='MaskCodeCost', weight=2.0))
    hub.update_info('iter', 0)
    torch.testing.assert_close(_code_cost_matrix(official), on)
    with pytest.raises(ValueError, match='start_iter'):
        TASK_UTILS.build(dict(type='MaskCodeCost', start_iter=-5))


def test_mask_code_cost_without_a_runner_is_on():
    MessageHub.get_instance('test_mask_code_cost_no_iter')  # no 'iter'
    cost = TASK_UTILS.build(dict(type='MaskCodeCost', start_iter=10))
    torch.testing.assert_close(_code_cost_matrix(cost),
                               torch.tensor([[-1.0], [-0.5]]))


def test_query_fusion_lets_the_mask_losses_train_the_queries():
    """mask_query_fusion ('add': proj(object feature) added to the RoI
    features; 'dynamic': QueryInst's instance-interactive conv) lets the
    code / dice losses reach the stage's attention and dynamic conv (the
    query path); v2's branch does not."""
    grads = {}
    for fusion in (False, True, 'dynamic'):
        cfg = tiny_v2_cfg()
        cfg.roi_head.bbox_head.mask_query_fusion = fusion
        model = build(cfg)
        losses = model(**model.data_preprocessor(tiny_batch(), True),
                       mode='loss')
        (losses['s1.loss_mask_dice'] + losses['s1.loss_mask_code']).backward()
        head = model.roi_head.bbox_head[1]
        grad = head.attention.attn.in_proj_weight.grad
        grads[fusion] = 0.0 if grad is None else float(grad.abs().sum())
        if fusion is True:
            assert head.mask_query_proj.weight.grad.abs().sum() > 0
        if fusion == 'dynamic':
            assert head.mask_dynamic_conv.dynamic_layer.weight.grad.abs(
            ).sum() > 0
    assert grads[False] == 0.0
    assert grads[True] > 0 and grads['dynamic'] > 0


def test_dynamic_query_fusion_is_per_query_1x1_convs():
    """'dynamic': every RoI position goes through the two 1x1 convs whose
    weights its own query's object feature generates (LN + ReLU after
    each), then the v2 convs."""
    cfg = tiny_v2_cfg()
    cfg.roi_head.bbox_head.mask_query_fusion = 'dynamic'
    head = build(cfg).roi_head.bbox_head[0]
    head.eval()
    dyn = head.mask_dynamic_conv
    num, chans, size = 3, head.in_channels, head.mask_roi_size
    roi = torch.randn(num, chans, size, size)
    obj = torch.randn(num, chans)
    want = []
    for i in range(num):  # one query at a time, written out
        params = dyn.dynamic_layer(obj[i])
        w_in = params[:dyn.num_params_in].view(chans, dyn.feat_channels)
        w_out = params[dyn.num_params_in:].view(dyn.feat_channels, chans)
        pix = roi[i].flatten(1).t()  # (M * M, C)
        hid = torch.relu(dyn.norm_in(pix @ w_in))
        out = torch.relu(dyn.norm_out(hid @ w_out))
        want.append(out.t().reshape(chans, size, size))
    want = head.mask_convs(torch.stack(want)).flatten(1)
    with torch.no_grad():
        torch.testing.assert_close(head.forward_mask_conv(roi, obj), want,
                                   rtol=1e-4, atol=1e-5)


def test_query_fusion_errors_are_named():
    cfg = tiny_v2_cfg()
    cfg.roi_head.bbox_head.mask_query_fusion = True
    model = build(cfg)
    with pytest.raises(ValueError, match='object features'):
        model.roi_head.bbox_head[0].forward_mask_conv(
            torch.randn(3, 16, 28, 28))
    cfg = tiny_istr_cfg()  # the MLP branch
    cfg.roi_head.bbox_head.mask_query_fusion = True
    with pytest.raises(ValueError, match='conv mask branch'):
        MODELS.build(cfg)
    cfg = tiny_v2_cfg()
    cfg.roi_head.bbox_head.mask_query_fusion = 'concat'
    with pytest.raises(ValueError, match='mask_query_fusion must be one of'):
        MODELS.build(cfg)


@pytest.mark.parametrize('code_cost', [1.0, 0.0])
def test_v2_trains_on_images_without_gt(code_cost):
    """No GT in the batch: no matched query, the branch runs on no RoI
    (cost off) or on every query (cost on); the losses stay finite."""
    from mmdet.testing import demo_mm_inputs
    cfg = tiny_v2_cfg()
    for stage_cfg in cfg.train_cfg.rcnn:
        stage_cfg.assigner.match_costs[-1].weight = code_cost
    model = build(cfg)
    packed = demo_mm_inputs(2, [[3, 64, 96], [3, 72, 80]], num_items=[0, 0],
                            num_classes=3, with_mask=True)
    losses = model(**model.data_preprocessor(packed, True), mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()


# ------------------------------------------------------- dense code head
def test_dense_code_head_codes_are_the_codec_projection_of_pixel_masks():
    """mask_code_head='dense': convs predict one mask logit per position
    at the RoI size (28); the code is the codec's encoding of their
    sigmoid resized to S x S. With a complete DCT basis (D = S * S) the
    code therefore decodes back to exactly that per-pixel mask; with a
    short one, to its projection (low-pass)."""
    cfg = tiny_v2_cfg()
    cfg.roi_head.bbox_head.mask_code_head = 'dense'
    head = build(cfg).roi_head.bbox_head[0]
    head.eval()
    kinds = [type(m).__name__ for m in head.mask_convs]
    assert kinds == ['Conv2d', 'BatchNorm2d', 'ELU'] * 3 + [
        'ConvTranspose2d', 'ELU', 'Conv2d'
    ]
    assert head.mask_convs[3].kernel_size == (3, 3)
    roi = torch.randn(4, 16, 28, 28)
    with torch.no_grad():
        logits = head.mask_convs(roi)
    assert logits.shape == (4, 1, 28, 28)
    probs = F.interpolate(logits, size=(16, 16), mode='bilinear',
                          align_corners=False).sigmoid()[:, 0]
    full = TASK_UTILS.build(
        dict(type='DCTMaskCodec', code_dim=256, mask_size=16))
    head.code_dim = 256
    with torch.no_grad():
        codes = head.forward_mask_conv(roi, codec=full)
    torch.testing.assert_close(full.decode_for_loss(codes), probs,
                               rtol=1e-4, atol=1e-5)
    short = TASK_UTILS.build(
        dict(type='DCTMaskCodec', code_dim=12, mask_size=16))
    head.code_dim = 12
    with torch.no_grad():
        codes = head.forward_mask_conv(roi, codec=short)
    # the short code is the full code's first 12 (zig-zag) coefficients
    torch.testing.assert_close(codes, full.encode(probs)[:, :12],
                               rtol=1e-4, atol=1e-5)


def test_dense_code_head_errors_are_named():
    cfg = tiny_v2_cfg()
    cfg.roi_head.bbox_head.mask_code_head = 'dense'
    head = build(cfg).roi_head.bbox_head[0]
    with pytest.raises(ValueError, match='pass the mask codec'):
        head.forward_mask_conv(torch.randn(2, 16, 28, 28))
    wrong = TASK_UTILS.build(
        dict(type='DCTMaskCodec', code_dim=20, mask_size=16))
    with pytest.raises(ValueError, match='code_dim 12'):
        head.forward_mask_conv(torch.randn(2, 16, 28, 28), codec=wrong)
    cfg = tiny_v2_cfg()
    cfg.roi_head.bbox_head.mask_code_head = 'deconv'
    with pytest.raises(ValueError, match='mask_code_head must be one of'):
        MODELS.build(cfg)
    cfg = tiny_istr_cfg()  # the MLP branch
    cfg.roi_head.bbox_head.mask_code_head = 'dense'
    with pytest.raises(ValueError, match='conv mask branch'):
        MODELS.build(cfg)
    cfg = tiny_v2_cfg()
    cfg.roi_head.bbox_head.update(mask_code_head='dense', num_dense_convs=-1)
    with pytest.raises(ValueError, match='num_dense_convs'):
        MODELS.build(cfg)
