# Copyright (c) mmembed authors. All rights reserved.
"""``mmembed <command> ...``: run mmembed's tools from an installed package.

The tools ship in ``mmembed/.mim/tools`` (and ``.mim/demo``), as mmdet's
do; this entry point runs them without having to know where pip put them::

    mmembed train my_config.py --work-dir work_dirs/mine
    mmembed test my_config.py work_dirs/mine/epoch_12.pth
    mmembed export-onnx my_config.py ckpt.pth --out model.onnx
    mmembed --version                              # mmembed and its stack
    python -m mmembed.cli train my_config.py       # same, without the script

The current folder is put first on ``sys.path`` (as ``python -m`` does), so
``custom_imports=dict(imports=['my_project'])`` finds a package next to the
config, and mmembed is imported before the config is read, so
``_base_ = 'mmembed::...'`` resolves.
"""
import os
import os.path as osp
import runpy
import sys
from typing import List, Optional

# command -> script under mmembed/.mim
COMMANDS = {
    'train': 'tools/train.py',
    'test': 'tools/test.py',
    'print-config': 'tools/misc/print_config.py',
    'browse-dataset': 'tools/analysis_tools/browse_dataset.py',
    'benchmark': 'tools/analysis_tools/benchmark.py',
    'export-onnx': 'tools/deployment/export_onnx.py',
    'demo': 'demo/image_demo.py',
}


def _usage() -> str:
    return ('usage: mmembed {' + ','.join(COMMANDS) + '} [ARGS ...]\n'
            '       mmembed --version\n'
            'Runs the tool of that name from mmembed/.mim; '
            'mmembed COMMAND --help lists its arguments.')


def version_text() -> str:
    """``mmembed X (mmdet X, mmcv X, mmengine X, torch X)``; the stack's
    versions come from the installed distributions' metadata, so a broken
    mmcv build still gets a version line."""
    from importlib.metadata import PackageNotFoundError, version

    from mmembed.version import __version__

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return 'not installed'

    stack = ', '.join(f'{name} {installed(name)}'
                      for name in ('mmdet', 'mmcv', 'mmengine', 'torch'))
    return f'mmembed {__version__} ({stack})'


def main(argv: Optional[List[str]] = None) -> None:
    """Dispatch ``argv[0]`` to its tool script with the remaining args."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(_usage())
        sys.exit(0 if argv else 2)
    if argv[0] in ('-V', '--version'):
        print(version_text())
        sys.exit(0)
    command, args = argv[0], argv[1:]
    if command not in COMMANDS:
        sys.exit(f'mmembed: unknown command {command!r}\n{_usage()}')

    import mmembed  # noqa: F401  (registers the mmembed:: scope first)
    from mmembed.utils.mim import mim_dir

    script = osp.join(mim_dir(), COMMANDS[command])
    if not osp.isfile(script):
        sys.exit(f'mmembed {command}: {script} is missing from this install')
    # the tools import helpers that sit next to them (tool_utils.py), and
    # user packages next to the config
    sys.path[:0] = [os.getcwd(), osp.dirname(script)]
    sys.argv = [script] + args
    runpy.run_path(script, run_name='__main__')


if __name__ == '__main__':
    main()
