# Copyright (c) mmembed authors. All rights reserved.
"""BlendMask through tools/dist_train.sh with 2 processes (gloo on a CPU):
the mask loss normaliser is reduced over ranks, and an empty rank must not
hang the others."""
import glob
import json
import os.path as osp

import pytest
import torch
from tool_test_helpers import (explain, free_port, requires_fruits_nuts,
                               run_tool, tool_env)

pytestmark = [
    pytest.mark.slow,
    requires_fruits_nuts,
    pytest.mark.skipif(
        torch.cuda.is_available() and torch.cuda.device_count() < 2,
        reason='2 processes on CUDA need 2 GPUs')
]
CONFIG = 'tests/test_tools/configs/blendmask_fruits_5iter.py'


def test_blendmask_dist_train_two_ranks(tmp_path):
    work_dir = str(tmp_path / 'work')
    proc = run_tool([
        'bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', work_dir,
        '--cfg-options', 'train_cfg.val_interval=100'
    ],
                    env=tool_env({'PORT': str(free_port())}))
    assert proc.returncode == 0, explain(proc)
    output = proc.stdout + proc.stderr
    assert 'Distributed training: True' in output, explain(proc)
    assert 'Iter(train) [5/5]' in output, explain(proc)
    scalars = [
        json.loads(line) for line in open(
            glob.glob(osp.join(work_dir, '**', 'scalars.json'),
                      recursive=True)[0])
    ]
    steps = [s for s in scalars if 'loss_mask' in s]
    assert len(steps) == 5
    assert all(s['loss_mask'] == s['loss_mask'] for s in steps)  # not NaN
