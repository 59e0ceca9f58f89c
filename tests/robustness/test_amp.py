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
from robustness_helpers import (MODEL_IDS, MODEL_SPECS, build_model,
                                proposal_patch_batch)

from mmembed.testing import get_config_root


@pytest.fixture(params=MODEL_SPECS, ids=MODEL_IDS)
def spec(request):
    return request.param


def _batch(model, spec):
    from mmdet.testing import demo_mm_inputs
    if spec.family == 'proposal':  # two 192 x 192 training patches
        return model.data_preprocessor(proposal_patch_batch(spec), True)
    # demo_mm_inputs draws its masks from numpy's global generator.
    # 128 px, not 64: at 64 px P6 is 1 x 1, and torch 2.13's CPU bf16
    # weight gradient of a 3x3 / stride-2 conv on a 1 x 1 input (the P7
    # conv) leaves the taps that see only padding uninitialised (inf / NaN /
    # 1e38 in ~1 run in 3; fp32 gives exact zeros). docs/reliability.md has
    # the five-line reproduction; it is not an mmembed bug, and real
    # images are far larger than 64 px.
    np.random.seed(0)
    packed = demo_mm_inputs(2, [[3, 128, 128], [3, 128, 96]],
                            num_items=[3, 2], num_classes=2, with_mask=True)
    return model.data_preprocessor(packed, True)


def test_bf16_autocast_trains_with_finite_losses(spec):
    """3 AdamW steps under CPU bf16 autocast: finite losses, finite and
    updated weights (RoIAlign runs in float32 on the bf16 maps: mmcv 2.1
    has no CPU bf16 kernel). Parts the model's training leaves alone by
    design (``spec.frozen``: the SharpMask stage's trunk and DeepMask head)
    must stay exactly as they were; most of the others must change."""
    model = build_model(spec).train()
    optim = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = _batch(model, spec)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for step in range(3):
        with torch.autocast('cpu', dtype=torch.bfloat16):
            losses = model(**data, mode='loss')
        total = sum(v.sum() for k, v in losses.items() if 'loss' in k)
        for name, value in losses.items():
            if 'loss' in name:
                assert torch.isfinite(value).all(), (step, name, value)
        optim.zero_grad()
        total.float().backward()
        bad = [n for n, p in model.named_parameters()
               if p.grad is not None and not torch.isfinite(p.grad).all()]
        assert not bad, (step, bad)
        optim.step()
    assert all(torch.isfinite(p).all() for p in model.parameters())
    params = dict(model.named_parameters())
    frozen = [n for n in params if spec.frozen and n.startswith(spec.frozen)]
    moved = [n for n in frozen if not torch.equal(before[n], params[n])]
    assert not moved, moved
    trained = [n for n in params if n not in frozen]
    changed = sum(not torch.equal(before[n], params[n]) for n in trained)
    assert changed > 0.5 * len(trained)


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
