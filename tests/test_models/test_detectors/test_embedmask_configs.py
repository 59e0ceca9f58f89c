# Copyright (c) mmembed authors. All rights reserved.
"""Every single-stage config under configs/ (except _base_) builds, runs one
loss step and one predict on a tiny synthetic batch. Two-stage configs
(a ``roi_head``: ISTR, Mask R-CNN with the SharpMask neck) have their own
config tests (test_istr_configs.py, test_sharpmask_configs.py), and so
has the DeepMask + SharpMask proposal model, trained on patches
(test_sharpmask_proposer.py)."""
import glob
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config

from mmembed.testing import get_config_root

ALL_CONFIGS = sorted(
    osp.relpath(p, get_config_root())
    for p in glob.glob(osp.join(get_config_root(), '*', '*.py'))
    if not p.split(osp.sep)[-2] == '_base_')

def _single_stage_detector(fname: str) -> bool:
    model = Config.fromfile(osp.join(get_config_root(), fname)).model
    return 'roi_head' not in model and model.type != 'SharpMaskProposer'


CONFIGS = [c for c in ALL_CONFIGS if _single_stage_detector(c)]


def test_every_method_folder_is_covered():
    assert any(c.startswith('embedmask/') for c in CONFIGS)
    assert 'embedmask/embedmask_r101_3x.py' in CONFIGS
    # the two-stage ones are left to their method tests (and QueryInst and
    # Mask R-CNN, mmdet's peers in the learning check and the benchmarks,
    # to mmdet), nothing else
    for fname in set(ALL_CONFIGS) - set(CONFIGS):
        assert fname.startswith(
            ('istr/', 'sharpmask/mask-rcnn', 'queryinst/', 'mask_rcnn/')) or \
            fname.endswith('_proposals.py'), fname


@pytest.mark.parametrize('fname', CONFIGS)
def test_config_builds_trains_and_predicts(fname):
    cfg = Config.fromfile(osp.join(get_config_root(), fname))
    assert cfg.custom_imports == dict(
        imports=['mmembed'], allow_failed_imports=False)
    assert cfg.default_scope == 'mmdet'
    model_cfg = cfg.model
    model_cfg.backbone.init_cfg = None  # no model hub here
    model_cfg.test_cfg.score_thr = 0.0  # random weights score ~ 0.01
    model = MODELS.build(model_cfg)
    model.init_weights()
    num_classes = model.bbox_head.num_classes
    packed = demo_mm_inputs(
        2, [[3, 96, 128], [3, 80, 100]], num_items=[2, 1],
        num_classes=num_classes, with_mask=True)
    losses = model(**model.data_preprocessor(packed, True), mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total), losses
    total.backward()
    model.eval()
    with torch.no_grad():
        samples = model(**model.data_preprocessor(packed, False),
                        mode='predict')
    for sample in samples:
        pred = sample.pred_instances
        assert pred.masks.shape[1:] == tuple(sample.ori_shape)
        assert pred.masks.dtype == torch.bool
        assert len(pred.bboxes) == len(pred.masks) > 0
        assert len(pred.masks) <= cfg.model.test_cfg.max_per_img
