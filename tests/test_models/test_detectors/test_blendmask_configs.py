# Copyright (c) mmembed authors. All rights reserved.
"""BlendMask configs: every one is picked up by the parametrised
build / loss / predict test (test_embedmask_configs.py globs configs/*/),
and each says what AdelaiDet's matching yaml says."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from mmembed.testing import get_config_root

EXPECTED = {
    'blendmask_r50_fpn_1x_coco.py', 'blendmask_r50_fpn_ms-3x_coco.py',
    'blendmask_r101_fpn_ms-3x_coco.py', 'blendmask_r50_fpn_550_3x_coco.py',
    'blendmask_r18_fpn_fruits_nuts.py', 'blendmask_r18_fpn_synthetic.py',
    # fp16 AmpOptimWrapper twin for CUDA (docs/reliability.md)
    'blendmask_r18_fpn_synthetic_amp.py',
    # ImageNet EfficientNet-Lite0 (docs/finetuning.md)
    'blendmask_lite0_fpn_1x_coco.py',
    'blendmask_lite0_fpn_fruits_nuts_finetune.py'
}
COCO = sorted(c for c in EXPECTED if c.endswith('_coco.py'))
SMALL = sorted(EXPECTED - set(COCO))


def load(fname):
    return Config.fromfile(osp.join(get_config_root(), 'blendmask', fname))


def test_every_config_is_in_the_parametrised_config_test():
    found = {
        osp.basename(p)
        for p in glob.glob(osp.join(get_config_root(), 'blendmask', '*.py'))
    }
    assert found == EXPECTED


@pytest.mark.parametrize('fname', sorted(EXPECTED))
def test_heads_agree_and_follow_adelaidet(fname):
    cfg = load(fname)
    box, mask = cfg.model.bbox_head, cfg.model.mask_head
    assert cfg.model.type == 'BlendMask'
    assert box.num_classes == mask.num_classes
    assert (box.num_bases, box.attn_size) == (mask.num_bases, mask.attn_size)
    assert len(box.strides) == cfg.model.neck.num_outs
    assert box.use_scale is False and box.thresh_with_ctr and box.sqrt_score
    assert cfg.model.test_cfg.nms.iou_threshold == 0.6
    assert cfg.model.test_cfg.mask_thr == 0.5
    assert mask.loss_semantic.loss_weight == 0.3
    if fname in SMALL:
        # one CPU process: no SyncBN anywhere; classes from the dataset
        assert 'SyncBN' not in cfg.pretty_text
        assert box.num_classes == len(cfg.train_dataloader.dataset.metainfo
                                      ['classes'])
    else:
        assert mask.norm_cfg.type == 'SyncBN'
        assert mask.semantic_norm_cfg.type == 'BN'
        assert box.num_classes == 80
        assert cfg.optim_wrapper.optimizer.lr == 0.01


def test_real_time_config_is_adelaidet_550():
    cfg = load('blendmask_r50_fpn_550_3x_coco.py')
    box = cfg.model.bbox_head
    assert box.strides == [8, 16, 32, 64] and cfg.model.neck.num_outs == 4
    assert box.num_share_convs == 3 and box.stacked_convs == 0
    assert cfg.model.mask_head.num_convs == 2
    assert cfg.test_dataloader.dataset.pipeline[1].scale == (916, 550)
    assert cfg.train_cfg.max_epochs == 36


def test_schedules():
    assert load('blendmask_r50_fpn_1x_coco.py').train_cfg.max_epochs == 12
    three = load('blendmask_r101_fpn_ms-3x_coco.py')
    assert three.train_cfg.max_epochs == 36
    assert three.param_scheduler[1].milestones == [28, 33]
    assert three.model.backbone.depth == 101
