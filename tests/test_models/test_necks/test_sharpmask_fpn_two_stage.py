# Copyright (c) mmembed authors. All rights reserved.
"""The second training stage on a converged FPN model (docs/sharpmask.md):
a stage-1 FPN checkpoint loads into the SharpMaskFPN twin with only the
refinement path missing, FreezeExceptHook trains only the path (and the mask
head), and a load that would leave a frozen module at its random init stops
the run, naming the module (the old recipe loaded an FPN checkpoint into
SharpMaskNeck, where none of the neck's keys exist)."""
from types import SimpleNamespace

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.logging import MMLogger
from mmengine.runner import load_checkpoint

from mmembed.engine import FreezeExceptHook
from mmembed.engine.hooks.freeze_except_hook import unloaded_modules
from mmembed.testing import get_detector_cfg

FPN_CFG = 'embedmask/embedmask_lite0_fpn_fruits_nuts_finetune.py'
REFINED_CFG = 'sharpmask/embedmask_lite0_sharpmask_fpn_fruits_nuts_finetune.py'
STAGE2 = ('neck.mask_path', 'mask_head')


def build(fname, seed):
    torch.manual_seed(seed)
    model = MODELS.build(get_detector_cfg(fname))
    model.init_weights()
    return model


@pytest.fixture(scope='module')
def stage1_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp('stage1') / 'epoch_40.pth'
    model = build(FPN_CFG, seed=0)
    torch.save(dict(meta=dict(), state_dict=model.state_dict()), path)
    return str(path), model.state_dict()


def runner_for(model, load_from):
    """What the hook reads of mmengine's Runner, after its (non-strict)
    load_from load, which is what Runner.load_or_resume does."""
    if load_from:
        load_checkpoint(model, load_from, map_location='cpu', strict=False)
    return SimpleNamespace(model=model, _load_from=load_from, _resume=False,
                           logger=MMLogger.get_current_instance())


def train_steps(model, hook, runner, steps=2):
    hook.before_train(runner)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-3)
    packed = demo_mm_inputs(2, [[3, 64, 96], [3, 64, 96]], num_items=[2, 1],
                            num_classes=3, with_mask=True)
    for _ in range(steps):
        model.train()
        hook.before_train_iter(runner, 0)
        losses = model(**model.data_preprocessor(packed, True), mode='loss')
        total = sum(v for k, v in losses.items() if 'loss' in k)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()


def test_stage2_loads_fpn_strictly_and_trains_only_the_path(
        stage1_checkpoint):
    path, stage1 = stage1_checkpoint
    model = build(REFINED_CFG, seed=1)  # other random weights everywhere
    # the FPN checkpoint covers every key but the path's
    found = unloaded_modules(model, stage1, STAGE2)
    assert found['frozen'] == {}
    assert set(found['trainable']) == {
        m for m in (n.rpartition('.')[0] for n in model.state_dict())
        if m.startswith('neck.mask_path')}
    runner = runner_for(model, path)
    train_steps(model, FreezeExceptHook(trainable=list(STAGE2)), runner)
    after = model.state_dict()
    for key, value in stage1.items():
        if key.startswith('mask_head.'):
            continue  # trains in stage 2, starts from stage 1
        assert torch.equal(after[key], value), key  # loaded, then frozen
    moved = [k for k in after if k.startswith('neck.mask_path.')
             and not torch.equal(after[k], build(REFINED_CFG, 1).state_dict()[k])]
    assert moved  # the path trains


def test_old_recipe_names_the_frozen_modules_it_would_leave_random(
        stage1_checkpoint, monkeypatch):
    """The FPN checkpoint into SharpMaskNeck (the previous recipe): none of
    the neck's keys exist. mmembed's load check already refuses such a
    load; with a partial load allowed, the neck's start, output and extra
    convs would stay random and frozen, and the hook refuses, naming
    them."""
    from mmembed.utils.load_check import CheckpointMismatchError
    path, _ = stage1_checkpoint
    model = build('sharpmask/embedmask_lite0_sharpmask_fruits_nuts_finetune.py',
                  seed=1)
    with pytest.raises(CheckpointMismatchError, match='nothing for neck'):
        runner_for(model, path)
    monkeypatch.setenv('MMEMBED_ALLOW_PARTIAL_LOAD', '1')
    runner = runner_for(model, path)
    hook = FreezeExceptHook(trainable='neck.refinements')
    with pytest.raises(ValueError) as err:
        hook.before_train(runner)
    message = str(err.value)
    for name in ('neck.start_conv.conv (weight, bias)', 'neck.out_convs.0.conv',
                 'neck.finest_conv.conv', 'never train'):
        assert name in message, message
    # the same check can be switched off (e.g. a deliberate fresh start)
    FreezeExceptHook(trainable='neck.refinements',
                     check_loaded=False).before_train(runner)


def test_a_shape_mismatch_counts_as_not_loaded(stage1_checkpoint, tmp_path,
                                              monkeypatch):
    """mmengine's non-strict load skips a tensor of another shape (e.g. a
    stage-1 model with other classes); the frozen classifier would stay
    random. (mmembed's load check refuses this load too unless a partial
    load is allowed.)"""
    monkeypatch.setenv('MMEMBED_ALLOW_PARTIAL_LOAD', '1')
    _, stage1 = stage1_checkpoint
    other = dict(stage1)
    other['bbox_head.conv_cls.weight'] = torch.zeros(
        5, *stage1['bbox_head.conv_cls.weight'].shape[1:])
    path = tmp_path / 'other_classes.pth'
    torch.save(dict(state_dict=other), path)
    model = build(REFINED_CFG, seed=1)
    with pytest.raises(ValueError, match=r'bbox_head\.conv_cls \(weight\)'):
        FreezeExceptHook(trainable=list(STAGE2)).before_train(
            runner_for(model, str(path)))
