# Copyright (c) mmembed authors. All rights reserved.
"""Session fixtures: one mmembed wheel built from this checkout, installed
once into a temporary target folder, and one small synthetic set."""
import glob
import importlib.util
import os.path as osp

import pytest
from packaging_helpers import REPO, copy_source, explain, run


@pytest.fixture(scope='session')
def wheel_file(tmp_path_factory) -> str:
    """``pip wheel --no-deps --no-build-isolation`` of a copy of the
    checkout (the build never writes into the checkout itself)."""
    root = tmp_path_factory.mktemp('wheel')
    src = copy_source(str(root / 'src'))
    proc = run([
        '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q',
        '--disable-pip-version-check', '-w',
        str(root / 'dist'), src
    ],
               cwd=str(root))
    assert proc.returncode == 0, explain(proc)
    wheels = glob.glob(str(root / 'dist' / 'mmembed-*.whl'))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope='session')
def site_dir(wheel_file, tmp_path_factory) -> str:
    """The wheel installed with ``pip install --target`` (no dependencies:
    the venv provides torch, mmcv, mmdet)."""
    target = str(tmp_path_factory.mktemp('site'))
    proc = run([
        '-m', 'pip', 'install', '--no-deps', '-q',
        '--disable-pip-version-check', '--target', target, wheel_file
    ],
               cwd=target)
    assert proc.returncode == 0, explain(proc)
    return target


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory) -> str:
    """4 train and 2 val images of tools/misc/make_synthetic_coco.py,
    with a trailing slash (a data_root)."""
    spec = importlib.util.spec_from_file_location(
        'make_synthetic_coco',
        osp.join(REPO, 'tools', 'misc', 'make_synthetic_coco.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path_factory.mktemp('synthetic')
    tool.make_synthetic_coco(
        str(out), num_train=4, num_val=2, img_size=256, seed=0)
    return str(out) + '/'
