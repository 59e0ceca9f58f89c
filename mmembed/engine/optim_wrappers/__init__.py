# Copyright (c) mmembed authors. All rights reserved.
from .cpu_autocast_optim_wrapper import CPUAutocastOptimWrapper

__all__ = ['CPUAutocastOptimWrapper']
