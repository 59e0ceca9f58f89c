# Copyright (c) mmembed authors. All rights reserved.
"""FCOSCodeHead mirrors mmdet's FCOSHead: same losses, same detections.
If an mmdet upgrade moves FCOSHead, these tests say what moved."""
import pytest
import torch
from mmdet.models.dense_heads import FCOSHead
from mmdet.structures.mask import BitmapMasks
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mmembed.models.dense_heads import EmbedMaskBoxHead

IMG_H, IMG_W = 256, 192
METAS = [
    dict(img_shape=(IMG_H, IMG_W), pad_shape=(IMG_H, IMG_W),
         batch_input_shape=(IMG_H, IMG_W), scale_factor=(1., 1.)),
    dict(img_shape=(240, 180), pad_shape=(IMG_H, IMG_W),
         batch_input_shape=(IMG_H, IMG_W), scale_factor=(1., 1.)),
]
FCOS_KW = dict(
    num_classes=3,
    in_channels=8,
    feat_channels=8,
    stacked_convs=1,
    norm_cfg=None,
    norm_on_bbox=True,
    centerness_on_reg=True,
    loss_bbox=dict(type='GIoULoss', loss_weight=1.0),
    test_cfg=ConfigDict(
        nms_pre=1000,
        score_thr=0.0,  # random weights score ~0.01 (prior)
        nms=dict(type='nms', iou_threshold=0.6),
        max_per_img=100))


def make_gt(boxes, labels, with_mask=True):
    gt = InstanceData()
    gt.bboxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    gt.labels = torch.tensor(labels, dtype=torch.long)
    if with_mask:
        masks = torch.zeros(len(labels), IMG_H, IMG_W, dtype=torch.uint8)
        for mask, (x1, y1, x2, y2) in zip(masks, gt.bboxes.int().tolist()):
            mask[y1:y2, x1:x2] = 1
        gt.masks = BitmapMasks(masks.numpy(), IMG_H, IMG_W)
    return gt


def build_pair(**kwargs):
    torch.manual_seed(0)
    ours = EmbedMaskBoxHead(**FCOS_KW, sample_in_mask=False, **kwargs)
    ours.init_weights()
    ref = FCOSHead(**FCOS_KW, **kwargs)
    missing, unexpected = ref.load_state_dict(ours.state_dict(), strict=False)
    assert not missing  # ours only adds layers
    assert all(k.startswith(('conv_embed', 'conv_margin', 'margin_scales'))
               for k in unexpected)
    feats = [
        torch.rand(2, 8, IMG_H // s, IMG_W // s) for s in ours.strides
    ]
    return ours, ref, feats


GTS = [
    make_gt([[20, 30, 120, 200], [60, 10, 180, 90], [5, 5, 30, 40]],
            [0, 2, 1]),
    make_gt([], []),
]


@pytest.mark.parametrize('center_sampling', [True, False])
def test_losses_match_fcos(center_sampling):
    ours, ref, feats = build_pair(center_sampling=center_sampling)
    got = ours.loss_by_feat(*ours(feats), GTS, METAS)
    want = ref.loss_by_feat(*ref(feats), GTS, METAS)
    for key in ('loss_cls', 'loss_bbox', 'loss_centerness'):
        torch.testing.assert_close(got[key], want[key])


def test_predictions_match_fcos_and_carry_codes():
    ours, ref, feats = build_pair(center_sampling=True)
    ours.eval()
    ref.eval()
    with torch.no_grad():
        outs = ours(feats)
        got = ours.predict_by_feat(*outs, batch_img_metas=METAS)
        want = ref.predict_by_feat(*ref(feats), batch_img_metas=METAS)
    for g, w in zip(got, want):
        assert len(g) > 0
        for key in ('bboxes', 'scores', 'labels'):
            torch.testing.assert_close(g[key], w[key])
        assert g.codes.shape == (len(g), ours.code_channels)
        assert g.points.shape == (len(g), 2) and g.strides.shape == (len(g), )
    # every detection's code is the code map at its own location
    res = got[0]
    for code, (x, y), stride in zip(res.codes[:10], res.points[:10],
                                    res.strides[:10]):
        level = ours.strides.index(int(stride))
        col, row = int(x // stride), int(y // stride)
        torch.testing.assert_close(code, outs[3][level][0, :, row, col])


def test_positive_infos_are_consistent():
    ours, _, feats = build_pair(center_sampling=True)
    outs = ours(feats)
    ours.loss_by_feat(*outs, GTS, METAS)
    infos = ours.get_positive_infos()
    assert len(infos) == 2 and len(infos[1]) == 0
    info = infos[0]
    assert len(info) > 0
    flat_codes = torch.cat([
        c[0].permute(1, 2, 0).reshape(-1, ours.code_channels)
        for c in outs[3]
    ])
    torch.testing.assert_close(info.codes, flat_codes[info.pos_inds])
    assert info.codes.requires_grad
    assert set(info.pos_assigned_gt_inds.tolist()) <= {0, 1, 2}
    # each positive lies inside its GT box; predicted boxes are detached
    gt_boxes = GTS[0].bboxes[info.pos_assigned_gt_inds]
    x, y = info.points[:, 0], info.points[:, 1]
    assert ((x > gt_boxes[:, 0]) & (x < gt_boxes[:, 2]) & (y > gt_boxes[:, 1])
            & (y < gt_boxes[:, 3])).all()
    assert not info.bboxes.requires_grad
    assert info.bboxes.shape == (len(info), 4)


def test_sample_in_mask_restricts_positives_to_the_mask():
    """A GT box (0, 0, 192, 256) whose mask is only its left half: every
    positive must lie in the left half, and some right-half locations that
    plain FCOS makes positive become background."""
    torch.manual_seed(0)
    head = EmbedMaskBoxHead(**FCOS_KW, sample_in_mask=True,
                            center_sampling=False)
    gt = make_gt([[0, 0, 192, 256]], [1])
    masks = gt.masks.masks.copy()
    masks[:, :, 96:] = 0
    gt.masks = BitmapMasks(masks, IMG_H, IMG_W)
    feats = [torch.rand(1, 8, IMG_H // s, IMG_W // s) for s in head.strides]
    head.loss_by_feat(*head(feats), [gt], METAS[:1])
    info = head.get_positive_infos()[0]
    assert len(info) > 0
    assert (info.points[:, 0] < 96).all()
    head.sample_in_mask = False
    head.loss_by_feat(*head(feats), [gt], METAS[:1])
    assert (head.get_positive_infos()[0].points[:, 0] >= 96).any()


def test_sample_in_mask_without_masks_is_a_clear_error():
    head = EmbedMaskBoxHead(**FCOS_KW, sample_in_mask=True)
    feats = [torch.rand(1, 8, IMG_H // s, IMG_W // s) for s in head.strides]
    with pytest.raises(ValueError, match='LoadAnnotations'):
        head.loss_by_feat(*head(feats), [make_gt([[0, 0, 9, 9]], [0], False)],
                          METAS[:1])


def test_ignored_instances_warn_once():
    head = EmbedMaskBoxHead(**FCOS_KW, sample_in_mask=False)
    feats = [torch.rand(1, 8, IMG_H // s, IMG_W // s) for s in head.strides]
    ignore = make_gt([[0, 0, 50, 50]], [0], with_mask=False)
    with pytest.warns(UserWarning, match='ignored'):
        head.loss_by_feat(*head(feats), GTS[:1], METAS[:1], [ignore])


# --------------------------------------------------------------------- #
# BlendMaskBoxHead: FCOS when configured as FCOS, AdelaiDet otherwise
# --------------------------------------------------------------------- #
AS_FCOS = dict(use_scale=True, thresh_with_ctr=False, sqrt_score=False)


def build_blendmask_pair(**kwargs):
    from mmembed.models.dense_heads import BlendMaskBoxHead
    torch.manual_seed(0)
    ours = BlendMaskBoxHead(**FCOS_KW, num_bases=2, attn_size=3, **kwargs)
    ours.init_weights()
    ref_kwargs = {
        k: v
        for k, v in kwargs.items()
        if k not in ('use_scale', 'thresh_with_ctr', 'sqrt_score')
    }
    ref = FCOSHead(**FCOS_KW, **ref_kwargs)
    missing, unexpected = ref.load_state_dict(ours.state_dict(), strict=False)
    assert not missing
    assert all(k.startswith('conv_attn') for k in unexpected), unexpected
    feats = [
        torch.rand(2, 8, IMG_H // s, IMG_W // s) for s in ours.strides
    ]
    return ours, ref, feats


@pytest.mark.parametrize('use_scale', [True, False])
def test_blendmask_box_head_losses_match_fcos(use_scale):
    """Frozen scales (AdelaiDet USE_SCALE False) stay at 1.0, where mmdet's
    scales start, so the losses equal FCOSHead's either way."""
    ours, ref, feats = build_blendmask_pair(
        center_sampling=True, **dict(AS_FCOS, use_scale=use_scale))
    got = ours.loss_by_feat(*ours(feats), GTS, METAS)
    want = ref.loss_by_feat(*ref(feats), GTS, METAS)
    for key in ('loss_cls', 'loss_bbox', 'loss_centerness'):
        torch.testing.assert_close(got[key], want[key])
    assert all(s.scale.requires_grad == use_scale for s in ours.scales)


def test_blendmask_box_head_as_fcos_predicts_as_fcos():
    ours, ref, feats = build_blendmask_pair(center_sampling=True, **AS_FCOS)
    ours.eval()
    ref.eval()
    with torch.no_grad():
        got = ours.predict_by_feat(*ours(feats), batch_img_metas=METAS)
        want = ref.predict_by_feat(*ref(feats), batch_img_metas=METAS)
    for g, w in zip(got, want):
        assert len(g) > 0
        for key in ('bboxes', 'scores', 'labels'):
            torch.testing.assert_close(g[key], w[key])
        assert g.codes.shape == (len(g), 2 * 3 * 3)


def adelaidet_detections(ref, feats, meta, cfg, img_id=0):
    """AdelaiDet fcos_outputs.predict_proposals written out on FCOSHead's
    raw outputs: per level, cls x ctr > thr (THRESH_WITH_CTR), top
    ``nms_pre``, decode, class-aware NMS, top ``max_per_img``, sqrt."""
    from mmcv.ops import batched_nms
    cls_scores, bbox_preds, centernesses = ref(feats)
    priors = ref.prior_generator.grid_priors(
        [c.shape[-2:] for c in cls_scores], device='cpu')
    boxes, scores, labels = [], [], []
    for cls, box, ctr, points in zip(cls_scores, bbox_preds, centernesses,
                                     priors):
        prob = cls[img_id].permute(1, 2, 0).reshape(-1, 3).sigmoid() * \
            ctr[img_id].permute(1, 2, 0).reshape(-1, 1).sigmoid()
        loc, label = (prob > cfg['score_thr']).nonzero(as_tuple=True)
        score = prob[loc, label]
        keep = score.argsort(descending=True)[:cfg['nms_pre']]
        loc, label, score = loc[keep], label[keep], score[keep]
        ltrb = box[img_id].permute(1, 2, 0).reshape(-1, 4)[loc]
        boxes.append(ref.bbox_coder.decode(
            points[loc], ltrb, max_shape=meta['img_shape']))
        scores.append(score)
        labels.append(label)
    dets, keep = batched_nms(
        torch.cat(boxes), torch.cat(scores), torch.cat(labels), cfg['nms'])
    keep = keep[:cfg['max_per_img']]
    return dets[:cfg['max_per_img'], :4], torch.cat(scores)[keep].sqrt(), \
        torch.cat(labels)[keep]


def test_blendmask_box_head_predicts_as_adelaidet():
    ours, ref, feats = build_blendmask_pair(center_sampling=True)
    assert ours.thresh_with_ctr and ours.sqrt_score and not ours.use_scale
    # spread the scores (initial ones are all ~0.01 x 0.5)
    with torch.no_grad():
        for name, param in ours.named_parameters():
            if not name.startswith('scales'):
                param.normal_(0, 0.3)
    ref.load_state_dict(ours.state_dict(), strict=False)
    cfg = dict(FCOS_KW['test_cfg'], score_thr=0.3, nms_pre=50,
               max_per_img=30)
    ours.eval()
    ref.eval()
    with torch.no_grad():
        got = ours.predict_by_feat(
            *ours(feats), batch_img_metas=METAS, cfg=ConfigDict(cfg))[0]
        boxes, scores, labels = adelaidet_detections(ref, feats, METAS[0],
                                                     cfg)
    assert 0 < len(got) == len(scores) <= 30
    # thresholding the class score alone (mmdet) would keep more
    ours.thresh_with_ctr = False
    with torch.no_grad():
        mmdet_style = ours.predict_by_feat(
            *ours(feats), batch_img_metas=METAS, cfg=ConfigDict(
                cfg, max_per_img=1000))[0]
    assert (mmdet_style.scores**2 <= 0.3).any()
    torch.testing.assert_close(got.bboxes, boxes)
    torch.testing.assert_close(got.scores, scores)
    assert torch.equal(got.labels, labels)


def test_shared_convs_run_before_both_towers():
    """num_share_convs=2, stacked_convs=0 (AdelaiDet's 550 model layout):
    our outputs equal FCOSHead(stacked_convs=0) fed with the shared convs'
    output."""
    from mmembed.models.dense_heads import BlendMaskBoxHead
    torch.manual_seed(0)
    kw = dict(FCOS_KW, stacked_convs=0)
    ours = BlendMaskBoxHead(**kw, num_share_convs=2, **AS_FCOS)
    ours.init_weights()
    assert len(ours.share_convs) == 2 and not ours.cls_convs
    ref = FCOSHead(**kw)
    ref.load_state_dict(ours.state_dict(), strict=False)
    feats = [torch.rand(1, 8, IMG_H // s, IMG_W // s) for s in ours.strides]
    shared = []
    for feat in feats:
        for conv in ours.share_convs:
            feat = conv(feat)
        shared.append(feat)
    for got, want in zip(ours(feats)[:3], ref(shared)):
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w)
    with pytest.raises(ValueError, match='in_channels == feat_channels'):
        BlendMaskBoxHead(**dict(kw, feat_channels=16), num_share_convs=1)


def test_positive_infos_carry_the_box_loss_centerness_targets():
    """centerness target = sqrt(min(l, r) / max(l, r) * min(t, b) /
    max(t, b)) of the location to its assigned GT box (FCOS)."""
    ours, _, feats = build_blendmask_pair(center_sampling=True)
    ours.loss_by_feat(*ours(feats), GTS, METAS)
    info = ours.get_positive_infos()[0]
    box = GTS[0].bboxes[info.pos_assigned_gt_inds]
    x, y = info.points[:, 0], info.points[:, 1]
    left, top, right, bottom = x - box[:, 0], y - box[:, 1], box[:, 2] - x, \
        box[:, 3] - y
    want = torch.sqrt(
        torch.minimum(left, right) / torch.maximum(left, right) *
        torch.minimum(top, bottom) / torch.maximum(top, bottom))
    torch.testing.assert_close(info.centerness_targets, want)
    assert len(ours.get_positive_infos()[1].centerness_targets) == 0
