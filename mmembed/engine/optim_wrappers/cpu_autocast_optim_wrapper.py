# Copyright (c) mmembed authors. All rights reserved.
"""Mixed precision on the CPU: bf16 autocast in the forward pass.

mmengine's ``AmpOptimWrapper`` refuses to start without CUDA / NPU / MLU
(it is built around ``GradScaler``). bfloat16 has float32's exponent range,
so it needs no loss scaling, and on the CPU an autocast context in the
forward pass is all there is to it. The weights, the optimiser state and the
backward's accumulation into ``.grad`` stay float32.

Known problem (torch 2.13, docs/reliability.md): the CPU bf16 weight
gradient of a 3x3 / stride-2 convolution on a 1 x 1 input can hold
uninitialised values; FPN's P7 conv sees such an input on images of 64 px
or less.
"""
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn as nn
from mmdet.registry import OPTIM_WRAPPERS
from mmengine.optim import OptimWrapper


@OPTIM_WRAPPERS.register_module()
class CPUAutocastOptimWrapper(OptimWrapper):
    """:class:`OptimWrapper` whose ``optim_context`` runs the forward pass
    under ``torch.autocast('cpu', dtype)``.

    Args:
        dtype (str): 'bfloat16' (default) or 'float16' (CPU float16
            autocast covers fewer ops and has no loss scaling here: prefer
            bfloat16).
        **kwargs: :class:`OptimWrapper` arguments (``optimizer``,
            ``clip_grad``, ``accumulative_counts``).

    Example::

        optim_wrapper = dict(type='CPUAutocastOptimWrapper',
                             optimizer=dict(type='AdamW', lr=1e-3))
    """

    valid_dtypes = ('bfloat16', 'float16')

    def __init__(self, *args, dtype: str = 'bfloat16', **kwargs) -> None:
        if dtype not in self.valid_dtypes:
            raise ValueError(f'CPUAutocastOptimWrapper dtype must be one of '
                             f'{self.valid_dtypes}, got {dtype!r}')
        super().__init__(*args, **kwargs)
        self.cast_dtype = getattr(torch, dtype)

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        with super().optim_context(model), torch.autocast(
                device_type='cpu', dtype=self.cast_dtype):
            yield
