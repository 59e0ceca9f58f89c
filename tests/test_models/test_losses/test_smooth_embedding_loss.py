# Copyright (c) mmembed authors. All rights reserved.
import pytest
import torch
from mmdet.registry import MODELS

import mmembed  # noqa: F401
from mmembed.models.losses import SmoothEmbeddingLoss, smooth_embedding_loss


def reference_smooth(embeds, margins, inst_inds, num_insts):
    """Spec 1.3 (v1): per instance, sum_i ||e_i - mean e||^2 +
    ||m_i - mean m||^2 over its samples; a plain loop."""
    out = []
    for t in range(num_insts):
        sel = inst_inds == t
        if not sel.any():
            out.append(embeds.sum() * 0)
            continue
        e, m = embeds[sel], margins[sel]
        out.append(((e - e.mean(0))**2).sum() + ((m - m.mean(0))**2).sum())
    return torch.stack(out)


def test_matches_loop_reference_values_and_grads():
    torch.manual_seed(0)
    embeds = torch.randn(20, 8, dtype=torch.float64, requires_grad=True)
    margins = torch.rand(20, 1, dtype=torch.float64, requires_grad=True)
    inst_inds = torch.randint(0, 5, (20, ))
    inst_inds[inst_inds == 3] = 4  # instance 3 has no sample
    ours = smooth_embedding_loss(torch.cat([embeds, margins], 1), inst_inds, 6)
    ref = reference_smooth(embeds, margins, inst_inds, 6)
    torch.testing.assert_close(ours, ref)
    assert ours[3] == 0 and ours[5] == 0
    g_ours = torch.autograd.grad(ours.sum(), [embeds, margins])
    g_ref = torch.autograd.grad(ref.sum(), [embeds, margins])
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b)


def test_hand_derived():
    """Two samples (0, 0) and (2, 0) of one instance: mean (1, 0), squared
    deviations 1 + 1 = 2; a single-sample instance contributes 0."""
    embeds = torch.tensor([[0., 0.], [2., 0.], [5., 5.]])
    loss = SmoothEmbeddingLoss(reduction='none')(
        embeds, torch.tensor([0, 0, 1]))
    torch.testing.assert_close(loss, torch.tensor([2., 0.]))


def test_module_weight_and_avg_factor():
    torch.manual_seed(1)
    embeds = torch.randn(10, 4)
    margins = torch.rand(10, 4)
    inst_inds = torch.tensor([0, 0, 1, 1, 1, 2, 2, 3, 3, 3])
    per_inst = reference_smooth(embeds, margins, inst_inds, 4)
    weight = torch.tensor([0.5, 0.5, 1., 1.])
    loss = SmoothEmbeddingLoss(loss_weight=0.1)(
        embeds, inst_inds, margins, num_insts=4, weight=weight, avg_factor=2)
    torch.testing.assert_close(loss, 0.1 * (per_inst * weight).sum() / 2)


def test_empty_sets_give_zero_with_valid_graph():
    embeds = torch.zeros(0, 4, requires_grad=True)
    margins = torch.zeros(0, 1, requires_grad=True)
    loss = SmoothEmbeddingLoss()(embeds, torch.zeros(0, dtype=torch.long),
                                 margins)
    assert loss.item() == 0
    loss.backward()
    assert embeds.grad is not None and margins.grad is not None
    loss = SmoothEmbeddingLoss()(embeds, torch.zeros(0, dtype=torch.long),
                                 margins, num_insts=3)
    assert loss.item() == 0


def test_registry_and_errors():
    assert isinstance(
        MODELS.build(dict(type='SmoothEmbeddingLoss')), SmoothEmbeddingLoss)
    with pytest.raises(ValueError, match='inst_inds must lie'):
        smooth_embedding_loss(torch.zeros(2, 3), torch.tensor([0, 5]), 2)
    with pytest.raises(ValueError, match='weight'):
        SmoothEmbeddingLoss()(torch.zeros(2, 3), torch.tensor([0, 1]),
                              weight=torch.ones(3))
    with pytest.raises(ValueError, match='reduction'):
        SmoothEmbeddingLoss(reduction='avg')
