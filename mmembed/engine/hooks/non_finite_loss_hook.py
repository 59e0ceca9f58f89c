# Copyright (c) mmembed authors. All rights reserved.
"""Stop a run whose loss became NaN or inf, saying where and which term."""
import math
from typing import Dict, Optional, Sequence, Union

import torch
from mmengine.hooks import Hook
from mmdet.registry import HOOKS

DATA_BATCH = Optional[Union[dict, tuple, list]]


class NonFiniteLossError(RuntimeError):
    """A training loss became NaN or inf."""


@HOOKS.register_module()
class StopOnNonFiniteLossHook(Hook):
    """Raise :class:`NonFiniteLossError` after the first iteration whose loss
    terms are not all finite, naming the iteration, the epoch, every
    non-finite term and the images of the batch.

    mmengine's loggers keep printing ``loss: nan`` and the optimizer keeps
    stepping on NaN gradients; this hook ends the run instead, before the
    next checkpoint can store the corrupted weights (checkpoints are saved
    by ``CheckpointHook`` in ``after_train_iter`` too, and this hook runs
    first: priority ``'ABOVE_NORMAL'``).

    Args:
        keys: loss terms to check; None (default) checks every logged value
            whose name contains ``'loss'``.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, keys: Optional[Sequence[str]] = None) -> None:
        self.keys = None if keys is None else tuple(keys)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[Dict] = None) -> None:
        if not outputs:
            return
        bad = {}
        for name, value in outputs.items():
            if self.keys is None and 'loss' not in name:
                continue
            if self.keys is not None and name not in self.keys:
                continue
            number = (float(value.detach().float().mean())
                      if isinstance(value, torch.Tensor) else float(value))
            if not math.isfinite(number):
                bad[name] = number
        if not bad:
            return
        images = []
        if isinstance(data_batch, dict):
            for sample in data_batch.get('data_samples', [])[:8]:
                images.append(str(sample.metainfo.get('img_path',
                                                      sample.metainfo.get(
                                                          'img_id'))))
        terms = ', '.join(f'{k}={v}' for k, v in bad.items())
        raise NonFiniteLossError(
            f'training stopped at iteration {runner.iter + 1} (epoch '
            f'{runner.epoch + 1}, batch {batch_idx}): non-finite loss '
            f'term(s) {terms}. Batch images: {images}. The weights after '
            'this iteration were not saved; lower the learning rate, enable '
            'gradient clipping or check these images, then resume from the '
            'last checkpoint.')
