# Copyright (c) mmembed authors. All rights reserved.
"""Atomic local file writes for mmengine (checkpoints, ``last_checkpoint``).

mmengine 0.10.7 saves a checkpoint with ``LocalBackend.put``, which opens
the final path and writes into it: a run killed during the write leaves a
truncated ``iter_k.pth``, and ``last_checkpoint`` may already name it.
:func:`install_atomic_local_writes` makes ``put`` / ``put_text`` write to a
temporary file in the same folder, flush and fsync it, then ``os.replace``
it onto the target (atomic on POSIX and Windows), so a reader sees the old
file or the complete new one, never a partial one.
"""
import os
import os.path as osp
import tempfile
from typing import Union

_INSTALLED = False


def atomic_write_bytes(data: bytes, filepath: Union[str, os.PathLike]) -> None:
    """Write ``data`` to ``filepath`` via a temporary file + rename."""
    filepath = os.fspath(filepath)
    folder = osp.dirname(osp.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=folder, prefix=f'.{osp.basename(filepath)}.', suffix='.tmp')
    try:
        # mkstemp creates 0600 files; give the target the usual umask mode
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise


def install_atomic_local_writes() -> None:
    """Route mmengine ``LocalBackend.put`` / ``put_text`` through
    :func:`atomic_write_bytes`. Idempotent."""
    global _INSTALLED
    if _INSTALLED:
        return
    from mmengine.fileio.backends import LocalBackend

    def put(self, obj: bytes, filepath) -> None:
        atomic_write_bytes(obj, filepath)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write_bytes(obj.encode(encoding), filepath)

    put.__doc__ = 'Atomic ``LocalBackend.put`` (mmembed.engine.atomic_io).'
    put_text.__doc__ = put.__doc__
    LocalBackend.put = put
    LocalBackend.put_text = put_text
    _INSTALLED = True
