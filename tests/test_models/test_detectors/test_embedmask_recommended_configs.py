# Copyright (c) mmembed authors. All rights reserved.
"""The recommended EmbedMask configs are their paper twins plus exactly the
two recommended keys (docs/embedmask.md, "The recommended configuration")."""
import copy
import os.path as osp

import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
PAIRS = [
    ('embedmask_r50_fpn_recommended_1x_coco.py',
     'embedmask_r50_fpn_1x_coco.py'),
    ('embedmask_r50_fpn_recommended_ms-3x_coco.py',
     'embedmask_r50_fpn_ms-3x_coco.py'),
    ('embedmask_r101_recommended_3x.py', 'embedmask_r101_3x.py'),
    ('embedmask_lite0_fpn_recommended_1x_coco.py',
     'embedmask_lite0_fpn_1x_coco.py'),
    ('embedmask_lite0_fpn_recommended_fruits_nuts_finetune.py',
     'embedmask_lite0_fpn_fruits_nuts_finetune.py'),
    ('embedmask_r18_fpn_recommended_fruits_nuts.py',
     'embedmask_r18_fpn_fruits_nuts.py'),
]


def load(name):
    return Config.fromfile(osp.join(REPO, 'configs/embedmask', name))


@pytest.mark.parametrize('recommended,paper', PAIRS)
def test_recommended_is_paper_plus_two_keys(recommended, paper):
    rec, base = load(recommended).to_dict(), load(paper).to_dict()
    assert rec['model']['mask_head']['loss_mask']['loss_weight'] == 2.0
    assert base['model']['mask_head']['loss_mask']['loss_weight'] == 0.5
    assert rec['model']['test_cfg']['mask_interp'] == 'logit'
    assert 'mask_interp' not in base['model']['test_cfg']  # official paste
    # everything else is the paper twin's
    rest = copy.deepcopy(rec)
    rest['model']['mask_head']['loss_mask']['loss_weight'] = 0.5
    del rest['model']['test_cfg']['mask_interp']
    for cfg in (rest, base):
        for key in ('embedmask_recommended_mask_head',
                    'embedmask_recommended_test_cfg', 'filename'):
            cfg.pop(key, None)
    assert rest == base
