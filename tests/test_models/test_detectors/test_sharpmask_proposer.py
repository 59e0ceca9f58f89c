# Copyright (c) mmembed authors. All rights reserved.
"""DeepMask + SharpMask proposal model (configs/sharpmask/*_proposals.py):
the heads against direct formulas, the window geometry of inference, the
two training stages, and every proposal config building and running."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.structures import InstanceData

from mmembed.models.dense_heads import (DeepMaskHead,
                                        SharpMaskRefinementHead,
                                        crop_windows)
from mmembed.testing import get_config_root, get_detector_cfg

PROPOSAL_CONFIGS = sorted(
    osp.basename(p) for p in glob.glob(
        osp.join(get_config_root(), 'sharpmask', '*_proposals.py')))


def small_model(train_stage='sharpmask', refine=True, **test_cfg):
    """ResNet-18 trunk, the release's head sizes."""
    cfg = get_detector_cfg('sharpmask/sharpmask_r18_coco128_proposals.py')
    cfg.train_stage = train_stage
    if not refine:
        cfg.refine_head = None
    cfg.test_cfg.update(test_cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def patch_samples(num, label_size, kinds):
    samples = []
    rng = np.random.default_rng(0)
    for i in range(num):
        mask_sample = kinds[i % len(kinds)]
        sample = DetDataSample(metainfo=dict(
            img_shape=(192, 192), patch_has_mask=mask_sample,
            patch_label=1. if mask_sample or i % 2 else -1.))
        sample.gt_instances = InstanceData(masks=BitmapMasks(
            rng.random((1, label_size, label_size)) > 0.5, label_size,
            label_size))
        samples.append(sample)
    return samples


def test_proposal_configs_exist():
    assert PROPOSAL_CONFIGS == [
        'deepmask_r18_coco128_proposals.py',
        'deepmask_r50_coco_proposals.py',
        'sharpmask_r18_coco128_proposals.py',
        'sharpmask_r50_coco_proposals.py'
    ]


@pytest.mark.parametrize('fname', PROPOSAL_CONFIGS)
def test_proposal_configs_build_with_the_release_constants(fname):
    cfg = Config.fromfile(osp.join(get_config_root(), 'sharpmask', fname))
    model = cfg.model
    assert model.type == 'SharpMaskProposer'
    assert model.backbone.type == 'ResNetWithStem'
    assert model.backbone.out_indices == (0, 1, 2)
    assert model.test_cfg.mask_thr == 0.2
    assert model.test_cfg.scales == [2**(s / 2) for s in range(-5, 2)]
    sampler = [t for t in cfg.train_dataloader.dataset.pipeline
               if t.type == 'DeepMaskPatchSampler'][0]
    assert sampler.input_size == 160
    if fname.startswith('sharpmask'):
        assert model.train_stage == 'sharpmask'
        assert model.refine_head.mask_channels == 32
        assert model.refine_head.hidden_channels == (64, 64, 64, 32)
        assert sampler.hfreq == 0. and sampler.label_size == 160
        assert cfg.custom_hooks == [
            dict(type='FreezeExceptHook', trainable=['refine_head'])
        ]
        assert cfg.optim_wrapper.optimizer.type == 'SGD'
        assert cfg.optim_wrapper.optimizer.momentum == 0.
        assert cfg.optim_wrapper.optimizer.weight_decay == 0.
    else:
        assert model.train_stage == 'deepmask'
        assert model.refine_head is None
        assert sampler.hfreq == 0.5 and sampler.label_size == 112
    if 'r50' in fname:
        assert model.refine_head is None or \
            model.refine_head.skip_channels == (1024, 512, 256, 64)
        assert model.deepmask_head.in_channels == 1024
    MODELS.build(get_detector_cfg('sharpmask/' + fname))


R18_TWINS = {
    'deepmask_r18_coco128_proposals.py': 'deepmask_r50_coco_proposals.py',
    'sharpmask_r18_coco128_proposals.py': 'sharpmask_r50_coco_proposals.py',
}


def load_proposal_config(fname):
    return Config.fromfile(osp.join(get_config_root(), 'sharpmask', fname))


@pytest.mark.parametrize('fname', sorted(R18_TWINS))
def test_r18_config_is_its_r50_twin_on_resnet18_and_coco128(fname):
    """Each CPU config inherits its R-50 twin and changes only the trunk
    (ResNet-18 from scratch and the widths it implies), the data (coco128,
    train file for both) and the schedule; the stage's recipe (heads,
    pipelines, frozen parts, the refinement's optimizer) is the twin's."""
    cfg, twin = load_proposal_config(fname), load_proposal_config(
        R18_TWINS[fname])
    with open(osp.join(get_config_root(), 'sharpmask', fname)) as f:
        assert f"'./{R18_TWINS[fname]}'" in f.read()  # inherits, not restates
    model, twin_model = cfg.model.to_dict(), twin.model.to_dict()
    assert model.pop('backbone') == dict(
        twin_model.pop('backbone'), depth=18, init_cfg=None,
        norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False)
    assert model.pop('deepmask_head') == dict(
        twin_model.pop('deepmask_head'), in_channels=256)
    twin_refine = twin_model.pop('refine_head')
    assert model.pop('refine_head') == (
        None if twin_refine is None else dict(
            twin_refine, skip_channels=(256, 128, 64, 64)))
    assert model == twin_model
    root = '../shared/data/coco128/'
    ann = 'annotations/instances_train2017.json'
    assert cfg.data_root == root
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset, twin_dataset = cfg[key].dataset.to_dict(), twin[
            key].dataset.to_dict()
        assert dataset.pop('data_root') == root
        assert dataset.pop('ann_file') == ann
        assert dataset.pop('data_prefix') == dict(img='train2017/')
        for k in ('data_root', 'ann_file', 'data_prefix'):
            twin_dataset.pop(k)
        assert dataset == twin_dataset, key
    for key in ('val_evaluator', 'test_evaluator'):
        assert cfg[key].to_dict() == dict(twin[key].to_dict(),
                                          ann_file=root + ann)
    assert cfg.get('custom_hooks') == twin.get('custom_hooks')
    if fname.startswith('sharpmask'):
        assert cfg.optim_wrapper == twin.optim_wrapper
        assert cfg.load_from == \
            'work_dirs/deepmask_r18_coco128_proposals/iter_400.pth'
    # the R-50 twins evaluate on COCO val2017 (not on an mmengine
    # placeholder, as a base-variable concatenation once gave)
    assert twin.val_evaluator.ann_file == \
        'data/coco/annotations/instances_val2017.json'


def test_code_conv_is_the_release_linear_and_windows_slide():
    torch.manual_seed(0)
    head = DeepMaskHead(in_channels=8, reduce_channels=4, code_channels=6,
                        window_cells=3, mask_size=5, score_hidden=7).eval()
    top = torch.randn(1, 8, 5, 5)   # one window: 3 cells + the crop
    codes, scores = head(top)
    assert codes.shape == (1, 6, 1, 1) and scores.shape == (1, 1, 1, 1)
    reduced = F.relu(F.conv2d(top[..., 1:-1, 1:-1], head.reduce.weight,
                              head.reduce.bias))
    linear = head.code.weight.flatten(1) @ reduced.flatten() + \
        head.code.bias
    torch.testing.assert_close(codes.flatten(), linear)
    # on a bigger map every window is the head on its own 5x5 crop
    big = torch.randn(1, 8, 9, 7)
    codes, scores = head(big)
    assert codes.shape[-2:] == (5, 3)
    for i in range(5):
        for j in range(3):
            one_codes, one_score = head(big[..., i:i + 5, j:j + 5])
            torch.testing.assert_close(codes[..., i, j], one_codes[..., 0, 0])
            torch.testing.assert_close(scores[..., i, j], one_score[..., 0,
                                                                    0])
    with pytest.raises(ValueError, match='smaller than one window'):
        head(torch.randn(1, 8, 4, 9))


def test_refinement_equals_the_release_formula():
    torch.manual_seed(0)
    head = SharpMaskRefinementHead(
        skip_channels=(6, 5), hidden_channels=(4, 3), mask_channels=8,
        code_channels=10, window_cells=2)
    codes = torch.randn(3, 10)
    skips = [torch.randn(3, 6, 2, 2), torch.randn(3, 5, 4, 4)]
    got = head(codes, skips)
    assert got.shape == (3, 8, 8) and head.out_size == 8

    def conv(x, module, relu):
        conv = module.conv
        y = F.conv2d(F.pad(x, (1, 1, 1, 1), mode='replicate'), conv.weight,
                     conv.bias)
        return F.relu(y) if relu else y

    mask = (head.start.weight @ codes.t()).t() + head.start.bias
    mask = mask.view(3, 8, 2, 2)
    for ref, skip in zip(head.refinements, skips):
        h = conv(conv(conv(skip, ref.horizontal[0], True), ref.horizontal[1],
                      True), ref.horizontal[2], False)
        v = conv(conv(mask, ref.vertical[0], True), ref.vertical[1], False)
        mask = F.relu(h + v).repeat_interleave(2, -2).repeat_interleave(
            2, -1)
    want = conv(mask, head.final, False)[:, 0]
    torch.testing.assert_close(got, want)
    # inference form: horizontal nets run first, their crops passed in
    horizontal = [ref.horizontal(s) for ref, s in zip(head.refinements,
                                                      skips)]
    torch.testing.assert_close(
        head(codes, horizontal, skips_are_horizontal=True), got)
    with pytest.raises(ValueError, match='skip crops needed'):
        head(codes, skips[:1])


def test_crop_windows_reads_zeros_past_the_edge():
    maps = torch.randn(3, 7, 9)
    rows, cols = torch.tensor([0, 2, 5]), torch.tensor([0, 6, 3])
    got = crop_windows(maps, rows, cols, 4)
    padded = F.pad(maps, (0, 4, 0, 4))
    for n, (r, c) in enumerate(zip(rows.tolist(), cols.tolist())):
        torch.testing.assert_close(got[n], padded[:, r:r + 4, c:c + 4])


def test_deepmask_stage_trains_trunk_and_both_branches():
    model = small_model('deepmask')
    losses = model.loss(torch.randn(4, 3, 192, 192),
                        patch_samples(4, 112, [True, False]))
    assert set(losses) == {'loss_mask', 'loss_score'}
    sum(losses.values()).backward()
    assert model.backbone.conv1.weight.grad.abs().sum() > 0
    assert model.deepmask_head.mask_fc.weight.grad.abs().sum() > 0
    assert model.deepmask_head.score_branch[1].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.refine_head.parameters())


def test_sharpmask_stage_trains_only_the_refinement():
    model = small_model('sharpmask')
    losses = model.loss(torch.randn(2, 3, 192, 192),
                        patch_samples(2, 160, [True]))
    assert set(losses) == {'loss_refine'}
    losses['loss_refine'].backward()
    assert model.refine_head.final.conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is None for p in model.deepmask_head.parameters())
    with pytest.raises(ValueError, match='192 x 192 patches'):
        model.loss(torch.randn(2, 3, 256, 256), patch_samples(2, 160,
                                                              [True]))
    with pytest.raises(ValueError, match='label_size'):
        model.loss(torch.randn(2, 3, 192, 192), patch_samples(2, 112,
                                                              [True]))


def test_a_missing_patch_label_names_the_fix():
    model = small_model('deepmask')
    sample = DetDataSample(metainfo=dict(img_shape=(192, 192)))
    sample.gt_instances = InstanceData(
        masks=BitmapMasks(np.zeros((1, 112, 112)), 112, 112))
    with pytest.raises(KeyError, match='patch_label'):
        model.loss(torch.randn(1, 3, 192, 192), [sample])


def test_window_geometry_of_the_pasted_masks():
    """With one scale, every DeepMask mask all-foreground and the best
    window known, each proposal is its window's central 160 px square:
    x from 16 j - 64, in input pixels divided by the scale. (At the
    release's 0.2 threshold the bilinear paste of the 56 x 56 map bleeds
    one pixel past the box (weight 0.325), as mmdet's does, and at 0.5 it
    drops the box corners (0.675^2); 0.4 keeps the square exact.)"""
    model = small_model('deepmask', refine=False, scales=[1.0],
                        num_proposals=5, mask_thr=0.4)
    model.eval()
    head = model.deepmask_head
    torch.nn.init.zeros_(head.mask_fc.weight)
    torch.nn.init.constant_(head.mask_fc.bias, 10.)
    height, width = 400, 448
    sample = DetDataSample(metainfo=dict(img_shape=(height, width),
                                         ori_shape=(height, width)))
    with torch.no_grad():
        image = torch.randn(1, 3, height, width)
        result = model.predict(image, [sample])[0].pred_instances
        # the same windows, scored directly on the padded image
        fill = model._pad_value(image[0])
        padded = fill.expand(3, height + 160, width + 160).clone()
        padded[:, 80:-80, 80:-80] = image[0]
        _, scores = model._forward(padded[None])
    grid_w = scores.shape[-1]
    top = scores.flatten().topk(5)
    torch.testing.assert_close(result.scores, top.values.sigmoid())
    for n, index in enumerate(top.indices.tolist()):
        i, j = divmod(index, grid_w)
        want = torch.zeros(height, width, dtype=torch.bool)
        y0, x0 = 16 * i - 64, 16 * j - 64
        want[max(y0, 0):max(y0 + 160, 0), max(x0, 0):max(x0 + 160, 0)] = 1
        assert torch.equal(result.masks[n], want), n
    assert (result.labels == 0).all()
    assert result.masks.shape == (5, height, width)


def test_predict_rescales_to_the_original_image_and_sorts():
    model = small_model('sharpmask', scales=[0.5, 1.0], num_proposals=30)
    model.eval()
    sample = DetDataSample(metainfo=dict(
        img_shape=(200, 256), ori_shape=(400, 512),
        scale_factor=(0.5, 0.5)))
    with torch.no_grad():
        result = model.predict(torch.randn(1, 3, 200, 256),
                               [sample])[0].pred_instances
    assert result.masks.shape == (30, 400, 512)
    assert (result.scores[:-1] >= result.scores[1:]).all()
    nonempty = result.masks.flatten(1).any(1)
    boxes = result.bboxes[nonempty]
    assert (boxes[:, 2] > boxes[:, 0]).all()
    with pytest.raises(ValueError, match='no 672-pixel window'):
        model.test_cfg['scales'] = [0.01]
        model.test_cfg['pad_value'] = 0.5
        model.deepmask_head.window_cells = 40   # a window bigger than all
        model.predict(torch.randn(1, 3, 100, 100), [DetDataSample(
            metainfo=dict(img_shape=(100, 100)))])


def test_bad_train_stage_is_refused():
    cfg = get_detector_cfg('sharpmask/deepmask_r18_coco128_proposals.py')
    cfg.train_stage = 'sharpmask'
    with pytest.raises(ValueError, match='refine_head is None'):
        MODELS.build(cfg)
    cfg.train_stage = 'refine'
    with pytest.raises(ValueError, match='train_stage'):
        MODELS.build(cfg)


@pytest.mark.parametrize('key, value', [
    ('num_proposals', -1), ('num_proposals', 2.5), ('scales', []),
    ('scales', [0.5, -1.0]), ('mask_thr', 1.5), ('paste_impl', 'fast')])
def test_unusable_test_cfg_values_are_refused_naming_the_key(key, value):
    """Caught when the model is built, not deep inside topk or the paste
    at the first image (misspelt keys: tests/robustness/test_user_errors)."""
    cfg = get_detector_cfg('sharpmask/sharpmask_r18_coco128_proposals.py')
    cfg.test_cfg[key] = value
    with pytest.raises(ValueError, match=rf'test_cfg\.{key}'):
        MODELS.build(cfg)


def test_soft_margin_loss_averages_over_all_processes(monkeypatch):
    """Two processes that draw different numbers of mask samples: with the
    count averaged over processes (reduce_mean), the mean of their
    gradients (what DDP applies) equals the one-process gradient of the
    whole batch; dividing by each process's own count would not."""
    from mmembed.models.dense_heads import deepmask_head
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 4, generator=gen, requires_grad=True)
    targets = torch.randint(0, 2, (6, 4), generator=gen).float() * 2 - 1
    keep = torch.tensor([True, True, True, False, True, False])
    whole = deepmask_head.masked_soft_margin(logits, targets, keep)
    (want, ) = torch.autograd.grad(whole, logits)
    halves = (slice(0, 3), slice(3, 6))  # 3 kept vs 1 kept
    mean_count = keep.float().sum() / 2
    monkeypatch.setattr(deepmask_head, 'reduce_mean',
                        lambda count: mean_count.clone())
    got = torch.zeros_like(logits)
    for part in halves:
        loss = deepmask_head.masked_soft_margin(logits[part], targets[part],
                                                keep[part])
        got = got + torch.autograd.grad(loss, logits)[0] / 2
    torch.testing.assert_close(got, want)
    # the per-process mean it replaces weighs the lone sample 3x
    monkeypatch.setattr(deepmask_head, 'reduce_mean', lambda count: count)
    local = torch.zeros_like(logits)
    for part in halves:
        loss = deepmask_head.masked_soft_margin(logits[part], targets[part],
                                                keep[part])
        local = local + torch.autograd.grad(loss, logits)[0] / 2
    assert not torch.allclose(local, want)
    # no kept sample anywhere: zero loss, and a finite (zero) gradient
    # even under a large loss weight (a tiny divisor overflowed to NaN)
    none = deepmask_head.masked_soft_margin(logits, targets,
                                            torch.zeros(6, dtype=torch.bool))
    assert none.item() == 0.0
    (grad, ) = torch.autograd.grad(none * 32, logits)
    assert torch.equal(grad, torch.zeros_like(grad))
