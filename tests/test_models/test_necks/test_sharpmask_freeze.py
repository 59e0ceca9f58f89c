# Copyright (c) mmembed authors. All rights reserved.
"""SharpMask's second training stage (train only the refinement modules):
FreezeExceptHook keeps every other weight and every frozen BN statistic
unchanged through optimizer steps with momentum and weight decay."""
from types import SimpleNamespace

import pytest
import torch
from mmdet.registry import HOOKS, MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.logging import MMLogger

from mmembed.engine import FreezeExceptHook
from mmembed.testing import get_detector_cfg

TRAINABLE = 'neck.refinements'


def tiny_model():
    cfg = get_detector_cfg('sharpmask/embedmask_r18_sharpmask_fruits_nuts.py')
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def train_steps(model, hook, steps=3):
    runner = SimpleNamespace(model=model,
                             logger=MMLogger.get_current_instance())
    if hook is not None:
        hook.before_train(runner)
    # what mmengine builds: every parameter, momentum and weight decay
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9,
                                weight_decay=1e-2)
    packed = demo_mm_inputs(2, [[3, 64, 80], [3, 72, 64]], num_items=[2, 1],
                            num_classes=3, with_mask=True)
    for _ in range(steps):
        model.train()  # as the loops do at every epoch / after validation
        if hook is not None:
            hook.before_train_iter(runner, 0)
        losses = model(**model.data_preprocessor(packed, True), mode='loss')
        total = sum(v for k, v in losses.items() if 'loss' in k)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_only_refinement_modules_change():
    model = tiny_model()
    before = snapshot(model)
    hook = HOOKS.build(dict(type='FreezeExceptHook', trainable=[TRAINABLE]))
    train_steps(model, hook)
    after = snapshot(model)
    frozen = [k for k in before if not k.startswith(TRAINABLE + '.')]
    trained = [k for k in before if k.startswith(TRAINABLE + '.')]
    assert any('running_mean' in k for k in frozen)  # BN in the backbone
    assert any(k.startswith('bbox_head.') for k in frozen)
    for key in frozen:  # weights, biases, BN statistics, GN, scales
        assert torch.equal(before[key], after[key]), key
    for key in trained:
        assert not torch.equal(before[key], after[key]), key
    assert all(not p.requires_grad for n, p in model.named_parameters()
               if not n.startswith(TRAINABLE + '.'))
    assert not model.backbone.bn1.training  # frozen BN back in eval mode
    assert model.bbox_head.training  # heads keep computing losses


def test_without_the_hook_the_trunk_moves():
    """Control: the same steps without the hook change the backbone and its
    BN statistics, so the test above can fail."""
    model = tiny_model()
    before = snapshot(model)
    train_steps(model, None, steps=1)
    after = snapshot(model)
    for key in ('backbone.conv1.weight', 'backbone.bn1.running_mean',
                'bbox_head.conv_cls.weight'):
        assert not torch.equal(before[key], after[key]), key


def test_prefix_matching_nothing_raises():
    model = tiny_model()
    hook = FreezeExceptHook(trainable='neck.refinement')  # no 's'
    runner = SimpleNamespace(model=model,
                             logger=MMLogger.get_current_instance())
    with pytest.raises(ValueError, match="'neck.refinement' matches no"):
        hook.before_train(runner)
    with pytest.raises(ValueError, match='at least one'):
        FreezeExceptHook(trainable=[]).before_train(runner)


def _single_process_group():
    import socket

    import torch.distributed as dist
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=0, world_size=1)
    return dist


def test_under_ddp_needs_find_unused_parameters_and_keeps_trunk_frozen():
    """DDP's reducer is built before hooks run: without
    find_unused_parameters the hook refuses; with it, the frozen weights do
    not move (DDP leaves the grads of unused parameters undefined)."""
    from mmengine.model import MMDistributedDataParallel
    dist = _single_process_group()
    try:
        model = tiny_model()
        strict = MMDistributedDataParallel(model, find_unused_parameters=False)
        runner = SimpleNamespace(model=strict,
                                 logger=MMLogger.get_current_instance())
        with pytest.raises(ValueError, match='find_unused_parameters=True'):
            FreezeExceptHook(trainable=TRAINABLE).before_train(runner)

        model = tiny_model()
        before = snapshot(model)
        wrapped = MMDistributedDataParallel(model,
                                            find_unused_parameters=True)
        hook = FreezeExceptHook(trainable=TRAINABLE)
        runner = SimpleNamespace(model=wrapped,
                                 logger=MMLogger.get_current_instance())
        hook.before_train(runner)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1,
                                    momentum=0.9, weight_decay=1e-2)
        packed = demo_mm_inputs(2, [[3, 64, 80], [3, 72, 64]],
                                num_items=[2, 1], num_classes=3,
                                with_mask=True)
        for _ in range(2):
            wrapped.train()
            hook.before_train_iter(runner, 0)
            data = model.data_preprocessor(packed, True)
            losses = wrapped(**data, mode='loss')
            total = sum(v for k, v in losses.items() if 'loss' in k)
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
        after = snapshot(model)
        for key in before:
            changed = not torch.equal(before[key], after[key])
            assert changed == key.startswith(TRAINABLE + '.'), key
    finally:
        dist.destroy_process_group()
