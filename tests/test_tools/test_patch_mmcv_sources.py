# Copyright (c) mmembed authors. All rights reserved.
"""tools/misc/patch_mmcv_sources.py: the THC -> ATen include patch that lets
mmcv 2.1.0's CUDA ops build against torch >= 2.12 (issue 8)."""
import os
import os.path as osp
import shutil
import subprocess
import sys
import tarfile

import pytest

from mmembed.testing import get_repo_root

sys.path.insert(0, osp.join(get_repo_root(), 'tools', 'misc'))
import patch_mmcv_sources as patch  # noqa: E402

HELPER = ('#include <ATen/cuda/CUDAApplyUtils.cuh>\n'
          '#include <THC/THCAtomics.cuh>\n\n#include "common_cuda_helper.hpp"\n')


def fake_tree(root, version='2.1.0', helper=HELPER):
    """The files of an mmcv source tree the patch reads."""
    os.makedirs(osp.join(root, 'mmcv', 'ops', 'csrc', 'common'))
    os.makedirs(osp.join(root, 'mmcv', 'ops', 'csrc', 'pytorch', 'cuda'))
    with open(osp.join(root, 'mmcv', 'version.py'), 'w') as f:
        f.write(f"__version__ = '{version}'\n")
    with open(osp.join(root, patch.THC_FILES[0]), 'w') as f:
        f.write(helper)
    with open(osp.join(root, patch.THC_FILES[1]), 'w') as f:
        f.write('#include <cuda.h>\n#include <THC/THCAtomics.cuh>\n'
                '#include <vector>\n')
    return str(root)


def test_patch_replaces_both_includes_once(tmp_path):
    root = fake_tree(tmp_path / 'mmcv-2.1.0')
    assert patch.patch_thc_includes(root) == list(patch.THC_FILES)
    for rel in patch.THC_FILES:
        text = open(osp.join(root, rel)).read()
        assert patch.NEW_INCLUDE in text and 'THC/' not in text
    # the rest of the file is untouched
    assert open(osp.join(root, patch.THC_FILES[0])).read() == HELPER.replace(
        patch.OLD_INCLUDE, patch.NEW_INCLUDE)
    assert patch.patch_thc_includes(root) == []  # idempotent


def test_patch_is_pinned_to_mmcv_2_1_0(tmp_path):
    root = fake_tree(tmp_path / 'mmcv-2.2.0', version='2.2.0')
    with pytest.raises(ValueError, match='pinned to mmcv 2.1.0'):
        patch.patch_thc_includes(root)
    with pytest.raises(FileNotFoundError, match='not an mmcv source tree'):
        patch.patch_thc_includes(str(tmp_path))


def test_patch_refuses_an_unknown_variant(tmp_path):
    root = fake_tree(tmp_path / 'a', helper='#include <THC/THC.h>\n')
    with pytest.raises(ValueError, match='neither'):
        patch.patch_thc_includes(root)
    root = fake_tree(tmp_path / 'b')
    with open(osp.join(root, 'mmcv', 'ops', 'csrc', 'common', 'x.cuh'),
              'w') as f:
        f.write('#include <THC/THCDeviceUtils.cuh>\n')
    with pytest.raises(ValueError, match='x.cuh'):
        patch.patch_thc_includes(root)


def test_cli_reports_thc_of_the_installed_torch():
    from torch.utils.cpp_extension import include_paths
    has = any(
        osp.isfile(osp.join(p, 'THC', 'THCAtomics.cuh'))
        for p in include_paths())
    proc = subprocess.run(
        [sys.executable, patch.__file__, '--torch-has-thc'])
    assert proc.returncode == (0 if has else 1)


@pytest.fixture(scope='module')
def mmcv_sdist(tmp_path_factory):
    """The real mmcv 2.1.0 source, unpacked (downloaded from PyPI as
    install_env.sh does; skipped when PyPI cannot be reached)."""
    tmp = tmp_path_factory.mktemp('sdist')
    proc = subprocess.run(
        [sys.executable, '-m', 'pip', 'download', '-q', '--no-deps',
         '--no-binary', 'mmcv', '--no-build-isolation', '-d',
         str(tmp), 'mmcv==2.1.0'],
        capture_output=True, text=True, timeout=300)
    archive = tmp / 'mmcv-2.1.0.tar.gz'
    if proc.returncode != 0 or not archive.exists():
        pytest.skip(f'mmcv 2.1.0 sdist not downloadable: {proc.stderr[-300:]}')
    with tarfile.open(archive) as tar:
        tar.extractall(tmp, filter='data')
    return str(tmp / 'mmcv-2.1.0')


def test_patch_applies_to_the_real_mmcv_2_1_0_source(mmcv_sdist, tmp_path):
    root = str(tmp_path / 'src')
    shutil.copytree(mmcv_sdist, root)
    assert patch.patch_thc_includes(root) == list(patch.THC_FILES)


def cuda_headers():
    """Include folders for the nvcc check: ``MMEMBED_TORCH_CUDA_INCLUDE``
    (torch/include of a CUDA torch build) and ``MMEMBED_CUDA_LIBS_INCLUDE``
    (cuBLAS / cuSPARSE / cuSOLVER headers); docs/get_started.md shows how
    to get both with pip. None if unavailable."""
    torch_inc = os.environ.get('MMEMBED_TORCH_CUDA_INCLUDE')
    libs_inc = os.environ.get('MMEMBED_CUDA_LIBS_INCLUDE')
    if not torch_inc:
        from torch.utils.cpp_extension import include_paths
        torch_inc = include_paths()[0]
    if not osp.isfile(
            osp.join(torch_inc, 'c10', 'cuda', 'impl', 'cuda_cmake_macros.h')):
        return None  # a CPU torch build has no CUDA config header
    dirs = patch.torch_include_dirs(torch_inc)
    if libs_inc:
        dirs.append(libs_inc)
    return dirs


@pytest.mark.skipif(shutil.which('nvcc') is None, reason='needs nvcc')
def test_patched_sources_compile_with_nvcc(mmcv_sdist, tmp_path):
    """The proof without a GPU: nvcc compiles the patched helper header and
    ms_deform_attn_cuda.cu against torch headers that have no THC/."""
    dirs = cuda_headers()
    if dirs is None:
        pytest.skip('no CUDA torch headers: set MMEMBED_TORCH_CUDA_INCLUDE '
                    'and MMEMBED_CUDA_LIBS_INCLUDE (docs/get_started.md)')
    # hide THC/ so the check holds for torch builds that no longer ship it
    torch_copy = tmp_path / 'torch_include'
    shutil.copytree(dirs[0], torch_copy,
                    ignore=shutil.ignore_patterns('THC'))
    dirs = patch.torch_include_dirs(str(torch_copy)) + dirs[2:]
    unpatched = str(tmp_path / 'unpatched')
    shutil.copytree(mmcv_sdist, unpatched)
    with pytest.raises(RuntimeError, match='THC/THCAtomics.cuh'):
        patch.compile_check(unpatched, dirs)
    patched = str(tmp_path / 'patched')
    shutil.copytree(mmcv_sdist, patched)
    patch.patch_thc_includes(patched)
    assert 'cuda' in patch.compile_check(patched, dirs)
