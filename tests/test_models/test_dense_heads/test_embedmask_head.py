# Copyright (c) mmembed authors. All rights reserved.
import math

import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.structures.mask import BitmapMasks
from mmdet.testing import demo_mm_inputs
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mmembed.models.dense_heads import EmbedMaskHead
from mmembed.models.losses import LovaszHingeLoss
from mmembed.testing import tiny_embedmask_cfg

PAPER = 'embedmask/embedmask_r50_fpn_1x_coco.py'
V3 = 'embedmask/embedmask_r50_fpn_v3_1x_coco.py'
ANY_DET = dict(score_thr=0.0, nms_pre=200, max_per_img=20)


def build(fname, **test_cfg):
    torch.manual_seed(0)
    model = MODELS.build(tiny_embedmask_cfg(fname, test_cfg=test_cfg))
    model.init_weights()
    return model


def batch(model, shapes=((3, 125, 130), (3, 96, 112)), num_items=(3, 2),
          with_mask=True, training=True):
    packed = demo_mm_inputs(
        len(shapes), [list(s) for s in shapes], num_items=list(num_items),
        num_classes=3, with_mask=with_mask)
    return model.data_preprocessor(packed, training)


@pytest.mark.parametrize('fname,dim,margins', [(PAPER, 32, 1), (V3, 16, 16)])
def test_forward_shapes_and_dtypes(fname, dim, margins):
    model = build(fname)
    data = batch(model)
    bbox_outs, (pixel_embeds, ) = model(data['inputs'], mode='tensor')
    cls_scores, bbox_preds, centernesses, codes = bbox_outs
    pad_h, pad_w = data['inputs'].shape[-2:]  # 128 x 160 after padding
    assert pixel_embeds.shape == (2, dim, pad_h // 4, pad_w // 4)
    for cls, box, ctr, code, stride in zip(cls_scores, bbox_preds,
                                           centernesses, codes,
                                           model.bbox_head.strides):
        size = (math.ceil(pad_h / stride), math.ceil(pad_w / stride))
        assert cls.shape == (2, 3, *size) and box.shape == (2, 4, *size)
        assert ctr.shape == (2, 1, *size)
        assert code.shape == (2, dim + margins, *size)
        assert code.dtype == torch.float32
        assert (code[:, dim:] > 0).all()  # margins are exp-activated


def test_initial_margin_gives_half_probability_at_prior_distance():
    model = build(V3)
    _, codes = model.bbox_head(model.extract_feat(batch(model)['inputs']))[2:]
    margins = codes[0][:, 16:]
    # bias log(ln2 / 2^2), weights ~ N(0, 0.01): margin ~ 0.1733
    assert torch.allclose(margins.mean(), torch.tensor(math.log(2) / 4),
                          atol=0.01)


@pytest.mark.parametrize('fname', [PAPER, V3])
def test_loss_is_finite_and_every_parameter_gets_a_gradient(fname):
    model = build(fname)
    losses = model(**batch(model), mode='loss')
    expected = {'loss_cls', 'loss_bbox', 'loss_centerness', 'loss_mask'}
    if fname == PAPER:
        expected.add('loss_smooth')
    assert set(losses) == expected
    total = sum(losses.values())
    assert torch.isfinite(total)
    assert losses['loss_mask'] > 0
    total.backward()
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None, name
            assert torch.isfinite(param.grad).all(), name


def test_loss_without_masks_is_a_clear_error():
    model = build(PAPER)
    with pytest.raises(ValueError, match='with_mask=True'):
        model(**batch(model, with_mask=False), mode='loss')


@pytest.mark.parametrize('fname', [PAPER, V3])
def test_empty_gt_batch_gives_finite_losses_and_a_graph(fname):
    model = build(fname)
    losses = model(**batch(model, num_items=(0, 0)), mode='loss')
    assert losses['loss_mask'].item() == 0
    assert losses['loss_bbox'].item() == 0
    assert losses['loss_cls'] > 0
    total = sum(losses.values())
    total.backward()
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None, name


def test_gt_without_positive_location_is_skipped():
    """A 2 x 2 px object: no FCOS location falls inside its mask, so it has
    no sample; the mask loss stays finite and counts it (paper: all GTs)."""
    model = build(PAPER)
    data = batch(model, num_items=(1, 1))
    for sample in data['data_samples']:
        gt = sample.gt_instances
        gt.bboxes = torch.tensor([[40., 40., 42., 42.]])
        masks = torch.zeros(1, *sample.batch_input_shape, dtype=torch.uint8)
        masks[0, 40:42, 40:42] = 1
        gt.masks = BitmapMasks(masks.numpy(), *sample.batch_input_shape)
    losses = model(**data, mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses['loss_mask'].item() == 0


def test_mask_loss_uses_mean_code_of_iou_samples():
    """Hand-built positives of one GT: IoUs 1.0, 0.64 and 0.25. Paper mode
    averages the first two codes; v3 mode takes the first only."""
    torch.manual_seed(0)
    embeds = torch.randn(1, 4, 8, 8)
    gt = InstanceData(
        bboxes=torch.tensor([[0., 0., 16., 16.]]),
        labels=torch.tensor([0]))
    mask = torch.zeros(1, 32, 32, dtype=torch.uint8)
    mask[0, :16, :16] = 1
    gt.masks = BitmapMasks(mask.numpy(), 32, 32)
    codes = torch.tensor([[1., 0., 0., 0., .5], [0., 1., 0., 0., .3],
                          [5., 5., 5., 5., 2.]])
    info = InstanceData(
        codes=codes,
        points=torch.zeros(3, 2),
        bboxes=torch.tensor([[0., 0., 16., 16.], [0., 0., 12.8, 16.],
                             [0., 0., 8., 8.]]),
        pos_assigned_gt_inds=torch.tensor([0, 0, 0]))
    meta = [dict(batch_input_shape=(32, 32))]
    lovasz = LovaszHingeLoss(input_type='probs', reduction='none')
    target = F.interpolate(mask[None].float(), size=(8, 8),
                           mode='bilinear')[0] > 0

    def expected(code):
        dist = ((embeds[0] - code[:4, None, None])**2).sum(0) * code[4]
        return 0.5 * lovasz(torch.exp(-dist)[None], target)[0]

    head = EmbedMaskHead(embed_dim=4, margin_dims=1, in_channels=4,
                         feat_channels=4, stacked_convs=0, norm_cfg=None,
                         loss_region='image', proposal_sampling='iou_mean')
    got = head.loss_by_feat(embeds, [gt], meta, [info])
    torch.testing.assert_close(got['loss_mask'], expected(codes[:2].mean(0)))
    # smooth loss: squared deviations of the two samples from their mean
    dev = ((codes[:2] - codes[:2].mean(0))**2).sum()
    torch.testing.assert_close(got['loss_smooth'], 0.1 * dev)
    head = EmbedMaskHead(embed_dim=4, margin_dims=1, in_channels=4,
                         feat_channels=4, stacked_convs=0, norm_cfg=None,
                         loss_region='image', proposal_sampling='best_iou',
                         loss_smooth=None)
    got = head.loss_by_feat(embeds, [gt], meta, [info])
    torch.testing.assert_close(got['loss_mask'], expected(codes[0]))
    assert 'loss_mask_aux' not in got
    # mmembed's optional second mask loss sees the same probabilities,
    # targets and weights (1 / number of GTs, one image)
    head = EmbedMaskHead(embed_dim=4, margin_dims=1, in_channels=4,
                         feat_channels=4, stacked_convs=0, norm_cfg=None,
                         loss_region='image', proposal_sampling='best_iou',
                         loss_smooth=None,
                         loss_mask_aux=dict(type='RegionDiceLoss',
                                            loss_weight=2.0))
    got = head.loss_by_feat(embeds, [gt], meta, [info])
    probs = torch.exp(-((embeds[0] - codes[0, :4, None, None])**2).sum(0) *
                      codes[0, 4])[None]
    from mmembed.models.losses import RegionDiceLoss
    torch.testing.assert_close(
        got['loss_mask_aux'],
        RegionDiceLoss(loss_weight=2.0)(probs, target, avg_factor=1))
    torch.testing.assert_close(got['loss_mask'], expected(codes[0]))


def test_sample_reduction_none_gives_every_sample_its_own_mask_loss():
    """Two GTs: the first with samples of IoU 1.0 and 0.64 (both kept by
    'iou_mean'), the second with one. 'none' scores each sample's own code,
    a GT's samples sharing its weight (1 / 2 GTs); 'mean' scores the mean
    code of the first GT."""
    torch.manual_seed(0)
    embeds = torch.randn(1, 4, 8, 8)
    gt = InstanceData(
        bboxes=torch.tensor([[0., 0., 16., 16.], [16., 16., 32., 32.]]),
        labels=torch.tensor([0, 1]))
    mask = torch.zeros(2, 32, 32, dtype=torch.uint8)
    mask[0, :16, :16] = 1
    mask[1, 16:, 20:] = 1
    gt.masks = BitmapMasks(mask.numpy(), 32, 32)
    codes = torch.tensor([[1., 0., 0., 0., .5], [0., 1., 0., 0., .3],
                          [0., 0., 2., 0., .7]])
    info = InstanceData(
        codes=codes,
        points=torch.zeros(3, 2),
        bboxes=torch.tensor([[0., 0., 16., 16.], [0., 0., 12.8, 16.],
                             [16., 16., 32., 32.]]),
        pos_assigned_gt_inds=torch.tensor([0, 0, 1]))
    meta = [dict(batch_input_shape=(32, 32))]
    lovasz = LovaszHingeLoss(input_type='probs', reduction='none')
    targets = F.interpolate(mask[None].float(), size=(8, 8),
                            mode='bilinear')[0] > 0

    def loss(code, target):
        dist = ((embeds[0] - code[:4, None, None])**2).sum(0) * code[4]
        return 0.5 * lovasz(torch.exp(-dist)[None], target[None])[0]

    kwargs = dict(embed_dim=4, margin_dims=1, in_channels=4, feat_channels=4,
                  stacked_convs=0, norm_cfg=None, loss_region='image',
                  proposal_sampling='iou_mean')
    head = EmbedMaskHead(sample_reduction='none', **kwargs)
    got = head.loss_by_feat(embeds, [gt], meta, [info])
    want = (0.5 * (loss(codes[0], targets[0]) + loss(codes[1], targets[0])) +
            loss(codes[2], targets[1])) / 2
    torch.testing.assert_close(got['loss_mask'], want)
    # the smooth loss does not depend on the reduction
    dev = ((codes[:2] - codes[:2].mean(0))**2).sum() / 2
    torch.testing.assert_close(got['loss_smooth'], 0.1 * dev)
    mean = EmbedMaskHead(sample_reduction='mean', **kwargs).loss_by_feat(
        embeds, [gt], meta, [info])
    torch.testing.assert_close(
        mean['loss_mask'],
        (loss(codes[:2].mean(0), targets[0]) + loss(codes[2], targets[1])) /
        2)
    assert not torch.allclose(mean['loss_mask'], got['loss_mask'])
    # 'box' region: each sample row is supervised on its own GT's region
    box = EmbedMaskHead(sample_reduction='none', **{
        **kwargs, 'loss_region': 'box'
    }).loss_by_feat(embeds, [gt], meta, [info])
    assert torch.isfinite(box['loss_mask'])
    assert not torch.allclose(box['loss_mask'], got['loss_mask'])


def test_pixel_levels_sum_coarser_levels_into_the_pixel_branch():
    torch.manual_seed(0)
    kwargs = dict(embed_dim=4, margin_dims=1, in_channels=6, feat_channels=5,
                  stacked_convs=1, norm_cfg=None)
    single = EmbedMaskHead(**kwargs)
    assert single.level_convs is None  # the paper's parameters exactly
    head = EmbedMaskHead(pixel_levels=3, **kwargs)
    assert len(head.level_convs) == 3
    assert head.mask_convs[0].conv.in_channels == 5
    feats = (torch.randn(2, 6, 16, 20), torch.randn(2, 6, 8, 10),
             torch.randn(2, 6, 4, 5), torch.randn(2, 6, 2, 3))
    out, = head(feats)
    assert out.shape == (2, 4, 32, 40)
    # P4 and P5 reach the output; P6 (beyond the 3 levels) does not
    for level, reaches in ((1, True), (2, True), (3, False)):
        changed = list(feats)
        changed[level] = changed[level] + 1
        moved = not torch.allclose(head(tuple(changed))[0], out)
        assert moved == reaches, level
    with pytest.raises(ValueError, match='pixel_levels 3 from in_level 0 '
                       'needs 3 FPN levels, the neck gives 2'):
        head(feats[:2])
    with pytest.raises(ValueError, match='pixel_levels must be an int >= 1'):
        EmbedMaskHead(pixel_levels=0, **kwargs)
    with pytest.raises(ValueError, match='sample_reduction must be one of'):
        EmbedMaskHead(sample_reduction='sum', **kwargs)


@pytest.mark.parametrize('rescale', [True, False])
def test_predict_contract(rescale):
    model = build(V3, **ANY_DET).eval()
    data = batch(model, training=False)
    with torch.no_grad():
        x = model.extract_feat(data['inputs'])
        results = model.bbox_head.predict(x, data['data_samples'])
        results = model.mask_head.predict(
            x, data['data_samples'], rescale=rescale, results_list=results)
    for res, sample in zip(results, data['data_samples']):
        size = sample.ori_shape if rescale else sample.img_shape
        assert len(res) == 20
        assert res.masks.dtype == torch.bool
        assert res.masks.shape == (20, *size)
        assert res.bboxes.shape == (20, 4) and res.scores.shape == (20, )
        assert set(res.keys()) == {'bboxes', 'scores', 'labels', 'masks'}


def test_zero_detections_return_empty_results():
    model = build(PAPER, score_thr=1.0).eval()
    data = batch(model, training=False)
    with torch.no_grad():
        samples = model(**data, mode='predict')
    for sample in samples:
        pred = sample.pred_instances
        assert pred.masks.shape == (0, *sample.ori_shape)
        assert pred.masks.dtype == torch.bool
        assert pred.bboxes.shape == (0, 4) and pred.labels.shape == (0, )


def test_predicted_masks_equal_the_official_dense_computation():
    """v3 inference: log-prob inside box + 2 cells, -10 elsewhere, bilinear
    upsampling of the log-prob map to the original size, > log(0.53)."""
    model = build(V3, **ANY_DET).eval()
    data = batch(model, shapes=((3, 100, 124), ), num_items=(2, ),
                 training=False)
    sample = data['data_samples'][0]
    sample.set_metainfo(dict(ori_shape=(150, 186), scale_factor=(1.5, 1.5)))
    with torch.no_grad():
        x = model.extract_feat(data['inputs'])
        dets = model.bbox_head.predict(x, data['data_samples'])
        (pixel_embeds, ) = model.mask_head(x)
        got = model.mask_head.predict_by_feat(
            pixel_embeds, [d.clone() for d in dets], [sample.metainfo])[0]
    head, det = model.mask_head, dets[0]
    map_h, map_w = pixel_embeds.shape[-2:]
    embeds, margins = head.split_codes(det.codes, det.points)
    dense = -((pixel_embeds[0][None] - embeds[:, :, None, None])**2 *
              margins[:, :, None, None]).sum(1)  # (N, h, w)
    for i, (x1, y1, x2, y2) in enumerate(det.bboxes.tolist()):
        keep = torch.zeros(map_h, map_w, dtype=torch.bool)
        keep[max(int(y1 // 4) - 2, 0):int(y2 // 4) + 3,
             max(int(x1 // 4) - 2, 0):int(x2 // 4) + 3] = True
        dense[i][~keep] = -10.
    up = (math.ceil(map_h * 4 * 150 / 100), math.ceil(map_w * 4 * 186 / 124))
    want = F.interpolate(dense[:, None], size=up, mode='bilinear',
                         align_corners=False)[:, 0, :150, :186] > math.log(
                             0.53)
    assert got.masks.shape == want.shape
    mismatch = (got.masks != want).float().mean()
    assert mismatch < 1e-4  # float rounding exactly at the threshold
    assert want.any()


@pytest.mark.parametrize('impl', ['ragged', 'dense'])
def test_logit_interp_upsamples_logits_and_thresholds_at_the_logit(impl):
    """mmembed's ``mask_interp='logit'``: the same computation as the
    official one above on ``log p - log(1 - p)``, thresholded at
    ``logit(mask_thr)``; it grows masks where the log-prob one shrinks
    them (borders between a saturated inside and a steep outside)."""
    model = build(V3, **ANY_DET).eval()
    data = batch(model, shapes=((3, 100, 124), ), num_items=(2, ),
                 training=False)
    sample = data['data_samples'][0]
    with torch.no_grad():
        x = model.extract_feat(data['inputs'])
        dets = model.bbox_head.predict(x, data['data_samples'])
        (pixel_embeds, ) = model.mask_head(x)
        # scale the embeddings so that maps span saturated and far pixels
        pixel_embeds = pixel_embeds * 3
        head = model.mask_head
        masks = {}
        for interp in ('logprob', 'logit'):
            head.test_cfg.update(mask_interp=interp, mask_impl=impl)
            masks[interp] = head.predict_by_feat(
                pixel_embeds, [d.clone() for d in dets],
                [sample.metainfo])[0].masks
    det = dets[0]
    map_h, map_w = pixel_embeds.shape[-2:]
    embeds, margins = head.split_codes(det.codes, det.points)
    logprob = -((pixel_embeds[0][None] - embeds[:, :, None, None])**2 *
                margins[:, :, None, None]).sum(1)
    logit = logprob.clamp(max=-1e-6)
    logit = logit - torch.log(-torch.expm1(logit))
    for i, (x1, y1, x2, y2) in enumerate(det.bboxes.tolist()):
        keep = torch.zeros(map_h, map_w, dtype=torch.bool)
        keep[max(int(y1 // 4) - 2, 0):int(y2 // 4) + 3,
             max(int(x1 // 4) - 2, 0):int(x2 // 4) + 3] = True
        logit[i][~keep] = -10.
    want = F.interpolate(logit[:, None], size=(map_h * 4, map_w * 4),
                         mode='bilinear', align_corners=False)[:, 0, :100, :124]
    want = want > math.log(0.53) - math.log(0.47)
    assert want.any()
    assert (masks['logit'] != want).float().mean() < 1e-4
    # the log-prob paste keeps fewer border pixels, never more
    assert masks['logit'].sum() > masks['logprob'].sum()
    assert (masks['logprob'] & ~masks['logit']).float().mean() < 1e-4
    head.test_cfg.update(mask_interp='sigmoid')
    with pytest.raises(ValueError, match='mask_interp must be one of'):
        head.predict_by_feat(pixel_embeds, [d.clone() for d in dets],
                             [sample.metainfo])


class _TensorMode(torch.nn.Module):
    """forward(mode='tensor') with flat outputs, as an exporter sees it."""

    def __init__(self, detector):
        super().__init__()
        self.detector = detector

    def forward(self, img):
        bbox_outs, mask_outs = self.detector(img, mode='tensor')
        return tuple(t for level in bbox_outs for t in level) + mask_outs


def test_tensor_mode_traces():
    wrapper = _TensorMode(build(V3).eval())
    inputs = batch(wrapper.detector, training=False)['inputs']
    with torch.no_grad():
        traced = torch.jit.trace(wrapper, inputs, check_trace=False)
        # the traced graph must reproduce eager outputs on the same shape
        for a, b in zip(traced(inputs), wrapper(inputs)):
            torch.testing.assert_close(a, b)


def test_config_and_input_errors():
    with pytest.raises(ValueError, match='margin_dims'):
        EmbedMaskHead(embed_dim=8, margin_dims=3)
    with pytest.raises(ValueError, match='proposal_sampling'):
        EmbedMaskHead(proposal_sampling='mean')
    with pytest.raises(ValueError, match='loss_region'):
        EmbedMaskHead(loss_region='crop')
    head = EmbedMaskHead(embed_dim=8, margin_dims=1)
    with pytest.raises(ValueError, match='embed_dim 8 \\+ margin_dims 1'):
        head.split_codes(torch.zeros(2, 17), torch.zeros(2, 2))
    head.test_cfg = ConfigDict(mask_thr=0.5)
    with pytest.raises(KeyError, match='mask_box_expand'):
        head.predict_by_feat(torch.zeros(1, 8, 4, 4), [InstanceData()],
                             [dict()])
    head.test_cfg = ConfigDict(mask_thr=1e-6, mask_box_expand=0)
    with pytest.raises(ValueError, match='mask_thr'):
        head.predict_by_feat(torch.zeros(1, 8, 4, 4), [InstanceData()],
                             [dict()])


def test_mask_clean_cleans_the_predicted_masks():
    """test_cfg.mask_clean: the masks of predict_by_feat go through
    clean_instance_masks; a non-bool value is refused by name."""
    from mmembed.models.utils import clean_instance_masks
    torch.manual_seed(0)
    model = build(V3, **ANY_DET).eval()
    data = batch(model, shapes=((3, 100, 124), ), num_items=(2, ),
                 training=False)
    sample = data['data_samples'][0]
    with torch.no_grad():
        x = model.extract_feat(data['inputs'])
        dets = model.bbox_head.predict(x, data['data_samples'])
        (pixel_embeds, ) = model.mask_head(x)
        head = model.mask_head
        masks = {}
        for clean in (False, True):
            head.test_cfg.update(mask_clean=clean)
            masks[clean] = head.predict_by_feat(
                pixel_embeds, [d.clone() for d in dets],
                [sample.metainfo])[0].masks
        assert torch.equal(masks[True], clean_instance_masks(masks[False]))
        head.test_cfg.update(mask_clean=1)
        with pytest.raises(ValueError, match='mask_clean'):
            head.predict_by_feat(pixel_embeds, [d.clone() for d in dets],
                                 [sample.metainfo])
