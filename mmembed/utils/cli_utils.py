# Copyright (c) mmembed authors. All rights reserved.
"""What every command-line entry point (``tools/``, ``demo/``, the
``mmembed`` command) shares: the ``--allow-partial-load`` flag, argparse
descriptions taken from the module docstring, and ending on a user error
with its message instead of a traceback."""
import argparse
import datetime
import json
import os
import os.path as osp
import platform
import sys
from typing import Any, Callable, List, Optional, TypeVar

from .arg_checks import UnknownArgumentError, UnknownKeyError
from .checkpoint import CorruptCheckpointError, UnsafeCheckpointError
from .load_check import ENV_ALLOW, CheckpointMismatchError

# errors whose message says what is wrong and how to fix it; a traceback
# through mmengine's builders adds nothing to them
USER_ERRORS = (CheckpointMismatchError, CorruptCheckpointError,
               UnknownArgumentError, UnknownKeyError, UnsafeCheckpointError)

T = TypeVar('T')


def doc_summary(doc: Optional[str]) -> str:
    """The first paragraph of a docstring as one line (an argparse
    ``description`` that is not cut mid-sentence)."""
    paragraph = (doc or '').strip().split('\n\n')[0]
    return ' '.join(line.strip() for line in paragraph.splitlines())


def add_allow_partial_load_arg(parser: argparse.ArgumentParser) -> None:
    """``--allow-partial-load``: load a checkpoint even when it looks like
    another model's (see :mod:`mmembed.utils.load_check`)."""
    parser.add_argument(
        '--allow-partial-load',
        action='store_true',
        help='load the checkpoint even when most of the model finds no '
        'weights in it or a part of the model gets another model\'s '
        f'weights (otherwise refused; same as {ENV_ALLOW}=1)')


def apply_allow_partial_load(args: argparse.Namespace) -> None:
    """Honour ``--allow-partial-load`` (in this process and in the
    processes it starts)."""
    if getattr(args, 'allow_partial_load', False):
        os.environ[ENV_ALLOW] = '1'


def run_main(main: Callable[[], T], prog: str) -> T:
    """``main()``, ending the process with ``prog: message`` (exit 1) on
    one of :data:`USER_ERRORS`."""
    try:
        return main()
    except USER_ERRORS as exc:
        sys.exit(f'{prog}: {exc}')


def write_kernel_report(out: str, doc: Optional[str], threads: int,
                        rounds: int, cases: List[Any]) -> dict:
    """Write a kernel benchmark's JSON (``tools/analysis_tools/*_benchmark.py``
    that time one op against its peer): the tool's summary line, the
    machine (platform, torch, torch threads, CPUs), the date, the rounds
    and the measured cases. Prints the path; returns the report."""
    import torch
    report = dict(description=doc_summary(doc),
                  machine=dict(platform=platform.platform(),
                               torch=torch.__version__,
                               torch_threads=threads,
                               cpus=os.cpu_count()),
                  date=datetime.date.today().isoformat(),
                  rounds=rounds,
                  cases=cases)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(report, f, indent=1)
    print(f'wrote {out}')
    return report
