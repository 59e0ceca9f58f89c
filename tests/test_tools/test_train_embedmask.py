# Copyright (c) mmembed authors. All rights reserved.
"""EmbedMask trains 5 iterations through tools/train.py and its checkpoint
evaluates (bbox + segm) through tools/test.py."""
import json
import os.path as osp

from tool_test_helpers import explain, requires_fruits_nuts, run_tool

pytestmark = requires_fruits_nuts
CONFIG = 'tests/test_tools/configs/embedmask_fruits_5iter.py'


def test_embedmask_trains_five_iterations_and_tests(tmp_path):
    work_dir = str(tmp_path / 'work')
    proc = run_tool(['tools/train.py', CONFIG, '--work-dir', work_dir])
    assert proc.returncode == 0, explain(proc)
    assert osp.isfile(osp.join(work_dir, 'iter_5.pth')), explain(proc)
    scalars = []
    for line in open(next(iter(_find(work_dir, 'scalars.json')))):
        scalars.append(json.loads(line))
    train_steps = [s for s in scalars if 'loss_mask' in s]
    assert [s['iter'] for s in train_steps] == [1, 2, 3, 4, 5]
    for step in train_steps:
        for key in ('loss_cls', 'loss_bbox', 'loss_centerness', 'loss_mask',
                    'loss_smooth'):
            assert key in step and step[key] == step[key]  # present, not NaN
    assert any('coco/segm_mAP' in s for s in scalars)  # validation ran
    proc = run_tool([
        'tools/test.py', CONFIG,
        osp.join(work_dir, 'iter_5.pth'), '--work-dir', work_dir
    ])
    assert proc.returncode == 0, explain(proc)
    assert 'coco/segm_mAP' in proc.stdout + proc.stderr


def _find(root, name):
    import glob
    return glob.glob(osp.join(root, '**', name), recursive=True)
