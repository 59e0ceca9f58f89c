# Copyright (c) mmembed authors. All rights reserved.
"""projects/example_project (docs/use_in_your_project.md), copied to a
temporary folder, trains for 2 iterations against the installed mmembed
wheel with its own head (a subclass of EmbedMaskHead) and loss (composing
LovaszHingeLoss)."""
import glob
import json
import os
import os.path as osp
import shutil

import pytest
from packaging_helpers import REPO, SHORT_RUN, explain, run

pytestmark = pytest.mark.slow

PROJECT = osp.join(REPO, 'projects', 'example_project')
CONFIG = 'configs/embedmask_r18_refined_shapes.py'


def test_example_project_trains(site_dir, synthetic_root, tmp_path):
    project = str(tmp_path / 'example_project')
    shutil.copytree(PROJECT, project,
                    ignore=shutil.ignore_patterns('__pycache__'))
    # the project's config reads data/synthetic/ under the project folder
    os.makedirs(osp.join(project, 'data'))
    os.symlink(synthetic_root.rstrip('/'),
               osp.join(project, 'data', 'synthetic'))
    short = osp.join(project, 'configs', 'short_run.py')
    with open(short, 'w') as f:
        f.write(f"_base_ = './{osp.basename(CONFIG)}'\n" +
                SHORT_RUN.format(DATA='data/synthetic/'))

    proc = run(['-m', 'mmembed.cli', 'train', 'configs/short_run.py',
                '--work-dir', 'work'],
               cwd=project,
               pythonpath=[site_dir])
    assert proc.returncode == 0, explain(proc)

    with open(osp.join(project, 'work', 'short_run.py')) as f:
        dumped = f.read()
    assert "type='RefinedEmbedMaskHead'" in dumped
    assert "type='LovaszDiceLoss'" in dumped
    scalars = glob.glob(
        osp.join(project, 'work', '*', 'vis_data', 'scalars.json'))
    with open(scalars[0]) as f:
        logs = [json.loads(line) for line in f if '"loss"' in line]
    assert [log['iter'] for log in logs] == [1, 2]
    assert all(log['loss_mask'] > 0 for log in logs)

    # the checkpoint holds the project's layers, loaded by a script that
    # imports only the installed mmembed and the project
    code = ('import mmembed, my_project, torch\n'
            'from mmembed.utils import safe_torch_load\n'
            "ckpt = safe_torch_load('work/iter_2.pth', map_location='cpu')\n"
            "print(mmembed.__file__)\n"
            "print(sorted(k for k in ckpt['state_dict'] if 'refine' in k))\n")
    check = run(['-c', code], cwd=project, pythonpath=[site_dir])
    assert check.returncode == 0, explain(check)
    lines = check.stdout.strip().splitlines()
    assert lines[-2].startswith(site_dir), lines
    assert "mask_head.refine.0.weight" in lines[-1], lines
