# Copyright (c) mmembed authors. All rights reserved.
"""RegionDiceLoss against the direct formula, its region and weights, and
EmbedMaskHead's optional auxiliary mask loss."""
import pytest
import torch

from mmembed.models.losses import RegionDiceLoss


def dice(p, t, eps):
    return 1 - (2 * (p * t).sum() + eps) / ((p * p).sum() + (t * t).sum() +
                                            eps)


def test_equals_the_formula_with_region_weights_and_avg_factor():
    torch.manual_seed(0)
    probs = torch.rand(3, 5, 7)
    target = torch.rand(3, 5, 7) > 0.5
    valid = torch.rand(3, 5, 7) > 0.3
    weight = torch.tensor([0.5, 1.0, 2.0])
    loss = RegionDiceLoss(eps=1e-3, loss_weight=2.0)
    got = loss(probs, target, weight=weight, avg_factor=4.0, valid_mask=valid)
    rows = [
        dice(probs[i][valid[i]], target[i][valid[i]].float(), 1e-3)
        for i in range(3)
    ]
    expected = 2.0 * sum(w * r for w, r in zip(weight, rows)) / 4.0
    torch.testing.assert_close(got, expected)
    # pixels outside the region do not matter
    changed = probs.clone()
    changed[~valid] = 1 - changed[~valid]
    torch.testing.assert_close(
        loss(changed, target, weight=weight, avg_factor=4.0,
             valid_mask=valid), got)
    # logits input = sigmoid of it as probabilities
    logits = torch.randn(3, 5, 7)
    torch.testing.assert_close(
        RegionDiceLoss(input_type='logits', reduction='none')(logits,
                                                              target),
        RegionDiceLoss(reduction='none')(logits.sigmoid(), target))
    # perfect masks: zero loss; a gradient reaches every supervised pixel
    assert loss(target.float(), target).item() == pytest.approx(0, abs=1e-6)
    probs.requires_grad_(True)
    RegionDiceLoss()(probs, target, valid_mask=valid).backward()
    assert (probs.grad[valid] != 0).all() and (probs.grad[~valid] == 0).all()


def test_bad_input_is_named():
    loss = RegionDiceLoss()
    with pytest.raises(ValueError, match='differ in shape'):
        loss(torch.rand(2, 4), torch.rand(2, 5) > 0.5)
    with pytest.raises(ValueError, match='valid_mask'):
        loss(torch.rand(2, 4), torch.rand(2, 4) > 0.5,
             valid_mask=torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match='input_type'):
        RegionDiceLoss(input_type='prob')
    assert loss(torch.zeros(0, 4), torch.zeros(0, 4)).item() == 0


def test_embedmask_head_adds_the_aux_loss_only_when_asked():
    from mmdet.registry import MODELS

    import mmembed  # noqa: F401
    base = dict(type='EmbedMaskHead', in_channels=8, feat_channels=8,
                stacked_convs=1, embed_dim=4,
                norm_cfg=dict(type='GN', num_groups=4))
    assert MODELS.build(base).loss_mask_aux is None
    head = MODELS.build(
        dict(base, loss_mask_aux=dict(type='RegionDiceLoss',
                                      loss_weight=3.0)))
    assert isinstance(head.loss_mask_aux, RegionDiceLoss)
    assert head.loss_mask_aux.loss_weight == 3.0
