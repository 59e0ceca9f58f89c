# Copyright (c) mmembed authors. All rights reserved.
"""Seed the random number generators at every training iteration from
(run seed, iteration, rank), so a resumed run draws the numbers the
uninterrupted run drew.

mmengine 0.10 re-seeds the generators on ``--resume`` with the run's seed
but does not bring them to the state they had at the saved iteration, and
saving that state in the checkpoint is not enough: between the save and the
next iteration the loop draws from the global generator itself (a new
dataloader iterator takes a base seed at every epoch boundary; the resumed
loop creates others while it skips the trained batches). A model that draws
random numbers in its loss (ISTR's random soft mask targets) therefore
trains on other draws after a resume than without the interruption.

With this hook every iteration's draws depend only on the run's seed, the
iteration and the rank, and the losses after a resume equal the
uninterrupted run's iteration by iteration
(tests/robustness/test_faults.py). Ranks get distinct streams. Not covered:
the data pipeline's draws for the first batch after a resume (the loop loads
it before any hook runs).
"""
import random

import numpy as np
import torch
from mmdet.registry import HOOKS
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook


@HOOKS.register_module()
class IterationSeedHook(Hook):
    """``custom_hooks = [dict(type='IterationSeedHook')]``.

    Args:
        seed (int, optional): base seed; None (default) takes the run's
            (``randomness.seed``, or the one mmengine drew).
    """

    priority = 'VERY_HIGH'  # before any other hook of the iteration draws

    def __init__(self, seed=None) -> None:
        self.seed = seed

    def iteration_seed(self, runner) -> int:
        """The seed of ``runner.iter`` on this rank (< 2**32)."""
        base = self.seed if self.seed is not None else runner.seed
        if base is None:
            base = 0
        world = get_world_size()
        return (int(base) * 1_000_003 + runner.iter * world +
                get_rank()) % (2**32)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        seed = self.iteration_seed(runner)
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)  # CUDA generators too
