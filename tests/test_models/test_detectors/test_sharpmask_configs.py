# Copyright (c) mmembed authors. All rights reserved.
"""Every config under configs/sharpmask builds, runs one loss step and one
predict on a tiny batch, differs from its FPN twin only in the neck and in
where the mask branch reads, and its mask branch reads the refined map."""
import glob
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.hub import get_config

from mmembed.models.necks import SharpMaskNeck
from mmembed.testing import get_config_root

# the neck configs; the DeepMask + SharpMask proposal model
# (*_proposals.py) has no FPN twin: test_sharpmask_proposer.py
CONFIGS = sorted(
    osp.basename(p)
    for p in glob.glob(osp.join(get_config_root(), 'sharpmask', '*.py'))
    if not p.endswith('_proposals.py'))
TWINS = {
    'embedmask_r50_sharpmask_1x_coco.py':
    'embedmask/embedmask_r50_fpn_1x_coco.py',
    'blendmask_r50_sharpmask_1x_coco.py':
    'blendmask/blendmask_r50_fpn_1x_coco.py',
    'embedmask_r18_sharpmask_fruits_nuts.py':
    'embedmask/embedmask_r18_fpn_fruits_nuts.py',
    'embedmask_r18_sharpmask_fruits_nuts_amp.py':
    'embedmask/embedmask_r18_fpn_fruits_nuts_amp.py',
    'mask-rcnn_r50_sharpmask_1x_coco.py':
    'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    'embedmask_lite0_sharpmask_1x_coco.py':
    'embedmask/embedmask_lite0_fpn_1x_coco.py',
    'embedmask_lite0_sharpmask_fruits_nuts_finetune.py':
    'embedmask/embedmask_lite0_fpn_fruits_nuts_finetune.py',
}


def load(fname):
    if fname.startswith('mmdet::'):
        return get_config(fname)  # from mmdet's installed .mim configs
    return Config.fromfile(osp.join(get_config_root(), fname))


def plain(obj):
    """Config values without the ``_scope_`` keys that ``get_config`` adds
    to mmdet's configs."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items() if k != '_scope_'}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


def test_every_config_has_a_twin():
    assert set(CONFIGS) == set(TWINS)


@pytest.mark.parametrize('fname', CONFIGS)
def test_only_neck_and_mask_input_differ_from_fpn_twin(fname):
    cfg, twin = load('sharpmask/' + fname), load(TWINS[fname])
    assert cfg.model.neck.type == 'SharpMaskNeck'
    assert twin.model.neck.type == 'FPN'
    for key in ('in_channels', 'out_channels', 'start_level', 'num_outs',
                'relu_before_extra_convs'):
        assert cfg.model.neck.get(key, False) == twin.model.neck.get(
            key, False if key != 'start_level' else 0), key
    assert cfg.model.neck.get('add_extra_convs', False) == \
        twin.model.neck.get('add_extra_convs', False)
    for key in ('train_cfg', 'param_scheduler', 'optim_wrapper',
                'train_dataloader'):
        ours, theirs = plain(cfg.get(key)), plain(twin.get(key))
        if key == 'train_dataloader' and theirs['dataset']['type'] == \
                'CocoDataset':
            # mmdet's own twin reads plain CocoDataset; ours reads the same
            # data through mmembed's CheckedCocoDataset
            assert ours['dataset'].pop('type') == 'CheckedCocoDataset'
            theirs['dataset'].pop('type')
        assert ours == theirs, key
    model, twin_model = plain(cfg.model), plain(twin.model)
    for key in ('neck', 'mask_head'):
        model.pop(key, None)
        twin_model.pop(key, None)
    assert model == twin_model
    if 'mask_head' in cfg.model:
        mask, twin_mask = plain(cfg.model.mask_head), plain(
            twin.model.mask_head)
        for key in ('in_level', 'in_levels', 'in_stride', 'upsample_factor',
                    'basis_upsample'):
            mask.pop(key, None)
            twin_mask.pop(key, None)
        assert mask == twin_mask


@pytest.mark.parametrize('fname', CONFIGS)
def test_config_builds_trains_and_predicts(fname):
    cfg = load('sharpmask/' + fname)
    assert cfg.custom_imports == dict(
        imports=['mmembed'], allow_failed_imports=False)
    assert cfg.default_scope == 'mmdet'
    model_cfg = cfg.model
    model_cfg.backbone.init_cfg = None  # no model hub here
    two_stage = 'roi_head' in model_cfg
    if two_stage:
        model_cfg.test_cfg.rcnn.score_thr = 0.0
    else:
        model_cfg.test_cfg.score_thr = 0.0  # random weights score ~ 0.01
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    assert isinstance(model.neck, SharpMaskNeck)
    if hasattr(getattr(model, 'mask_head', None), 'basis_stride'):
        # BlendMask's bases read the stride-4 map instead of P3 x2
        assert model.mask_head.basis_stride == 4
    num_classes = (model.roi_head.bbox_head.num_classes
                   if two_stage else model.bbox_head.num_classes)
    packed = demo_mm_inputs(
        2, [[3, 96, 128], [3, 80, 100]], num_items=[2, 1],
        num_classes=num_classes, with_mask=True)
    data = model.data_preprocessor(packed, True)
    feats = model.extract_feat(data['inputs'])
    if not two_stage:
        # the mask branch reads the appended refined map at stride 4
        assert len(feats) == cfg.model.neck.num_outs + 1
        assert feats[-1].shape[-2:] == (96 // 4, 128 // 4)
    else:
        assert len(feats) == cfg.model.neck.num_outs
        assert feats[0].shape[-2:] == (96 // 4, 128 // 4)
    losses = model(**data, mode='loss')
    # parse_losses: the RPN's losses are lists, one item per level
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total), losses
    total.backward()
    for name, param in model.neck.named_parameters():
        assert param.grad is not None, name
    model.eval()
    with torch.no_grad():
        samples = model(**model.data_preprocessor(packed, False),
                        mode='predict')
    for sample in samples:
        pred = sample.pred_instances
        assert pred.masks.shape[1:] == tuple(sample.ori_shape)
        assert pred.masks.dtype == torch.bool
        assert len(pred.bboxes) == len(pred.masks) > 0
