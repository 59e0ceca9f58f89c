# Copyright (c) mmembed authors. All rights reserved.
"""Make the mmcv 2.1.0 sources build against a torch without ``THC/``.

torch 2.12 removed the last ``THC/`` headers. mmcv 2.1.0's CUDA sources still
include ``THC/THCAtomics.cuh`` (for ``atomicAdd`` on ``at::Half`` /
``at::BFloat16``), in exactly two files; its successor header in ATen is
``ATen/cuda/Atomic.cuh``, which declares the same overloads. Without the
patch a CUDA build (``FORCE_CUDA=1`` or a visible GPU) of mmcv 2.1.0 against
torch >= 2.12 fails with ``THC/THCAtomics.cuh: No such file or directory``.

    python tools/misc/patch_mmcv_sources.py SRC_DIR   # the unpacked sdist
    python tools/misc/patch_mmcv_sources.py --torch-has-thc   # exit 0 / 1
    # proof without a GPU: nvcc compiles the patched helper header
    python tools/misc/patch_mmcv_sources.py SRC_DIR --compile-check \
        --include TORCH_INCLUDE --include CUDA_LIBS_INCLUDE

``tools/misc/install_env.sh`` calls it before building mmcv. The patch is
pinned: it refuses any source tree that is not mmcv 2.1.0, so a new mmcv
release is never edited blindly.
"""
import argparse
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import tempfile
from typing import List, Sequence

PINNED_VERSION = '2.1.0'
OLD_INCLUDE = '#include <THC/THCAtomics.cuh>'
NEW_INCLUDE = '#include <ATen/cuda/Atomic.cuh>'
# the files of mmcv 2.1.0 that include THC, relative to the source root
THC_FILES = (
    'mmcv/ops/csrc/common/pytorch_cuda_helper.hpp',
    'mmcv/ops/csrc/pytorch/cuda/ms_deform_attn_cuda.cu',
)


def source_version(src_dir: str) -> str:
    """The ``__version__`` in ``mmcv/version.py`` of a source tree."""
    path = osp.join(src_dir, 'mmcv', 'version.py')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{src_dir} is not an mmcv source tree '
                                f'({path} is missing)')
    with open(path) as f:
        match = re.search(r"__version__\s*=\s*'([^']+)'", f.read())
    if match is None:
        raise ValueError(f'no __version__ found in {path}')
    return match.group(1)


def patch_thc_includes(src_dir: str) -> List[str]:
    """Replace the ``THC/THCAtomics.cuh`` includes of mmcv 2.1.0 by
    ``ATen/cuda/Atomic.cuh``, in place.

    Args:
        src_dir: root of the unpacked mmcv 2.1.0 sdist (holds ``setup.py``
            and ``mmcv/``).

    Returns:
        the relative paths that were changed; empty if already patched
        (running it twice is safe).

    Raises:
        ValueError: the tree is not mmcv 2.1.0, or a pinned file no longer
            has the expected include (an unknown variant: better stop than
            build something half-patched), or another file includes THC.
    """
    version = source_version(src_dir)
    if version != PINNED_VERSION:
        raise ValueError(f'the THC patch is pinned to mmcv {PINNED_VERSION}; '
                         f'{src_dir} holds mmcv {version}')
    changed = []
    for rel in THC_FILES:
        path = osp.join(src_dir, rel)
        with open(path) as f:
            text = f.read()
        if OLD_INCLUDE in text:
            with open(path, 'w') as f:
                f.write(text.replace(OLD_INCLUDE, NEW_INCLUDE))
            changed.append(rel)
        elif NEW_INCLUDE not in text:
            raise ValueError(f'{path} has neither {OLD_INCLUDE!r} nor '
                             f'{NEW_INCLUDE!r}: not the mmcv '
                             f'{PINNED_VERSION} source this patch knows')
    leftovers = [
        osp.relpath(osp.join(root, name), src_dir)
        for root, _, names in os.walk(osp.join(src_dir, 'mmcv', 'ops'))
        for name in names if name.endswith(('.h', '.hpp', '.cu', '.cuh',
                                            '.cpp'))
        and 'THC/' in open(osp.join(root, name), errors='replace').read()
    ]
    if leftovers:
        raise ValueError(f'other files still include THC headers: '
                         f'{leftovers}')
    return changed


def torch_has_thc() -> bool:
    """Whether the installed torch still ships ``THC/THCAtomics.cuh``."""
    from torch.utils.cpp_extension import include_paths
    return any(
        osp.isfile(osp.join(p, 'THC', 'THCAtomics.cuh'))
        for p in include_paths())


# a translation unit that includes the patched helper and instantiates the
# atomicAdd overloads the THC header used to provide
_PROBE_CU = """
#include "pytorch_cuda_helper.hpp"
__global__ void add_half(at::Half *out, const at::Half *in) {
  atomicAdd(out, in[threadIdx.x]);
}
__global__ void add_bf16(at::BFloat16 *out, const at::BFloat16 *in) {
  atomicAdd(out, in[threadIdx.x]);
}
__global__ void add_float(float *out, const float *in) {
  atomicAdd(out, in[threadIdx.x]);
}
"""


def torch_include_dirs(torch_include: str) -> List[str]:
    """The include folders of a torch build (``torch/include``)."""
    return [torch_include, osp.join(torch_include, 'torch', 'csrc', 'api',
                                    'include')]


def compile_check(src_dir: str, include_dirs: Sequence[str],
                  arch: str = 'sm_90', nvcc: str = 'nvcc') -> str:
    """Compile, with ``nvcc``, a kernel that includes mmcv's
    ``pytorch_cuda_helper.hpp`` and mmcv's ``ms_deform_attn_cuda.cu`` (the
    two users of THC) from ``src_dir``; return nvcc's version line.

    Args:
        src_dir: mmcv source root (patched or not).
        include_dirs: torch's include folders (a CUDA build of torch: it
            ships ``c10/cuda/impl/cuda_cmake_macros.h``) and the CUDA
            libraries' headers torch includes (cuBLAS, cuSPARSE,
            cuSOLVER).
        arch: GPU architecture to compile for.

    Raises:
        RuntimeError: with nvcc's output when the compilation fails.
    """
    common = osp.join(src_dir, 'mmcv', 'ops', 'csrc', 'common')
    with tempfile.TemporaryDirectory() as tmp:
        probe = osp.join(tmp, 'probe.cu')
        with open(probe, 'w') as f:
            f.write(_PROBE_CU)
        # the probe stands for every op that includes the helper; the
        # second file is the other one that included THC
        sources = [probe, osp.join(src_dir, THC_FILES[1])]
        for i, source in enumerate(sources):
            cmd = [nvcc, '-std=c++17', f'-arch={arch}', '-c', source, '-o',
                   osp.join(tmp, f'{i}.o'), '-I', common, '-I',
                   osp.join(common, 'cuda')]
            for path in include_dirs:
                cmd += ['-I', path]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                errors = [line for line in proc.stderr.splitlines()
                          if 'error' in line]
                raise RuntimeError(
                    f'nvcc failed on {osp.basename(source)}:\n' +
                    '\n'.join(errors[:10] or proc.stderr.splitlines()[-10:]))
    version = subprocess.run([nvcc, '--version'], capture_output=True,
                             text=True).stdout.strip().splitlines()
    return version[-1] if version else 'nvcc'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src_dir', nargs='?', help='unpacked mmcv sdist')
    parser.add_argument('--torch-has-thc', action='store_true',
                        help='only report (exit code) whether torch ships '
                        'the THC headers')
    parser.add_argument('--compile-check', action='store_true',
                        help='after patching, compile the helper header '
                        'with nvcc')
    parser.add_argument('--include', action='append', default=[],
                        help='include folder for --compile-check: a CUDA '
                        "torch's torch/include (its api/include is added) "
                        'and the cuBLAS/cuSPARSE/cuSOLVER headers')
    parser.add_argument('--arch', default='sm_90')
    args = parser.parse_args(argv)
    if args.torch_has_thc:
        return 0 if torch_has_thc() else 1
    if not args.src_dir:
        parser.error('SRC_DIR is required')
    changed = patch_thc_includes(args.src_dir)
    print(f'[patch] THC -> ATen/cuda/Atomic.cuh in {len(changed)} file(s)'
          + (': ' + ', '.join(changed) if changed else ' (already patched)'))
    if args.compile_check:
        if shutil.which('nvcc') is None:
            print('[patch] --compile-check needs nvcc on PATH')
            return 1
        includes = []
        for path in args.include:
            includes += torch_include_dirs(path) if osp.isdir(
                osp.join(path, 'ATen')) else [path]
        version = compile_check(args.src_dir, includes, args.arch)
        print(f'[patch] nvcc compiled pytorch_cuda_helper.hpp and '
              f'ms_deform_attn_cuda.cu for {args.arch} ({version})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
