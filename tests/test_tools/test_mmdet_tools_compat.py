# Copyright (c) mmembed authors. All rights reserved.
"""A user's config with only `custom_imports` + LovaszHingeLoss works with
mmdet's *own* tools/train.py and tools/test.py (shipped in the mmdet wheel).

The config (configs/user_condinst_lovasz.py) is mmdet's CondInst with
``mask_head.loss_mask=dict(type='LovaszHingeLoss', ...)``. The tools run
without PYTHONPATH, so mmembed is found as an installed package, imported
only through the config's ``custom_imports``.
"""
import glob
import json
import os.path as osp

import mmdet
import pytest
from tool_test_helpers import (USER_LOVASZ_CONFIG, explain,
                               requires_fruits_nuts, run_tool, tool_env)

pytestmark = [pytest.mark.slow, requires_fruits_nuts]

MMDET_TOOLS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools')


@pytest.fixture(scope='module')
def mmdet_trained(tmp_path_factory):
    train_py = osp.join(MMDET_TOOLS, 'train.py')
    if not osp.isfile(train_py):
        pytest.skip(f'mmdet ships no tools/train.py at {train_py}')
    work_dir = str(tmp_path_factory.mktemp('mmdet_train'))
    proc = run_tool([train_py, USER_LOVASZ_CONFIG, '--work-dir', work_dir],
                    env=tool_env(drop_pythonpath=True))
    assert proc.returncode == 0, explain(proc)
    return work_dir, proc


def test_mmdet_train_with_lovasz_mask_loss(mmdet_trained):
    work_dir, proc = mmdet_trained
    # mmdet's train.py ran the user's model, with the mmembed loss in it
    with open(osp.join(work_dir, 'user_condinst_lovasz.py')) as f:
        assert "type='LovaszHingeLoss'" in f.read()
    scalars = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    assert len(scalars) == 1, scalars
    with open(scalars[0]) as f:
        train_logs = [
            json.loads(line) for line in f if '"loss"' in line
        ]
    assert [log['iter'] for log in train_logs] == [1, 2]
    for log in train_logs:
        assert 'loss_mask' in log, log
        assert log['loss_mask'] == log['loss_mask']  # not NaN
        assert log['loss_mask'] > 0
    assert 'loss_mask' in proc.stdout + proc.stderr
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))


def test_mmdet_test_loads_the_checkpoint(mmdet_trained, tmp_path):
    """mmdet's test.py on torch>=2.6 reads the checkpoint (HistoryBuffer in
    it) because custom_imports installed mmembed's safe loader."""
    work_dir, _ = mmdet_trained
    test_py = osp.join(MMDET_TOOLS, 'test.py')
    out = tmp_path / 'res.pkl'
    proc = run_tool([
        test_py, USER_LOVASZ_CONFIG,
        osp.join(work_dir, 'iter_2.pth'), '--work-dir',
        str(tmp_path), '--out',
        str(out)
    ],
                    env=tool_env(drop_pythonpath=True))
    assert proc.returncode == 0, explain(proc)
    assert out.is_file()
