# Copyright (c) mmembed authors. All rights reserved.
"""Helpers for the packaging tests: build the mmembed wheel from this
checkout, install it into a temporary target folder and run commands from
a temporary folder outside the checkout with only that target added to
``sys.path`` (the venv's editable mmembed must not be what gets imported;
every test checks ``mmembed.__file__``)."""
import os
import os.path as osp
import shutil
import subprocess
import sys
from typing import Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
_VENV_PYTHON = osp.join(REPO, '.venv', 'bin', 'python')
PYTHON = _VENV_PYTHON if osp.isfile(_VENV_PYTHON) else sys.executable
TIMEOUT = 300
# what a source distribution would not carry either
_SKIP_DIRS = {
    '.git', '.venv', 'build', 'dist', 'work_dirs', 'data', 'outputs',
    '__pycache__', '.pytest_cache', '.mim', '.whl', '.gl'
}

# Cuts a config's schedule to 2 iterations on a synthetic set at DATA
# (format with DATA=<folder with annotations/ train/ val/>/).
SHORT_RUN = '''
data_root = '{DATA}'
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(data_root=data_root))
val_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=2, val_interval=1000)
param_scheduler = [
    dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=2)]
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(by_epoch=False, interval=2, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
'''


def copy_source(dst: str) -> str:
    """Copy the checkout (the working tree, as an sdist would hold it)."""

    def ignore(folder: str, names: List[str]) -> List[str]:
        return [
            n for n in names if n in _SKIP_DIRS or n.endswith('.egg-info')
            or n.endswith('.pyc') or n.endswith('.pth')
        ]

    shutil.copytree(REPO, dst, ignore=ignore, symlinks=True)
    return dst


def run(args: List[str],
        cwd: str,
        pythonpath: Optional[List[str]] = None,
        timeout: int = TIMEOUT) -> subprocess.CompletedProcess:
    """Run ``args`` (a leading ``.py`` or ``-m``/``-c`` goes to the venv's
    python) in ``cwd`` with ``PYTHONPATH`` = ``pythonpath`` only."""
    if args and (args[0].endswith('.py') or args[0] in ('-m', '-c')):
        args = [PYTHON] + args
    env: Dict[str, str] = dict(os.environ)
    env.pop('PYTHONPATH', None)
    if pythonpath:
        env['PYTHONPATH'] = os.pathsep.join(pythonpath)
    env.setdefault('OMP_NUM_THREADS', '1')
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True,
        timeout=timeout)


def explain(proc: subprocess.CompletedProcess) -> str:
    return (f'command {proc.args} exited {proc.returncode}\n'
            f'--- stdout (tail) ---\n{proc.stdout[-3000:]}\n'
            f'--- stderr (tail) ---\n{proc.stderr[-5000:]}')
