# Copyright (c) mmembed authors. All rights reserved.
"""Safe checkpoint loading for mmengine 0.10.x on torch >= 2.6.

torch 2.6 made ``torch.load(weights_only=True)`` the default. mmengine 0.10.7
calls ``torch.load`` without ``weights_only``, and its own checkpoints hold
more than tensors: the message hub pickles
``mmengine.logging.HistoryBuffer`` objects (with numpy arrays, numpy scalars
and references to the buffer's statistics methods, pickled as
``getattr(HistoryBuffer, 'mean')``). So ``tools/test.py``, ``--resume``,
``load_from``, ``init_detector`` and ``DetInferencer`` all fail with
``Unsupported global: GLOBAL mmengine.logging.history_buffer.HistoryBuffer``.

Instead of turning ``weights_only`` off (which lets a checkpoint run
arbitrary code), :func:`install_safe_checkpoint_loading` allowlists exactly
the globals an mmengine checkpoint contains, with ``getattr`` narrowed to the
four statistics methods of ``HistoryBuffer``, and replaces mmengine's local
file loader with one that always passes ``weights_only=True`` and turns
torch's refusal into an error that says what was refused and what to do.
"""
import pickle
import re
from typing import Any, Callable, List, Optional, Tuple, Union

import numpy as np
import torch
from packaging.version import Version

_HISTORY_BUFFER_METHODS = frozenset({'min', 'max', 'current', 'mean'})
_INSTALLED = False


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds a pickled object outside the allowlist."""


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` as a checkpoint may use it: only HistoryBuffer's
    statistics methods (``HistoryBuffer._statistics_methods``)."""
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({obj!r}, {name!r}); only '
        f'HistoryBuffer.{{{", ".join(sorted(_HISTORY_BUFFER_METHODS))}}} '
        'is allowed')


def _numpy_core() -> Any:
    # numpy >= 2 moved the pickled helpers from numpy.core to numpy._core
    return getattr(np, '_core', None) or np.core


def mmengine_checkpoint_globals() -> List[Union[Callable, Tuple[Callable,
                                                                str]]]:
    """Every global an mmengine/mmdet checkpoint pickles besides tensors."""
    from mmengine.logging import HistoryBuffer
    core = _numpy_core()
    numeric = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8,
               np.uint16, np.uint32, np.uint64, np.float16, np.float32,
               np.float64)
    allowed: List[Union[Callable, Tuple[Callable, str]]] = [
        HistoryBuffer,
        np.ndarray,
        np.dtype,
        core.multiarray._reconstruct,
        core.multiarray.scalar,
        # numpy >= 1.25 pickles dtypes through their classes
        *[type(np.dtype(t)) for t in numeric],
        (_history_buffer_getattr, 'builtins.getattr'),
    ]
    # numpy 2 writes 'numpy._core...'; checkpoints saved with numpy 1 say
    # 'numpy.core...'. Map the old names to the same objects.
    allowed += [(core.multiarray._reconstruct,
                 'numpy.core.multiarray._reconstruct'),
                (core.multiarray.scalar, 'numpy.core.multiarray.scalar')]
    return allowed


def _explain(filename: str, exc: Exception) -> str:
    text = str(exc)
    # torch names the refused global after an upper-case 'GLOBAL'
    match = re.search(r'GLOBAL ([\w.]+)', text) \
        or re.search(r'but got (<[^>]+>)', text) \
        or re.search(r'unrecognized function ([^\s]+)', text)
    what = f'the global {match.group(1)}' if match else \
        'a pickled object that torch refused'
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    reason = next((line for line in lines if 'GLOBAL' in line
                   or 'WeightsUnpickler' in line), lines[-1] if lines else '')
    return (
        f'Refusing to load checkpoint {filename!r}: it contains {what}, which '
        'is not a tensor, a plain container or one of the types mmengine '
        'checkpoints hold (HistoryBuffer, numpy arrays and scalars). '
        'mmembed loads checkpoints with torch.load(weights_only=True) because '
        'unpickling arbitrary objects can run arbitrary code. If you made '
        'this file yourself and trust it, allowlist the type with '
        'torch.serialization.add_safe_globals([...]) before loading, or '
        're-save the checkpoint as a plain state dict '
        '(torch.save({"state_dict": model.state_dict()}, path)). '
        f'torch said: {reason}')


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file is truncated or not a torch checkpoint."""


def _corruption(filename: Any) -> Optional[str]:
    """Why ``filename`` cannot be a complete torch checkpoint, or None.

    torch >= 1.6 writes zip archives (central directory at the end, so a
    truncated file is not a zip); the legacy format starts with the pickle
    protocol byte 0x80."""
    import os
    import zipfile
    if not isinstance(filename, (str, os.PathLike)) or \
            not os.path.isfile(filename):
        return None
    size = os.path.getsize(filename)
    if size == 0:
        return 'the file is empty (0 bytes)'
    if zipfile.is_zipfile(filename):
        return None
    with open(filename, 'rb') as f:
        if f.read(1) == b'\x80':
            return None
    return (f'the file ({size} bytes) is not a complete zip archive: it was '
            'truncated (a run killed while saving, a partial copy or '
            'download) or is not a torch checkpoint')


def safe_torch_load(filename: Any, map_location: Optional[Any] = None) -> Any:
    """``torch.load(weights_only=True)`` with mmengine's globals allowed and
    a clear :class:`UnsafeCheckpointError` for anything else, or
    :class:`CorruptCheckpointError` for a truncated file."""
    try:
        return torch.load(
            filename, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError) as exc:
        reason = _corruption(filename)
        if reason is not None:
            raise CorruptCheckpointError(
                f'Cannot load checkpoint {str(filename)!r}: {reason}. Use an '
                'earlier checkpoint (last_checkpoint in the work dir names '
                f'the newest) or copy it again. torch said: '
                f'{type(exc).__name__}: {str(exc)[:200]}') from None
        if isinstance(exc, pickle.UnpicklingError):
            raise UnsafeCheckpointError(_explain(str(filename),
                                                 exc)) from None
        raise


def _load_from_local(filename: str, map_location: Optional[Any] = None) -> Any:
    """Replacement for ``mmengine.runner.checkpoint.load_from_local``."""
    import os.path as osp
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return safe_torch_load(filename, map_location=map_location)


def install_safe_checkpoint_loading() -> None:
    """Allowlist mmengine's checkpoint globals and route local checkpoint
    loads through :func:`safe_torch_load`. Idempotent.

    torch < 2.4 has no allowlist API; there mmengine's loader is left as is
    (those versions default to ``weights_only=False``, as mmengine expects).
    """
    global _INSTALLED
    if _INSTALLED:
        return
    if Version(torch.__version__.split('+')[0]) < Version('2.4.0'):
        _INSTALLED = True
        return
    from mmengine.runner.checkpoint import CheckpointLoader
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())
    CheckpointLoader.register_scheme(
        prefixes='', loader=_load_from_local, force=True)
    _INSTALLED = True
