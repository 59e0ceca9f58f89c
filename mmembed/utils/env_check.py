# Copyright (c) mmembed authors. All rights reserved.
"""Dependency checks run by ``import mmembed``.

mmembed is a plug-in for MMDetection 3.3; it needs a matching mmengine and an
mmcv *with its compiled ops* (``mmdet.models`` imports ``mmcv.ops`` at import
time). The failure modes users hit most (mmcv without ``_ext``, mmcv 2.2 with
mmdet 3.3, a torch too old) produce confusing tracebacks deep inside mmdet, so
we check first and say what to do.
"""
from importlib import metadata
from typing import List, Optional, Tuple

from packaging.version import Version

# (distribution, minimum inclusive, maximum exclusive, how to fix)
REQUIREMENTS: Tuple[Tuple[str, str, str, str], ...] = (
    ('torch', '2.1.0', '3.0.0',
     'pip install "torch>=2.1" (this project tests torch 2.13 CPU)'),
    ('mmengine', '0.10.0', '1.0.0', 'pip install "mmengine==0.10.7"'),
    ('mmcv', '2.0.0rc4', '2.2.0',
     'build mmcv 2.1.0 with its ops: pip install "setuptools<81" && '
     'MMCV_WITH_OPS=1 pip install --no-build-isolation "mmcv==2.1.0" '
     '(mmdet 3.3.0 refuses mmcv>=2.2.0); or simply run `make install`'),
    ('mmdet', '3.3.0', '4.0.0', 'pip install "mmdet==3.3.0"'),
)


def _installed_version(dist: str) -> Optional[str]:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def find_dependency_problems() -> List[str]:
    """Return one human-readable line per dependency problem (empty = OK)."""
    problems = []
    for dist, low, high, fix in REQUIREMENTS:
        found = _installed_version(dist)
        if found is None:
            problems.append(f'{dist} is not installed; fix: {fix}')
            continue
        # local build tags such as '+cpu' are not part of the comparison
        version = Version(Version(found).base_version) if '+' in found \
            else Version(found)
        if not Version(low) <= version < Version(high):
            problems.append(f'{dist}=={found} is installed but mmembed needs '
                            f'{dist}>={low},<{high}; fix: {fix}')
    if not problems:
        problems.extend(find_mmcv_ops_problems())
    return problems


def find_mmcv_ops_problems() -> List[str]:
    """Check that mmcv's compiled extension loads (``mmcv-lite`` lacks it)."""
    try:
        from mmcv.utils import ext_loader
        ext_loader.load_ext('_ext', ['nms', 'roi_align_forward'])
    except Exception as exc:  # ImportError, AssertionError, OSError
        return [
            'mmcv is installed without its compiled ops (mmcv._ext does not '
            f'load: {type(exc).__name__}: {exc}). mmdet needs them. Rebuild '
            'mmcv against the installed torch: pip uninstall -y mmcv && pip '
            'install "setuptools<81" && MMCV_WITH_OPS=1 pip install '
            '--no-build-isolation --no-cache-dir "mmcv==2.1.0" (or run '
            '`make install`). See docs/get_started.md#troubleshooting.'
        ]
    return []


def check_dependencies() -> None:
    """Raise ImportError listing every dependency problem with its fix."""
    problems = find_dependency_problems()
    if problems:
        raise ImportError('mmembed cannot be imported:\n  - ' +
                          '\n  - '.join(problems))
