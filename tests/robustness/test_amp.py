# Copyright (c) mmembed authors. All rights reserved.
"""Mixed precision, for every model in MODEL_SPECS.

bf16 autocast on the CPU for a few optimiser steps: every loss finite, the
weights finite and updated. (The 50-iteration AP comparison with fp32 is in
tools/analysis_tools/reliability_check.py; the CUDA fp16 configs are
configs/*/*_amp.py, built here.)
"""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from robustness_helpers import MODEL_IDS, MODEL_SPECS, build_model

from mmembed.testing import get_config_root


@pytest.fixture(params=MODEL_SPECS, ids=MODEL_IDS)
def spec(request):
    return request.param


def _batch(model):
    from mmdet.testing import demo_mm_inputs
    # demo_mm_inputs draws its masks from numpy's global generator
    np.random.seed(0)
    packed = demo_mm_inputs(2, [[3, 64, 64], [3, 64, 48]], num_items=[3, 2],
                            num_classes=2, with_mask=True)
    return model.data_preprocessor(packed, True)


def test_bf16_autocast_trains_with_finite_losses(spec, request):
    # Open finding (issue 12, docs/reliability.md): the losses stay finite,
    # but in some runs (2 of 3 consecutive runs of this file, same seeds)
    # the weights turn non-finite after the AdamW steps, i.e. a bf16
    # backward on the CPU produced inf / NaN gradients. Not strict while it
    # is not understood; the weight check below still runs and reports.
    if 'cpu_bf16_xfail' not in spec.extra:
        request.applymarker(pytest.mark.xfail(
            strict=False, raises=AssertionError,
            reason='bf16 CPU backward gives non-finite gradients in some '
            'runs'))
    else:
        # strict: passes loudly once the op gains a kernel or is cast
        request.applymarker(pytest.mark.xfail(
            strict=True, raises=NotImplementedError,
            reason=spec.extra['cpu_bf16_xfail']))
    model = build_model(spec).train()
    optim = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = _batch(model)
    before = [p.detach().clone() for p in model.parameters()]
    for step in range(3):
        with torch.autocast('cpu', dtype=torch.bfloat16):
            losses = model(**data, mode='loss')
        total = sum(v.sum() for k, v in losses.items() if 'loss' in k)
        for name, value in losses.items():
            if 'loss' in name:
                assert torch.isfinite(value).all(), (step, name, value)
        optim.zero_grad()
        total.float().backward()
        optim.step()
    assert all(torch.isfinite(p).all() for p in model.parameters())
    changed = sum(not torch.equal(a, p) for a, p in
                  zip(before, model.parameters()))
    assert changed > 0.5 * len(before)


def test_amp_config_exists_and_uses_amp_optim_wrapper(spec):
    amp = osp.join(get_config_root(),
                   spec.config.replace('.py', '_amp.py'))
    if not osp.isfile(amp):
        pytest.fail(f'no fp16 AMP config next to {spec.config}: add {amp}')
    cfg = Config.fromfile(amp)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.get('dtype', 'float16') == 'float16'
    base = Config.fromfile(osp.join(get_config_root(), spec.config))
    assert cfg.optim_wrapper.optimizer == base.optim_wrapper.optimizer
    assert cfg.model == base.model
