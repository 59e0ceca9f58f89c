# Copyright (c) mmembed authors. All rights reserved.
"""Every ISTR config builds, runs one loss step and one predict on a tiny
synthetic batch (codec_file dropped: no fitted codec here; the PCA codec
then keeps its valid placeholder)."""
import glob
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config

from mmembed.testing import get_config_root

CONFIGS = sorted(
    osp.relpath(p, get_config_root())
    for p in glob.glob(osp.join(get_config_root(), 'istr', '*.py')))


def test_istr_configs_exist():
    for name in ('istr_r50_fpn_3x_coco.py', 'istr_r101_fpn_3x_coco.py',
                 'istr_r50_fpn_dct_3x_coco.py', 'istr_r18_fpn_synthetic.py',
                 'istr_r18_fpn_fruits_nuts.py'):
        assert f'istr/{name}' in CONFIGS


@pytest.mark.parametrize('fname', CONFIGS)
def test_config_builds_trains_and_predicts(fname):
    cfg = Config.fromfile(osp.join(get_config_root(), fname))
    assert cfg.custom_imports == dict(
        imports=['mmembed'], allow_failed_imports=False)
    assert cfg.default_scope == 'mmdet'
    model_cfg = cfg.model
    model_cfg.backbone.init_cfg = None  # no model hub here
    model_cfg.roi_head.mask_codec.pop('codec_file', None)
    # keep the test fast: fewer queries; every stage still runs
    model_cfg.rpn_head.num_proposals = 20
    model = MODELS.build(model_cfg)
    model.init_weights()
    num_classes = model.roi_head.bbox_head[0].num_classes
    assert len(model.roi_head.bbox_head) == 6
    packed = demo_mm_inputs(
        2, [[3, 96, 128], [3, 80, 100]], num_items=[2, 1],
        num_classes=num_classes, with_mask=True)
    losses = model(**model.data_preprocessor(packed, True), mode='loss')
    for stage in range(6):
        for name in ('loss_cls', 'loss_bbox', 'loss_iou', 'loss_mask_code',
                     'loss_mask_dice'):
            assert f's{stage}.{name}' in losses
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total), losses
    total.backward()
    model.eval()
    with torch.no_grad():
        samples = model(**model.data_preprocessor(packed, False),
                        mode='predict')
    max_dets = min(cfg.model.test_cfg.rcnn.max_per_img, 20 * num_classes)
    for sample in samples:
        pred = sample.pred_instances
        assert pred.masks.shape == (max_dets, *sample.ori_shape)
        assert pred.masks.dtype == torch.bool
        assert len(pred.bboxes) == len(pred.scores) == max_dets


def _load(name):
    return Config.fromfile(osp.join(get_config_root(), 'istr', name))


def _leaves(cfg, prefix=''):
    """{dotted path: value} of every leaf of a config dict (lists indexed)."""
    out = {}
    items = cfg.items() if isinstance(cfg, dict) else enumerate(cfg)
    for key, value in items:
        path = f'{prefix}{key}'
        if isinstance(value, (dict, list, tuple)) and len(value):
            out.update(_leaves(value, path + '.'))
        else:
            out[path] = value
    return out


def test_v2_configs_carry_the_official_v2_values():
    v1 = _load('istr_r50_fpn_3x_coco.py').model
    for name, codec in (('istr_v2_r50_fpn_3x_coco.py', 'PCAMaskCodec'),
                        ('istr_v2_r50_fpn_dct_3x_coco.py', 'DCTMaskCodec')):
        model = _load(name).model
        roi = model.roi_head
        assert roi.mask_codec.type == codec
        assert (roi.mask_codec.code_dim, roi.mask_codec.mask_size) == (256,
                                                                       112)
        assert roi.bbox_head.mask_branch == 'conv'
        assert roi.code_roi_extractor.roi_layer.output_size == 28
        assert roi.mask_target_boxes == 'pred'
        assert roi.bbox_head.loss_mask_code == dict(
            type='SmoothL1Loss', beta=1.0, reduction='mean', loss_weight=1.0)
        assert roi.bbox_head.loss_mask_dice.loss_weight == 5.0
        for stage in model.train_cfg.rcnn:
            assert stage.assigner.match_costs[3] == dict(
                type='MaskCodeCost', weight=1.0)
        assert model.test_cfg.rcnn.mask_thr_binary == 0.45
        assert tuple(model.test_cfg.rcnn.cls_score_stages) == (2, 3, 4, 5)
        # the box / class side is v1's
        assert _leaves(roi.bbox_roi_extractor) == _leaves(
            v1.roi_head.bbox_roi_extractor)
        assert roi.bbox_head.loss_cls == v1.roi_head.bbox_head.loss_cls
    # v1 stays v1
    assert v1.roi_head.bbox_head.get('mask_branch', 'mlp') == 'mlp'
    assert 'cls_score_stages' not in v1.test_cfg.rcnn
    assert v1.test_cfg.rcnn.mask_thr_binary == 0.5


RELU_CHANGES = {
    'roi_head.bbox_head.fc_act_cfg.type': 'ReLU',
    'roi_head.bbox_head.fc_act_cfg.inplace': True,
    'roi_head.bbox_head.ffn_act_cfg.type': 'ReLU',
    'roi_head.bbox_head.ffn_act_cfg.inplace': True,
    'roi_head.bbox_head.dynamic_conv_cfg.act_cfg.type': 'ReLU',
    'roi_head.bbox_head.dynamic_conv_cfg.act_cfg.inplace': True,
}
START_CHANGES = {'rpn_head.image_feat_scale': 0.0}
MATCHING_CHANGES = {
    f'train_cfg.rcnn.{stage}.assigner.match_costs.3.weight': 0.0
    for stage in range(6)
}
V2_FT = 'istr_v2_lite0_fpn_fruits_nuts_finetune.py'
BM_FT = 'istr_v2_lite0_fpn_box_matching_fruits_nuts_finetune.py'
# the ablation ladder of the small-data keys (fine-tune): config, the config
# it extends, and the leaves of `model` that differ from it
LADDER = [
    (BM_FT, V2_FT, MATCHING_CHANGES),
    ('istr_v2_lite0_fpn_box_matching_relu_fruits_nuts_finetune.py', BM_FT,
     RELU_CHANGES),
    ('istr_v2_lite0_fpn_box_matching_embed_start_fruits_nuts_finetune.py',
     BM_FT, START_CHANGES),
    ('istr_v2_lite0_fpn_recommended_fruits_nuts_finetune.py', V2_FT, {
        **MATCHING_CHANGES,
        **RELU_CHANGES,
        **START_CHANGES
    }),
    ('istr_v2_lite0_fpn_recommended_one_cls_fc_fruits_nuts_finetune.py',
     'istr_v2_lite0_fpn_recommended_fruits_nuts_finetune.py',
     {'roi_head.bbox_head.num_cls_fcs': 1}),
    ('istr_v2_lite0_fpn_recommended_query_fusion_fruits_nuts_finetune.py',
     'istr_v2_lite0_fpn_recommended_fruits_nuts_finetune.py',
     {'roi_head.bbox_head.mask_query_fusion': True}),
    ('istr_v2_lite0_fpn_recommended_dynamic_fusion_fruits_nuts_finetune.py',
     'istr_v2_lite0_fpn_recommended_fruits_nuts_finetune.py',
     {'roi_head.bbox_head.mask_query_fusion': 'dynamic'}),
    ('istr_v2_lite0_fpn_recommended_dynamic_fusion_dct64_fruits_nuts_'
     'finetune.py',
     'istr_v2_lite0_fpn_recommended_dynamic_fusion_fruits_nuts_finetune.py',
     {'roi_head.mask_codec.code_dim': 64}),
    ('istr_v2_lite0_fpn_recommended_dynamic_fusion_dense_code_fruits_nuts_'
     'finetune.py',
     'istr_v2_lite0_fpn_recommended_dynamic_fusion_fruits_nuts_finetune.py',
     {'roi_head.bbox_head.mask_code_head': 'dense'}),
    ('istr_v2_lite0_fpn_recommended_dynamic_fusion_dense_code_dct64_'
     'fruits_nuts_finetune.py',
     'istr_v2_lite0_fpn_recommended_dynamic_fusion_dense_code_fruits_nuts_'
     'finetune.py', {'roi_head.mask_codec.code_dim': 64}),
    ('istr_v2_r18_fpn_recommended_dynamic_fusion_dense_code_dct64_fruits_'
     'nuts.py', 'istr_v2_r18_fpn_recommended_fruits_nuts.py', {
         'roi_head.bbox_head.mask_query_fusion': 'dynamic',
         'roi_head.bbox_head.mask_code_head': 'dense',
         'roi_head.mask_codec.code_dim': 64
     }),
    ('istr_v2_r18_fpn_recommended_fruits_nuts.py',
     'istr_v2_r18_fpn_fruits_nuts.py', {
         **MATCHING_CHANGES,
         **RELU_CHANGES,
         **START_CHANGES
     }),
]


@pytest.mark.parametrize('name,base_name,want', LADDER)
def test_each_small_data_config_changes_only_its_keys(name, base_name, want):
    base = _leaves(_load(base_name).model)
    got = _leaves(_load(name).model)
    changed = {k: v for k, v in got.items() if base.get(k, '<absent>') != v}
    assert changed == want
    assert set(base) - set(got) == set()


def test_the_relu_key_leaves_no_elu_in_the_stage_heads():
    cfg = _load(
        'istr_v2_lite0_fpn_box_matching_relu_fruits_nuts_finetune.py')
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    kinds = {type(m).__name__ for m in model.roi_head.modules()}
    assert 'ELU' not in kinds and 'ReLU' in kinds
    v2 = _load(V2_FT)
    v2.model.backbone.init_cfg = None
    kinds = {
        type(m).__name__
        for m in MODELS.build(v2.model).roi_head.modules()
    }
    assert 'ELU' in kinds and 'ReLU' not in kinds


REC_FT = ('istr_v2_lite0_fpn_recommended_dynamic_fusion_dense_code_dct64_'
          'fruits_nuts_finetune.py')
# leave-one-out ablations of the recommendation: config, and the parts of
# `model` that must be the official v2's again (everything else: the
# recommendation's)
LEAVE_ONE_OUT = [
    ('istr_v2_lite0_fpn_recommended_without_relu_fruits_nuts_finetune.py',
     ('roi_head.bbox_head.fc_act_cfg', 'roi_head.bbox_head.ffn_act_cfg',
      'roi_head.bbox_head.dynamic_conv_cfg.act_cfg')),
    ('istr_v2_lite0_fpn_recommended_without_embedding_start_fruits_nuts_'
     'finetune.py', ('rpn_head.image_feat_scale', )),
    ('istr_v2_lite0_fpn_recommended_without_box_matching_fruits_nuts_'
     'finetune.py', ('train_cfg.rcnn', )),
]


@pytest.mark.parametrize('name,parts', LEAVE_ONE_OUT)
def test_each_leave_one_out_config_puts_back_one_official_value(name, parts):

    def inside(key):
        return any(key == p or key.startswith(p + '.') for p in parts)

    rec = _leaves(_load(REC_FT).model)
    v2 = _leaves(_load(V2_FT).model)
    got = _leaves(_load(name).model)
    want = {k: v for k, v in rec.items() if not inside(k)}
    want.update({k: v for k, v in v2.items() if inside(k)})
    # a key v2 leaves at its default is spelled out at the default here
    defaults = {'rpn_head.image_feat_scale': 1.0}
    for key, value in defaults.items():
        if inside(key) and key not in v2:
            want[key] = value
    assert got == want
    assert {k for k in got if got[k] != rec.get(k)} != set()
