# Copyright (c) mmembed authors. All rights reserved.
"""BlenderHead and the BlendMask detector against references written from
specs/methods.md section 2 (per-instance loops), plus empty and degenerate
inputs, error paths and composition with another FCOS-family box head."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmcv.ops import roi_align
from mmdet.registry import MODELS
from mmdet.structures.mask import BitmapMasks
from mmdet.testing import demo_mm_inputs
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mmembed.models.dense_heads import BlenderHead, blend_bases
from mmembed.testing import get_detector_cfg

COCO = 'blendmask/blendmask_r50_fpn_1x_coco.py'
K, M, R = 4, 4, 12  # small bases / attention / RoI sizes for speed


def tiny_model_cfg(fname=COCO, width=16, **mask_head):
    """The config's BlendMask shrunk: R-18, ``width`` channels, one conv per
    tower, K=4 bases, 4x4 attention, 12x12 RoIs, 3 classes."""
    model = get_detector_cfg(fname)
    model.backbone.update(
        depth=18, frozen_stages=-1, norm_eval=False,
        norm_cfg=dict(type='BN', requires_grad=True), style='pytorch')
    model.neck.update(in_channels=[64, 128, 256, 512], out_channels=width)
    model.bbox_head.update(
        in_channels=width, feat_channels=width, stacked_convs=1,
        norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
        num_classes=3, num_bases=K, attn_size=M)
    model.mask_head.update(
        in_channels=width, feat_channels=8, num_convs=1, num_classes=3,
        num_bases=K, attn_size=M, bottom_resolution=R,
        norm_cfg=dict(type='BN', requires_grad=True))
    model.mask_head.update(mask_head)
    model.data_preprocessor.update(
        mean=[0, 0, 0], std=[255, 255, 255], bgr_to_rgb=False)
    model.test_cfg.score_thr = 0.0  # random weights score low
    return model


def build(cfg=None, seed=0):
    torch.manual_seed(seed)
    model = MODELS.build(cfg or tiny_model_cfg())
    model.init_weights()
    return model


def batch(model, shapes=((3, 125, 130), (3, 96, 112)), num_items=(3, 2),
          training=True):
    packed = demo_mm_inputs(
        len(shapes), [list(s) for s in shapes], num_items=list(num_items),
        num_classes=3, with_mask=True)
    return model.data_preprocessor(packed, training)


def head(**kwargs):
    cfg = dict(
        type='BlenderHead', num_classes=3, in_channels=8, feat_channels=8,
        num_bases=K, attn_size=M, num_convs=1, bottom_resolution=R,
        norm_cfg=dict(type='BN', requires_grad=True), loss_semantic=None,
        test_cfg=ConfigDict(mask_thr=0.5))
    cfg.update(kwargs)
    torch.manual_seed(0)
    return MODELS.build(cfg)


# --------------------------------------------------------------------- #
# the blender against a per-instance loop (methods.md 2.1)
# --------------------------------------------------------------------- #
def reference_mask_logits(bases, img_ids, boxes, attns, res, stride=4,
                          interp='bilinear'):
    """One instance at a time: RoIAlign (aligned, sampling ratio 1, scale
    1 / stride) -> attention (K, M, M) resized (bilinearly) to res x res ->
    softmax over K -> product summed over K."""
    num_bases = bases.shape[1]
    out = []
    for img_id, box, attn in zip(img_ids, boxes, attns):
        roi = torch.cat([box.new_tensor([float(img_id)]), box])[None]
        crop = roi_align(bases, roi, (res, res), 1.0 / stride, 1, 'avg',
                         True)[0]
        size = int(round((attn.numel() / num_bases)**0.5))
        weights = F.interpolate(
            attn.reshape(1, num_bases, size, size), size=(res, res),
            mode=interp,
            align_corners=False if interp == 'bilinear' else None)[0]
        weights = torch.softmax(weights, dim=0)
        out.append((crop * weights).sum(0))
    return torch.stack(out)


def random_boxes(num, size=(60, 80), seed=0):
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(num, 2, generator=gen) * torch.tensor(size[::-1]) * 0.6
    wh = torch.rand(num, 2, generator=gen) * 30 + 2
    return torch.cat([xy, xy + wh], dim=1)


@pytest.mark.parametrize('num_bases,attn_size,res,interp',
                         [(4, 14, 56, 'bilinear'), (3, 5, 17, 'bilinear'),
                          (4, 7, 20, 'nearest')])
def test_prediction_blend_equals_per_instance_loop(num_bases, attn_size,
                                                   res, interp):
    blender = head(num_bases=num_bases, attn_size=attn_size,
                   bottom_resolution=res, attn_interp=interp)
    torch.manual_seed(1)
    bases = torch.randn(2, num_bases, 15, 20)  # stride 4 of 60 x 80
    results = InstanceData(
        bboxes=random_boxes(7),
        codes=torch.randn(7, num_bases * attn_size**2) * 3)
    got = blender.predict_mask_probs(bases, 1, results)
    want = reference_mask_logits(bases, [1] * 7, results.bboxes,
                                 results.codes, res,
                                 interp=interp).sigmoid()
    assert got.shape == (7, res, res)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    # the pure function is the same blend
    pooled = blender.roi_align(
        bases, torch.cat([torch.ones(7, 1), results.bboxes], dim=1))
    torch.testing.assert_close(
        blend_bases(pooled, results.codes, interp).sigmoid(), want, rtol=0,
        atol=1e-5)


def blob_masks(boxes, height, width, seed=0):
    """Random blobs inside each box (not the full box, so the crop
    matters)."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((len(boxes), height, width), dtype=np.uint8)
    for mask, (x1, y1, x2, y2) in zip(masks, boxes.round().int().tolist()):
        region = rng.random((max(y2 - y1, 1), max(x2 - x1, 1))) > 0.4
        mask[y1:y2, x1:x2] = region[:mask[y1:y2, x1:x2].shape[0], :mask[
            y1:y2, x1:x2].shape[1]]
    return BitmapMasks(masks, height, width)


def make_training_inputs(num_pos=(5, 3), num_gts=(3, 2), seed=0):
    gen = torch.Generator().manual_seed(seed)
    gts, infos = [], []
    for img_id, (pos, num_gt) in enumerate(zip(num_pos, num_gts)):
        gt = InstanceData()
        gt.bboxes = random_boxes(num_gt, seed=seed + img_id)
        gt.labels = torch.randint(0, 3, (num_gt, ), generator=gen)
        gt.masks = blob_masks(gt.bboxes, 60, 80, seed + img_id)
        gts.append(gt)
        info = InstanceData()
        info.codes = (torch.randn(pos, K * M * M, generator=gen) *
                      2).requires_grad_()
        info.pos_assigned_gt_inds = torch.randint(
            0, max(num_gt, 1), (pos, ), generator=gen)
        info.centerness_targets = torch.rand(pos, generator=gen) * 0.9 + 0.1
        infos.append(info)
    metas = [dict(img_shape=(60, 80), batch_input_shape=(60, 80))] * 2
    return gts, infos, metas


def reference_mask_loss(bases, gts, infos, res):
    """AdelaiDet Blender loss, one positive at a time: BCE averaged over
    the res x res crop x centerness target, summed, / sum of centerness."""
    total, denorm = 0., 0.
    for img_id, (gt, info) in enumerate(zip(gts, infos)):
        masks = torch.from_numpy(gt.masks.masks).float()
        for code, gt_ind, ctr in zip(info.codes, info.pos_assigned_gt_inds,
                                     info.centerness_targets):
            box = gt.bboxes[gt_ind]
            logits = reference_mask_logits(bases, [img_id], box[None],
                                           code[None], res)[0]
            # detectron2 BitMasks.crop_and_resize: RoIAlign (aligned,
            # sampling ratio 0) of the full mask, >= 0.5
            roi = torch.cat([torch.zeros(1), box])[None]
            target = roi_align(masks[gt_ind][None, None], roi, (res, res),
                               1.0, 0, 'avg', True)[0, 0] >= 0.5
            bce = F.binary_cross_entropy_with_logits(logits, target.float())
            total = total + bce * ctr
            denorm = denorm + ctr
    return total / denorm


def test_mask_loss_equals_per_positive_reference():
    blender = head()
    gts, infos, metas = make_training_inputs()
    bases = torch.randn(2, K, 15, 20, requires_grad=True)
    got = blender.loss_by_feat(
        bases, batch_gt_instances=gts, batch_img_metas=metas,
        positive_infos=infos)
    assert set(got) == {'loss_mask'}
    want = reference_mask_loss(bases, gts, infos, R)
    torch.testing.assert_close(got['loss_mask'], want, rtol=1e-5, atol=1e-6)
    got['loss_mask'].backward()
    assert bases.grad is not None and bases.grad.abs().sum() > 0
    assert all(info.codes.grad.abs().sum() > 0 for info in infos)


def test_positive_cap_keeps_the_loss_a_weighted_mean():
    """With a cap of 1 positive the loss is that positive's mean BCE (its
    centerness cancels), i.e. one of the per-positive losses."""
    gts, infos, metas = make_training_inputs()
    bases = torch.randn(2, K, 15, 20)
    per_pos = []
    for img_id, info in enumerate(infos):
        for j in range(len(info)):
            one = [info[j:j + 1] if i == img_id else info[:0]
                   for i, info in enumerate(infos)]
            per_pos.append(reference_mask_loss(bases, gts, one, R))
    capped = head(max_pos_to_train=1)
    got = capped.loss_by_feat(
        bases, batch_gt_instances=gts, batch_img_metas=metas,
        positive_infos=infos)['loss_mask']
    assert min(abs(float(got - p)) for p in per_pos) < 1e-5
    # a cap above P changes nothing
    full = head(max_pos_to_train=-1).loss_by_feat(
        bases, batch_gt_instances=gts, batch_img_metas=metas,
        positive_infos=infos)['loss_mask']
    loose = head(max_pos_to_train=100).loss_by_feat(
        bases, batch_gt_instances=gts, batch_img_metas=metas,
        positive_infos=infos)['loss_mask']
    torch.testing.assert_close(full, loose)


def test_no_positives_keeps_the_graph():
    blender = head()
    gts, infos, metas = make_training_inputs(num_pos=(0, 0), num_gts=(2, 0))
    bases = torch.randn(2, K, 15, 20, requires_grad=True)
    loss = blender.loss_by_feat(
        bases, batch_gt_instances=gts, batch_img_metas=metas,
        positive_infos=infos)['loss_mask']
    assert loss.requires_grad and float(loss) == 0
    loss.backward()
    assert bases.grad is not None and not bases.grad.any()


# --------------------------------------------------------------------- #
# the semantic target built from the instance masks
# --------------------------------------------------------------------- #
def test_semantic_target_equals_adelaidet_thing_map():
    """prepare_thing_sem_from_instance.py paints instances in order (later
    ones win) with label + 1, then AdelaiDet resizes by nearest 1/8."""
    blender = head(loss_semantic=dict(type='CrossEntropyLoss',
                                      use_sigmoid=False, loss_weight=0.3))
    gt = InstanceData()
    gt.bboxes = torch.tensor([[4., 4., 60., 50.], [30., 20., 80., 64.],
                              [0., 0., 20., 20.]])
    gt.labels = torch.tensor([2, 0, 1])
    gt.masks = blob_masks(gt.bboxes, 64, 96, seed=3)
    full = torch.zeros(64, 96, dtype=torch.long)
    for mask, label in zip(gt.masks.masks, gt.labels):
        full[torch.from_numpy(mask).bool()] = label + 1
    want = F.interpolate(full[None, None].float(), scale_factor=1 / 8)[0, 0]
    got = blender._semantic_target(gt, (8, 12), torch.device('cpu'))
    assert torch.equal(got, want.long())
    assert set(got.unique().tolist()) == {0, 1, 2, 3}
    empty = gt[:0]
    assert not blender._semantic_target(empty, (8, 12),
                                        torch.device('cpu')).any()


# --------------------------------------------------------------------- #
# the detector end to end
# --------------------------------------------------------------------- #
def test_detector_losses_and_every_parameter_gets_a_gradient():
    model = build()
    losses = model(**batch(model), mode='loss')
    assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_centerness',
                           'loss_mask', 'loss_semantic'}
    total = sum(losses.values())
    assert torch.isfinite(total) and losses['loss_mask'] > 0
    total.backward()
    for name, param in model.named_parameters():
        if 'bbox_head.scales' in name:  # use_scale=False: frozen at 1.0
            assert not param.requires_grad and float(param) == 1.0
            continue
        if param.requires_grad:
            assert param.grad is not None, name
            assert torch.isfinite(param.grad).all(), name


def test_loss_semantic_none_switches_the_head_off():
    model = build(tiny_model_cfg(loss_semantic=None))
    assert model.mask_head.seg_head is None
    losses = model(**batch(model), mode='loss')
    assert 'loss_semantic' not in losses


def test_empty_gt_images_train():
    model = build()
    losses = model(**batch(model, num_items=(0, 0)), mode='loss')
    loss_mask = losses['loss_mask']
    assert float(loss_mask) == 0 and loss_mask.requires_grad
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    for name, param in model.mask_head.named_parameters():
        assert param.grad is not None, name
    assert model.bbox_head.conv_attn.weight.grad is not None


def test_predict_shapes_and_rescale():
    model = build()
    data = batch(model, training=False)
    model.eval()
    with torch.no_grad():
        samples = model(**data, mode='predict')
    for sample in samples:
        pred = sample.pred_instances
        assert pred.masks.dtype == torch.bool
        assert pred.masks.shape[1:] == tuple(sample.ori_shape)
        assert len(pred.masks) == len(pred.bboxes) == len(pred.scores) > 0
        # AdelaiDet score: sqrt(cls * ctr), never below the product
        assert (pred.scores <= 1).all() and (pred.scores > 0).all()


def test_zero_detections_give_empty_masks():
    cfg = tiny_model_cfg()
    cfg.test_cfg.score_thr = 1.1  # nothing passes
    model = build(cfg)
    model.eval()
    with torch.no_grad():
        samples = model(**batch(model, training=False), mode='predict')
    for sample in samples:
        pred = sample.pred_instances
        assert pred.masks.shape == (0, *sample.ori_shape)
        assert pred.masks.dtype == torch.bool
        assert pred.bboxes.shape == (0, 4)


def test_tensor_mode_needs_no_gt_and_traces():
    model = build()
    model.eval()
    inputs = batch(model, training=False)['inputs']
    bbox_outs, mask_outs = model(inputs, mode='tensor')
    cls_scores, bbox_preds, centernesses, attns = bbox_outs
    pad_h, pad_w = inputs.shape[-2:]
    assert mask_outs[0].shape == (2, K, pad_h // 4, pad_w // 4)
    assert all(a.shape[1] == K * M * M for a in attns)

    class Wrapper(torch.nn.Module):

        def __init__(self, detector):
            super().__init__()
            self.detector = detector

        def forward(self, x):
            bbox_outs, mask_outs = self.detector(x, mode='tensor')
            return tuple(t for outs in bbox_outs for t in outs) + mask_outs

    wrapper = Wrapper(model)
    with torch.no_grad():
        traced = torch.jit.trace(wrapper, inputs, check_trace=False)
        for got, want in zip(traced(inputs), wrapper(inputs)):
            torch.testing.assert_close(got, want)


def test_blender_behind_an_embedmask_box_head():
    """BlenderHead reads the attention from the first K * M * M channels of
    EmbedMaskBoxHead's code ([embedding (D) | margin]) by config only."""
    cfg = tiny_model_cfg(attn_offset=0)
    box = cfg.bbox_head
    cfg.bbox_head = ConfigDict(
        type='EmbedMaskBoxHead', num_classes=3, in_channels=box.in_channels,
        feat_channels=box.feat_channels, stacked_convs=1,
        norm_cfg=box.norm_cfg, norm_on_bbox=True, centerness_on_reg=True,
        center_sampling=True, embed_dim=K * M * M, margin_per_dim=False,
        sample_in_mask=False, loss_bbox=dict(type='GIoULoss',
                                             loss_weight=1.0))
    model = build(cfg)
    assert model.bbox_head.code_channels == K * M * M + 1
    losses = model(**batch(model), mode='loss')
    assert torch.isfinite(sum(losses.values())) and losses['loss_mask'] > 0
    model.eval()
    with torch.no_grad():
        samples = model(**batch(model, training=False), mode='predict')
    assert samples[0].pred_instances.masks.shape[1:] == tuple(
        samples[0].ori_shape)
    # without attn_offset the width mismatch is an error that says so
    cfg.mask_head.attn_offset = None
    model = build(cfg)
    with pytest.raises(ValueError, match='attn_offset'):
        model(**batch(model), mode='loss')


# --------------------------------------------------------------------- #
# error paths
# --------------------------------------------------------------------- #
def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match='max_pos_to_train'):
        head(max_pos_to_train=0)
    with pytest.raises(ValueError, match='in_stride'):
        head(in_stride=5)
    with pytest.raises(ValueError, match='in_levels'):
        head(in_levels=())
    with pytest.raises(ValueError, match='attn_interp'):
        head(attn_interp='bicubic')
    blender = head()
    gts, infos, metas = make_training_inputs()
    with pytest.raises(ValueError, match='positive_infos'):
        blender.loss_by_feat(torch.zeros(2, K, 15, 20),
                             batch_gt_instances=gts, batch_img_metas=metas,
                             positive_infos=None)
    no_masks = [InstanceData(bboxes=g.bboxes, labels=g.labels) for g in gts]
    with pytest.raises(ValueError, match='with_mask'):
        blender.loss_by_feat(torch.zeros(2, K, 15, 20),
                             batch_gt_instances=no_masks,
                             batch_img_metas=metas, positive_infos=infos)
    no_ctr = [InstanceData(codes=i.codes,
                           pos_assigned_gt_inds=i.pos_assigned_gt_inds)
              for i in infos]
    with pytest.raises(ValueError, match='centerness_targets'):
        blender.loss_by_feat(torch.zeros(2, K, 15, 20),
                             batch_gt_instances=gts, batch_img_metas=metas,
                             positive_infos=no_ctr)
    semantic = head(loss_semantic=dict(type='CrossEntropyLoss',
                                       use_sigmoid=False))
    with pytest.raises(ValueError, match='training mode'):
        semantic.loss_by_feat(torch.zeros(2, K, 15, 20),
                              batch_gt_instances=gts, batch_img_metas=metas,
                              positive_infos=infos)
    bad_labels = copy.deepcopy(gts)
    bad_labels[0].labels[0] = 7
    with pytest.raises(ValueError, match='num_classes'):
        semantic.loss_by_feat(torch.zeros(2, K, 15, 20),
                              torch.zeros(2, 4, 8, 10),
                              batch_gt_instances=bad_labels,
                              batch_img_metas=metas, positive_infos=infos)


def test_test_cfg_is_checked():
    results = [InstanceData(bboxes=torch.zeros(0, 4), codes=torch.zeros(
        0, K * M * M), scores=torch.zeros(0), labels=torch.zeros(0).long())]
    metas = [dict(img_shape=(60, 80), ori_shape=(60, 80),
                  scale_factor=(1., 1.))]
    for cfg, error in [(None, KeyError), (dict(mask_thresh=0.5), KeyError),
                       (dict(mask_thr=0.5, mask_chunk=3), KeyError),
                       (dict(mask_thr=1.5), ValueError),
                       (dict(mask_thr=0.5, mask_impl='grid'), ValueError)]:
        with pytest.raises(error):
            # a misspelt key is refused when the head is built
            blender = head(test_cfg=cfg)
            blender.predict_by_feat(torch.zeros(1, K, 15, 20),
                                    results_list=results,
                                    batch_img_metas=metas)


def test_is_a_base_mask_head():
    from mmdet.models.dense_heads.base_mask_head import BaseMaskHead
    assert issubclass(BlenderHead, BaseMaskHead)


# --------------------------------------------------------------------- #
# the mask path: op count independent of N, no host synchronisation
# --------------------------------------------------------------------- #
def detections(num, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return InstanceData(
        bboxes=random_boxes(num, seed=seed),
        codes=torch.randn(num, K * M * M, generator=gen),
        scores=torch.rand(num, generator=gen),
        labels=torch.randint(0, 3, (num, ), generator=gen))


def predict_masks(blender, bases, results):
    metas = [dict(img_shape=(60, 80), ori_shape=(90, 120),
                  scale_factor=(80 / 120, 60 / 90))]
    return blender.predict_by_feat(
        bases, results_list=[results], batch_img_metas=metas,
        rescale=True)[0]


def test_mask_path_op_count_does_not_grow_with_detections():
    from collections import Counter
    blender = head(test_cfg=ConfigDict(mask_thr=0.5, mask_impl='dense'))
    blender.eval()
    bases = torch.randn(1, K, 15, 20)
    counts = []
    for num in (10, 100):
        results = detections(num)
        with torch.profiler.profile(
                activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            out = predict_masks(blender, bases, results)
        assert out.masks.shape == (num, 90, 120)
        # CPU zero_ memsets tensors under 32k elements itself and calls
        # fill_ only for larger ones (mmcv's RoIAlign zeroes its output):
        # a size effect of the CPU kernel, not an extra launch, so skip it
        counts.append(Counter(
            e.name for e in prof.events() if e.name.startswith('aten::')
            and not (e.name == 'aten::fill_' and e.cpu_parent is not None
                     and e.cpu_parent.name == 'aten::zero_')))
    assert counts[0] == counts[1]
    for name in ('aten::item', 'aten::_local_scalar_dense', 'aten::nonzero'):
        assert name not in counts[0], name


def test_dense_and_ragged_masks_agree():
    bases = torch.randn(1, K, 15, 20)
    results = detections(30)
    masks = [
        predict_masks(
            head(test_cfg=ConfigDict(mask_thr=0.5, mask_impl=impl)).eval(),
            bases, results).masks for impl in ('dense', 'ragged')
    ]
    assert masks[0].any()
    # ties at exactly the threshold aside (none here), the same masks
    assert torch.equal(masks[0], masks[1])


def test_rescaled_boxes_and_masks_match_mmdet_rescale():
    blender = head().eval()
    out = predict_masks(blender, torch.randn(1, K, 15, 20), detections(5))
    boxes = random_boxes(5) / torch.tensor([80 / 120, 60 / 90] * 2)
    torch.testing.assert_close(out.bboxes, boxes)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_mask_path_does_not_synchronise_on_cuda():
    blender = head().eval().cuda()
    bases = torch.randn(1, K, 15, 20, device='cuda')
    results = detections(50)
    results = InstanceData(**{k: v.cuda() for k, v in results.items()})
    metas = [dict(img_shape=(60, 80), ori_shape=(90, 120),
                  scale_factor=(80 / 120, 60 / 90))]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode('error')
    try:
        out = blender.predict_by_feat(
            bases, results_list=[results], batch_img_metas=metas)[0]
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert out.masks.shape == (50, 90, 120) and out.masks.is_cuda


def test_polygon_masks_train_like_their_bitmaps():
    """LoadAnnotations(poly2mask=False) gives PolygonMasks: the semantic
    target is the same as from their bitmaps, and the mask loss stays
    close (polygons are rasterised inside the box, bitmaps RoI-aligned)."""
    from mmdet.structures.mask import PolygonMasks
    polygons = [[np.array([10., 8., 50., 12., 30., 50.])],
                [np.array([40., 20., 75., 20., 75., 55., 40., 55.])]]
    poly = PolygonMasks(polygons, 60, 80)
    gts = []
    for masks in (poly, poly.to_bitmap()):
        gt = InstanceData()
        gt.bboxes = torch.tensor([[10., 8., 50., 50.], [40., 20., 75., 55.]])
        gt.labels = torch.tensor([0, 2])
        gt.masks = masks
        gts.append(gt)
    blender = head(loss_semantic=dict(type='CrossEntropyLoss',
                                      use_sigmoid=False))
    cpu = torch.device('cpu')
    assert torch.equal(blender._semantic_target(gts[0], (8, 10), cpu),
                       blender._semantic_target(gts[1], (8, 10), cpu))
    info = InstanceData(
        codes=torch.randn(4, K * M * M),
        pos_assigned_gt_inds=torch.tensor([0, 0, 1, 1]),
        centerness_targets=torch.tensor([0.5, 0.9, 0.7, 0.3]))
    bases = torch.randn(1, K, 15, 20)
    metas = [dict(img_shape=(60, 80), batch_input_shape=(60, 80))]
    losses = [
        blender.loss_by_feat(
            bases, torch.zeros(1, 4, 8, 10), batch_gt_instances=[gt],
            batch_img_metas=metas, positive_infos=[info])['loss_mask']
        for gt in gts
    ]
    assert torch.isfinite(losses[0])
    torch.testing.assert_close(losses[0], losses[1], rtol=0.05, atol=0)


def test_bases_without_upsampling_keep_the_input_stride():
    """basis_upsample=False: bases at the stride of their input (the
    SharpMask neck's stride-4 map), same module layout as with the x2."""
    from mmembed.models.dense_heads import BlenderHead
    torch.manual_seed(0)
    head = BlenderHead(num_classes=3, in_channels=8, feat_channels=8,
                       num_bases=4, attn_size=2, in_levels=(0, ),
                       in_stride=4, basis_upsample=False)
    with_up = BlenderHead(num_classes=3, in_channels=8, feat_channels=8,
                          num_bases=4, attn_size=2, in_levels=(0, ),
                          in_stride=8)
    assert head.basis_stride == 4 and with_up.basis_stride == 4
    assert [k for k in head.state_dict()] == [
        k for k in with_up.state_dict()]
    head.eval()
    feats = (torch.rand(1, 8, 24, 20), )
    bases = head(feats)[0]
    assert bases.shape == (1, 4, 24, 20)


def test_mask_clean_keeps_the_largest_part_without_holes():
    """test_cfg.mask_clean: each pasted mask is cleaned by
    clean_instance_masks (largest component, holes filled); a non-bool
    value is refused by name."""
    from mmembed.models.utils import clean_instance_masks
    torch.manual_seed(0)
    bases = torch.randn(1, K, 15, 20)
    results = detections(30)
    raw = predict_masks(
        head(test_cfg=ConfigDict(mask_thr=0.5)).eval(), bases,
        results).masks
    # random bases blend into speckled masks: there is something to clean
    assert not torch.equal(clean_instance_masks(raw), raw)
    cleaned = predict_masks(
        head(test_cfg=ConfigDict(mask_thr=0.5, mask_clean=True)).eval(),
        bases, results).masks
    assert torch.equal(cleaned, clean_instance_masks(raw))
    with pytest.raises(ValueError, match='mask_clean'):
        predict_masks(
            head(test_cfg=ConfigDict(mask_thr=0.5, mask_clean='yes')).eval(),
            bases, results)


def test_bases_read_levels_of_different_widths():
    """in_channels per level: a 16-channel stride-2 map beside 32-channel
    FPN levels (the SharpMaskFPN layout with FPN bases); a count that does
    not match in_levels is refused by name."""
    blender = BlenderHead(num_classes=3, in_channels=(16, 32, 32),
                          feat_channels=8, num_bases=K, attn_size=4,
                          num_convs=1, in_levels=(-1, 0, 1), in_stride=2,
                          basis_upsample=False, bottom_resolution=12,
                          norm_cfg=dict(type='BN', requires_grad=True))
    feats = (torch.randn(1, 32, 8, 10), torch.randn(1, 32, 4, 5),
             torch.randn(1, 16, 32, 40))
    blender.train()
    bases, semantic = blender(feats)
    assert bases.shape == (1, K, 32, 40)
    assert semantic.shape == (1, 4, 32, 40)  # the first level: the map
    assert [r.conv.in_channels for r in blender.refine] == [16, 32, 32]
    with pytest.raises(ValueError, match='in_channels has 2 entries'):
        BlenderHead(in_channels=(16, 32), in_levels=(-1, 0, 1))
