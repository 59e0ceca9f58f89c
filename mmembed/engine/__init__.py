# Copyright (c) mmembed authors. All rights reserved.
from .atomic_io import atomic_write_bytes, install_atomic_local_writes
from .hooks import *  # noqa: F401,F403
from .hooks import __all__ as _hooks_all
from .optim_wrappers import CPUAutocastOptimWrapper

# checkpoints and last_checkpoint are written atomically once mmembed is
# imported (docs/reliability.md)
install_atomic_local_writes()

__all__ = [
    'atomic_write_bytes', 'install_atomic_local_writes',
    'CPUAutocastOptimWrapper', *_hooks_all
]
