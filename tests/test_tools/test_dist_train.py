# Copyright (c) mmembed authors. All rights reserved.
"""tools/dist_train.sh and tools/dist_test.sh with 2 processes (torchrun).

On a machine without CUDA the tools run DDP on the CPU with gloo; with CUDA
they take mmengine's usual NCCL path (then 2 GPUs are needed).
"""
import os.path as osp
import pickle

import pytest
import torch
from tool_test_helpers import (TINY_CONFIG, explain, free_port,
                               requires_fruits_nuts, run_tool,
                               tool_env)

pytestmark = [
    pytest.mark.slow,
    requires_fruits_nuts,
    pytest.mark.skipif(
        torch.cuda.is_available() and torch.cuda.device_count() < 2,
        reason='2 processes on CUDA need 2 GPUs')
]


@pytest.fixture(scope='module')
def dist_trained(tmp_path_factory):
    """(work dir, finished process) of a 2-process training run."""
    work_dir = str(tmp_path_factory.mktemp('dist_train'))
    proc = run_tool([
        'bash', 'tools/dist_train.sh', TINY_CONFIG, '2', '--work-dir',
        work_dir, '--cfg-options', 'log_level=INFO'
    ],
                    env=tool_env({'PORT': str(free_port())}))
    assert proc.returncode == 0, explain(proc)
    return work_dir, proc


def test_dist_train_runs_two_ranks(dist_trained):
    work_dir, proc = dist_trained
    output = proc.stdout + proc.stderr
    # mmengine's runtime environment report (rank 0's logger)
    assert 'Distributed launcher: pytorch' in output, explain(proc)
    assert 'Distributed training: True' in output, explain(proc)
    assert 'GPU number: 2' in output, explain(proc)  # mmengine's world size
    if not torch.cuda.is_available():
        # printed by every rank when tools/train.py set up gloo on the CPU
        for rank in (0, 1):
            assert f'rank {rank} of world size 2' in output, explain(proc)
        assert "dist_cfg: {'backend': 'gloo'}" in output, explain(proc)
    assert 'Iter(train) [2/2]' in output, explain(proc)
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))


def test_dist_test_collects_all_results(dist_trained, tmp_path):
    work_dir, _ = dist_trained
    out = tmp_path / 'res.pkl'
    proc = run_tool([
        'bash', 'tools/dist_test.sh', TINY_CONFIG,
        osp.join(work_dir, 'iter_2.pth'), '2', '--work-dir',
        str(tmp_path), '--out',
        str(out)
    ],
                    env=tool_env({'PORT': str(free_port())}))
    assert proc.returncode == 0, explain(proc)
    with open(out, 'rb') as f:
        results = pickle.load(f)
    # each rank tested half; rank 0 gathered all 18 images, each once
    assert sorted(r['img_id'] for r in results) == list(range(18))
