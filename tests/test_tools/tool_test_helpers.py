# Copyright (c) mmembed authors. All rights reserved.
"""Helpers for the command-line tool tests.

The tools are run as subprocesses, exactly as users run them: with the
virtual environment's python (the one running pytest), from the repository
root, so that the test configs' ``../shared/data/...`` paths resolve.
"""
import os
import os.path as osp
import socket
import subprocess
import sys
from typing import Dict, List, Optional

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(REPO_ROOT, 'tests', 'test_tools', 'configs')
TINY_CONFIG = 'tests/test_tools/configs/tiny_fcos_fruits.py'
USER_LOVASZ_CONFIG = 'tests/test_tools/configs/user_condinst_lovasz.py'
DATA_ROOT = osp.normpath(
    osp.join(REPO_ROOT, '..', 'shared', 'data', 'fruits_nuts'))
SAMPLE_IMAGE = '../shared/data/fruits_nuts/images/0.jpg'
# the repository's virtual environment, else whatever runs the tests
_VENV_PYTHON = osp.join(REPO_ROOT, '.venv', 'bin', 'python')
PYTHON = _VENV_PYTHON if osp.isfile(_VENV_PYTHON) else sys.executable
# generous per command; the commands themselves take 5-30 s
TOOL_TIMEOUT = 170


def tool_env(extra: Optional[Dict[str, str]] = None,
             drop_pythonpath: bool = False) -> Dict[str, str]:
    """The environment for a tool subprocess."""
    env = dict(os.environ)
    if drop_pythonpath:
        env.pop('PYTHONPATH', None)
    # one BLAS/OpenMP thread per process: the runners have ~2 cores and the
    # distributed tests start two processes
    env.setdefault('OMP_NUM_THREADS', '1')
    env.update(extra or {})
    return env


def run_tool(args: List[str],
             env: Optional[Dict[str, str]] = None,
             timeout: int = TOOL_TIMEOUT) -> subprocess.CompletedProcess:
    """Run ``args`` from the repository root, capturing text output.

    A ``.py`` first argument is run with :data:`PYTHON`.
    """
    if args and args[0].endswith('.py'):
        args = [PYTHON] + args
    return subprocess.run(
        args,
        cwd=REPO_ROOT,
        env=env if env is not None else tool_env(),
        capture_output=True,
        text=True,
        timeout=timeout)


def explain(proc: subprocess.CompletedProcess) -> str:
    """The tail of a finished command's output, for assertion messages."""
    return (f'command {proc.args} exited {proc.returncode}\n'
            f'--- stdout (tail) ---\n{proc.stdout[-3000:]}\n'
            f'--- stderr (tail) ---\n{proc.stderr[-5000:]}')


def free_port() -> int:
    """A TCP port that was free a moment ago (for torchrun's rendezvous)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


COCO128_JSON = osp.normpath(
    osp.join(REPO_ROOT, '..', 'shared', 'data', 'coco128', 'annotations',
             'instances_train2017.json'))
# applied by the test modules that read coco128 (module `pytestmark`)
requires_coco128 = pytest.mark.skipif(
    not osp.isfile(COCO128_JSON), reason=f'coco128 not found at {COCO128_JSON}')

# applied by the test modules that read fruits_nuts (module `pytestmark`)
requires_fruits_nuts = pytest.mark.skipif(
    not osp.isfile(osp.join(DATA_ROOT, 'trainval.json')),
    reason=f'fruits_nuts data not found at {DATA_ROOT}')
