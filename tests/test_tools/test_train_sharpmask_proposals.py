# Copyright (c) mmembed authors. All rights reserved.
"""The paper's two-stage recipe through the tools, on coco128: DeepMask
trains (mask + score losses), SharpMask trains from its checkpoint with
only the refinement changing, both evaluate as class-agnostic segment AR
through tools/test.py, and the coarse-vs-refined picture is drawn."""
import glob
import json
import os.path as osp

import torch
from tool_test_helpers import explain, requires_coco128, run_tool

from mmembed.utils.checkpoint import safe_torch_load

pytestmark = requires_coco128
STAGE1 = 'tests/test_tools/configs/deepmask_coco128_3iter.py'
STAGE2 = 'tests/test_tools/configs/sharpmask_coco128_3iter.py'
IMAGE = '../shared/data/coco128/train2017/000000000009.jpg'


def scalars(work_dir):
    path = glob.glob(osp.join(work_dir, '**', 'scalars.json'),
                     recursive=True)[0]
    return [json.loads(line) for line in open(path)]


def test_deepmask_then_sharpmask_train_evaluate_and_draw(tmp_path):
    dm_dir, sm_dir = str(tmp_path / 'deepmask'), str(tmp_path / 'sharpmask')
    proc = run_tool(['tools/train.py', STAGE1, '--work-dir', dm_dir])
    assert proc.returncode == 0, explain(proc)
    steps = [s for s in scalars(dm_dir) if 'loss_mask' in s]
    assert len(steps) == 3
    assert all(s['loss_score'] == s['loss_score'] for s in steps)
    assert any('coco/AR@1000' in s for s in scalars(dm_dir))
    dm_ckpt = osp.join(dm_dir, 'iter_3.pth')

    proc = run_tool([
        'tools/train.py', STAGE2, '--work-dir', sm_dir, '--cfg-options',
        f'load_from={dm_ckpt}'
    ])
    assert proc.returncode == 0, explain(proc)
    steps = [s for s in scalars(sm_dir) if 'loss_refine' in s]
    assert len(steps) == 3 and 'loss_mask' not in steps[0]
    sm_ckpt = osp.join(sm_dir, 'iter_3.pth')
    before = safe_torch_load(dm_ckpt)['state_dict']
    after = safe_torch_load(sm_ckpt)['state_dict']
    # stage 2 changed the refinement only: trunk, DeepMask heads and BN
    # statistics are exactly as loaded
    for key, value in before.items():
        assert torch.equal(after[key], value), key
    new = [k for k in after if k not in before]
    assert new and all(k.startswith('refine_head.') for k in new)

    proc = run_tool(['tools/test.py', STAGE2, sm_ckpt, '--work-dir', sm_dir])
    assert proc.returncode == 0, explain(proc)
    out = proc.stdout + proc.stderr
    for key in ('coco/AR@10', 'coco/AR@100', 'coco/AR@1000'):
        assert key in out, key

    picture = str(tmp_path / 'coarse_vs_refined.png')
    proc = run_tool([
        'tools/analysis_tools/vis_sharpmask.py', STAGE2, sm_ckpt, IMAGE,
        '--out', picture, '--num-proposals', '3'
    ])
    assert proc.returncode == 0, explain(proc)
    assert osp.getsize(picture) > 10_000
