# Copyright (c) mmembed authors. All rights reserved.
from .freeze_except_hook import FreezeExceptHook, freeze_except
from .iteration_seed_hook import IterationSeedHook
from .non_finite_loss_hook import NonFiniteLossError, StopOnNonFiniteLossHook

__all__ = [
    'FreezeExceptHook', 'freeze_except', 'NonFiniteLossError',
    'StopOnNonFiniteLossHook', 'IterationSeedHook'
]
