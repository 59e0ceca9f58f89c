# Copyright (c) mmembed authors. All rights reserved.
"""Imported by a training run of the fault tests: SIGKILL the process in
the middle of writing the checkpoint named by ``MMEMBED_KILL_IN_WRITE``.

mmembed's atomic writer (``mmembed.engine.atomic_io``) writes the bytes to
a temporary file, fsyncs it, then renames it over the target. The process
dies just before that rename, with the whole temporary file on disk: the
latest moment a crash can hit the write without it having succeeded."""
import os
import os.path as osp
import signal

import mmembed.engine.atomic_io as atomic_io

_TARGET = os.environ.get('MMEMBED_KILL_IN_WRITE')


class _DyingOs:
    """``os`` for the atomic writer, whose ``replace`` onto the target
    kills the process instead."""

    def __getattr__(self, name):
        return getattr(os, name)

    @staticmethod
    def replace(src, dst):
        if _TARGET and osp.basename(dst) == _TARGET:
            os.kill(os.getpid(), signal.SIGKILL)
        return os.replace(src, dst)


atomic_io.os = _DyingOs()
