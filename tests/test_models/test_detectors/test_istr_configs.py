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
