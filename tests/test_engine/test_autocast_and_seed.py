# Copyright (c) mmembed authors. All rights reserved.
"""CPUAutocastOptimWrapper (bf16 forward on the CPU, fp32 weights) and
IterationSeedHook (per-iteration seeds from seed, iteration and rank)."""
import pytest
import torch
from mmdet.registry import HOOKS, OPTIM_WRAPPERS

import mmembed  # noqa: F401  (registers both)


def test_cpu_autocast_wrapper_runs_the_forward_in_bf16():
    model = torch.nn.Conv2d(3, 4, 3)
    wrapper = OPTIM_WRAPPERS.build(
        dict(type='CPUAutocastOptimWrapper',
             optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
    x = torch.randn(1, 3, 8, 8)
    with wrapper.optim_context(model):
        out = model(x)
    assert out.dtype == torch.bfloat16
    assert model(x).dtype == torch.float32  # outside: unchanged
    before = model.weight.detach().clone()
    wrapper.update_params(out.float().square().mean())
    assert model.weight.dtype == torch.float32
    assert not torch.equal(before, model.weight)


def test_cpu_autocast_wrapper_rejects_unknown_dtype():
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match='dtype'):
        OPTIM_WRAPPERS.build(
            dict(type='CPUAutocastOptimWrapper', dtype='float64',
                 optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))


class _Runner:
    def __init__(self, seed, iteration):
        self.seed, self.iter = seed, iteration


def test_iteration_seed_hook_draws_depend_only_on_seed_and_iteration():
    hook = HOOKS.build(dict(type='IterationSeedHook'))

    def draws(seed, iteration):
        torch.manual_seed(1234 + iteration)  # whatever happened before
        hook.before_train_iter(_Runner(seed, iteration), 0)
        return torch.rand(3)

    assert torch.equal(draws(0, 5), draws(0, 5))
    assert not torch.equal(draws(0, 5), draws(0, 6))
    assert not torch.equal(draws(0, 5), draws(1, 5))
    assert hook.iteration_seed(_Runner(2**40, 10**9)) < 2**32
    # a fixed seed overrides the run's
    fixed = HOOKS.build(dict(type='IterationSeedHook', seed=7))
    assert fixed.iteration_seed(_Runner(0, 3)) == fixed.iteration_seed(
        _Runner(99, 3))
