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
    if not p.endswith('_proposals.py') and '_sharpmask_fpn' not in p)
def shrink_two_stage(model_cfg) -> None:
    """Fewer proposals, sampled RoIs and detections for a two-stage
    config's unit test (its R-50 box head is a 12544 x 1024 FC per RoI):
    the path through every part is the same, at a tenth of the time."""
    model_cfg.test_cfg.rcnn.score_thr = 0.0
    model_cfg.test_cfg.rcnn.max_per_img = 10
    model_cfg.test_cfg.rpn.update(nms_pre=100, max_per_img=50)
    model_cfg.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=100)
    model_cfg.train_cfg.rcnn.sampler.num = 64


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
        shrink_two_stage(model_cfg)
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


# SharpMaskFPN (FPN for the boxes + the mask-only refinement path) configs
# and their FPN twins
FPN_PATH_CONFIGS = sorted(
    osp.basename(p)
    for p in glob.glob(osp.join(get_config_root(), 'sharpmask', '*.py'))
    if '_sharpmask_fpn' in osp.basename(p))
FPN_PATH_TWINS = {
    'embedmask_lite0_sharpmask_fpn_fruits_nuts_finetune.py':
    'embedmask/embedmask_lite0_fpn_fruits_nuts_finetune.py',
    'embedmask_lite0_sharpmask_fpn_detach_fruits_nuts_finetune.py':
    'embedmask/embedmask_lite0_fpn_fruits_nuts_finetune.py',
    'embedmask_lite0_sharpmask_fpn_stage2_fruits_nuts_finetune.py':
    'embedmask/embedmask_lite0_fpn_fruits_nuts_finetune.py',
    'blendmask_lite0_sharpmask_fpn_fruits_nuts_finetune.py':
    'blendmask/blendmask_lite0_fpn_fruits_nuts_finetune.py',
    'blendmask_lite0_sharpmask_fpn_with_fpn_bases_fruits_nuts_finetune.py':
    'blendmask/blendmask_lite0_fpn_fruits_nuts_finetune.py',
    'blendmask_lite0_sharpmask_fpn_stride4_fruits_nuts_finetune.py':
    'blendmask/blendmask_lite0_fpn_fruits_nuts_finetune.py',
    'mask-rcnn_lite0_sharpmask_fpn_fruits_nuts_finetune.py':
    'mask_rcnn/mask-rcnn_lite0_fpn_fruits_nuts_finetune.py',
    'embedmask_r18_sharpmask_fpn_fruits_nuts.py':
    'embedmask/embedmask_r18_fpn_fruits_nuts.py',
    'embedmask_r18_sharpmask_fpn_fruits_nuts_amp.py':
    'embedmask/embedmask_r18_fpn_fruits_nuts_amp.py',
    'blendmask_r18_sharpmask_fpn_fruits_nuts.py':
    'blendmask/blendmask_r18_fpn_fruits_nuts.py',
    'mask-rcnn_r18_sharpmask_fpn_fruits_nuts.py':
    'mask_rcnn/mask-rcnn_r18_fpn_fruits_nuts.py',
    'embedmask_r50_sharpmask_fpn_1x_coco.py':
    'embedmask/embedmask_r50_fpn_1x_coco.py',
    'blendmask_r50_sharpmask_fpn_1x_coco.py':
    'blendmask/blendmask_r50_fpn_1x_coco.py',
    'mask-rcnn_r50_sharpmask_fpn_1x_coco.py':
    'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
}
# what a SharpMaskFPN twin may change: the backbone gives C1, the neck adds
# the path, the mask branch reads the appended map (and, at R-50 size, is
# narrowed to it); the RPN reads only its anchor levels
PATH_KEYS = ('stem_channels', 'mask_start_level', 'mask_channels',
             'mask_hidden_channels', 'mask_out_channels', 'detach_fpn')
MASK_READ_KEYS = ('in_level', 'in_levels', 'in_stride', 'upsample_factor',
                  'basis_upsample', 'in_channels', 'feat_channels',
                  'stacked_convs')


def test_every_sharpmask_fpn_config_has_a_twin():
    assert set(FPN_PATH_CONFIGS) == set(FPN_PATH_TWINS)


@pytest.mark.parametrize('fname', FPN_PATH_CONFIGS)
def test_detection_is_the_fpn_twins(fname):
    """Backbone weights, FPN keys, box / class heads, RoI box path, data,
    schedule: all the twin's; only C1, the path and where (and how wide)
    the mask branch reads differ."""
    cfg, twin = load('sharpmask/' + fname), load(FPN_PATH_TWINS[fname])
    model, twin_model = plain(cfg.model), plain(twin.model)
    neck, twin_neck = model.pop('neck'), twin_model.pop('neck')
    assert neck.pop('type') == 'SharpMaskFPN' and twin_neck.pop('type') == \
        'FPN'
    with_c1 = bool(neck.get('stem_channels'))
    for key in PATH_KEYS:
        neck.pop(key, None)
    assert neck == twin_neck  # FPN's arguments, so FPN's modules and keys
    backbone, twin_backbone = model.pop('backbone'), twin_model.pop(
        'backbone')
    if backbone['type'] == 'ResNetWithStem':
        assert with_c1 and twin_backbone.pop('type') == 'ResNet'
        backbone.pop('type')
    else:
        # C1 comes first exactly when the path merges it (stride 2); a path
        # that stops at stride 4 reads the twin's backbone as it is
        assert backbone.pop('stem_out', False) is with_c1
    assert backbone == twin_backbone
    if 'roi_head' in model:
        assert model['rpn_head'].pop('type') == 'FPNLevelsRPNHead'
        assert twin_model['rpn_head'].pop('type') == 'RPNHead'
        extractor = model['roi_head'].pop('mask_roi_extractor')
        twin_model['roi_head'].pop('mask_roi_extractor')
        assert extractor['type'] == 'MaskMapRoIExtractor'
        assert extractor['in_levels'] == [-1]
        mask = model['roi_head'].pop('mask_head')
        twin_mask = twin_model['roi_head'].pop('mask_head')
    else:
        mask, twin_mask = model.pop('mask_head'), twin_model.pop('mask_head')
    for key in MASK_READ_KEYS:
        mask.pop(key, None)
        twin_mask.pop(key, None)
    assert mask == twin_mask
    assert model == twin_model
    for key in ('train_cfg', 'param_scheduler', 'optim_wrapper',
                'train_dataloader', 'val_evaluator'):
        ours, theirs = plain(cfg.get(key)), plain(twin.get(key))
        if key == 'train_dataloader' and theirs['dataset']['type'] == \
                'CocoDataset':
            assert ours['dataset'].pop('type') == 'CheckedCocoDataset'
            theirs['dataset'].pop('type')
        if key == 'val_evaluator' and theirs['type'] == 'CocoMetric':
            assert ours.pop('type') == 'CheckedCocoMetric'
            theirs.pop('type')
        assert ours == theirs, key


@pytest.mark.parametrize('fname', FPN_PATH_CONFIGS)
def test_sharpmask_fpn_config_builds_trains_and_predicts(fname):
    from mmembed.models import SharpMaskFPN
    cfg = load('sharpmask/' + fname)
    assert cfg.custom_imports == dict(
        imports=['mmembed'], allow_failed_imports=False)
    model_cfg = cfg.model
    model_cfg.backbone.init_cfg = None  # no model hub here
    two_stage = 'roi_head' in model_cfg
    if two_stage:
        shrink_two_stage(model_cfg)
    else:
        model_cfg.test_cfg.score_thr = 0.0
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    assert isinstance(model.neck, SharpMaskFPN)
    stride = model.neck.mask_stride  # 2 with C1, 4 without
    assert stride == (2 if cfg.model.neck.get('stem_channels') else 4)
    if hasattr(getattr(model, 'mask_head', None), 'basis_stride'):
        assert model.mask_head.basis_stride == stride  # bases on the map
    num_classes = (model.roi_head.bbox_head.num_classes
                   if two_stage else model.bbox_head.num_classes)
    packed = demo_mm_inputs(
        2, [[3, 96, 128], [3, 80, 100]], num_items=[2, 1],
        num_classes=num_classes, with_mask=True)
    data = model.data_preprocessor(packed, True)
    feats = model.extract_feat(data['inputs'])
    # FPN's levels, then the mask map
    assert len(feats) == cfg.model.neck.num_outs + 1
    assert feats[-1].shape[-2:] == (96 // stride, 128 // stride)
    losses = model(**data, mode='loss')
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total), losses
    total.backward()
    detach = cfg.model.neck.get('detach_fpn', False)
    for name, param in model.neck.mask_path.named_parameters():
        assert param.grad is not None, name
    if not detach:
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


def test_stage2_config_trains_only_the_path_and_mask_head():
    cfg = load('sharpmask/'
               'embedmask_lite0_sharpmask_fpn_stage2_fruits_nuts_finetune.py')
    hooks = [h for h in cfg.custom_hooks if h.type == 'FreezeExceptHook']
    assert len(hooks) == 1
    assert list(hooks[0].trainable) == ['neck.mask_path', 'mask_head']
    assert hooks[0].get('check_loaded', True)
    assert cfg.load_from.endswith('.pth')
