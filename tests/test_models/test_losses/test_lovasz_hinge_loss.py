# Copyright (c) mmembed authors. All rights reserved.
"""LovaszHingeLoss against a plain, loop-based implementation of the
reference algorithm (Berman et al. 2018, Alg. 1; specs/methods.md 5.1)."""
import pytest
import torch
from mmdet.registry import MODELS

import mmembed  # noqa: F401
from mmembed.models.losses import LovaszHingeLoss, lovasz_hinge


def reference_lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    p = len(gt_sorted)
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    if p > 1:
        jaccard[1:p] = jaccard[1:p] - jaccard[0:-1]
    return jaccard


def reference_lovasz_flat(logits: torch.Tensor,
                          labels: torch.Tensor) -> torch.Tensor:
    if len(labels) == 0:
        return logits.sum() * 0.
    signs = 2. * labels - 1.
    errors = 1. - logits * signs
    errors_sorted, perm = torch.sort(errors, descending=True, stable=True)
    grad = reference_lovasz_grad(labels[perm])
    return torch.dot(torch.relu(errors_sorted), grad)


def reference_lovasz(logits, labels, valid=None):
    """One loss per row, ignored pixels dropped first (a Python loop)."""
    out = []
    for i in range(logits.shape[0]):
        keep = torch.ones_like(labels[i], dtype=torch.bool) \
            if valid is None else valid[i]
        out.append(
            reference_lovasz_flat(logits[i][keep], labels[i][keep].double()))
    return torch.stack(out)


def _compare(logits, labels, valid=None, atol=1e-5):
    ours_in = logits.detach().clone().requires_grad_()
    ref_in = logits.detach().double().clone().requires_grad_()
    ours = lovasz_hinge(ours_in, labels, valid)
    ref = reference_lovasz(ref_in, labels, valid)
    torch.testing.assert_close(ours.double(), ref, rtol=0, atol=atol)
    ours.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(
        ours_in.grad.double(), ref_in.grad, rtol=0, atol=atol)
    return ours, ours_in.grad


def test_hand_derived_four_pixels():
    """Labels (1, 0, 1, 0), logits (2, 1, -1, -3).

    errors = 1 - logit * sign = (-1, 2, 2, -2); sorted descending with a
    stable sort: (2 [px1, gt 0], 2 [px2, gt 1], -1, -2). G = 2.
    Jaccard along the order: after px1: I = 2, U = 3 -> 1/3; after px2:
    I = 1, U = 3 -> 2/3; then 1, 1. Gradient = (1/3, 1/3, 1/3, 0).
    loss = 2/3 + 2/3 + 0 + 0 = 4/3.
    """
    logits = torch.tensor([[2., 1., -1., -3.]], dtype=torch.float64)
    labels = torch.tensor([[1, 0, 1, 0]])
    loss = lovasz_hinge(logits, labels)
    torch.testing.assert_close(loss, torch.tensor([4. / 3.],
                                                  dtype=torch.float64))


@pytest.mark.parametrize('num_rows,num_px', [(1, 1), (5, 97), (8, 64 * 64)])
def test_random_rows_match_reference(num_rows, num_px):
    torch.manual_seed(0)
    logits = torch.randn(num_rows, num_px, dtype=torch.float64) * 3
    labels = torch.rand(num_rows, num_px) > 0.5
    _compare(logits, labels, atol=1e-10)


def test_float32_matches_reference():
    torch.manual_seed(1)
    logits = torch.randn(4, 300)
    labels = (torch.rand(4, 300) > 0.7).float()
    _compare(logits, labels, atol=1e-5)


def test_no_positives_penalises_only_the_largest_error():
    torch.manual_seed(2)
    logits = torch.randn(3, 50, dtype=torch.float64)
    labels = torch.zeros(3, 50)
    loss, grad = _compare(logits, labels, atol=1e-10)
    # G = 0: gradient (1, 0, ..., 0) on the sorted order -> relu(1 + max)
    torch.testing.assert_close(loss, torch.relu(1 + logits.max(1).values))
    assert ((grad != 0).sum(1) == 1).all()


def test_all_positives_is_mean_hinge():
    torch.manual_seed(3)
    logits = torch.randn(2, 40, dtype=torch.float64)
    labels = torch.ones(2, 40, dtype=torch.bool)
    loss, _ = _compare(logits, labels, atol=1e-10)
    torch.testing.assert_close(loss, torch.relu(1 - logits).mean(1))


def test_everything_ignored_gives_zero_and_zero_grad():
    logits = torch.randn(3, 20, requires_grad=True)
    labels = torch.randint(0, 2, (3, 20))
    valid = torch.zeros(3, 20, dtype=torch.bool)
    loss = lovasz_hinge(logits, labels, valid)
    assert torch.equal(loss, torch.zeros(3))
    loss.sum().backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_rows_of_different_validity_in_one_call():
    torch.manual_seed(4)
    logits = torch.randn(6, 80, dtype=torch.float64)
    labels = torch.rand(6, 80) > 0.5
    valid = torch.rand(6, 80) > 0.3
    valid[0] = False  # a fully ignored row
    valid[1] = False
    valid[1, 7] = True  # a row with a single valid pixel
    valid[2] &= ~labels[2]  # a row whose valid pixels are all negatives
    _compare(logits, labels, valid, atol=1e-10)


def test_bool_int_and_float_labels_agree():
    torch.manual_seed(5)
    logits = torch.randn(2, 33)
    labels = torch.rand(2, 33) > 0.5
    a = lovasz_hinge(logits, labels)
    b = lovasz_hinge(logits, labels.long())
    c = lovasz_hinge(logits, labels.float())
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)


def test_fp16_inputs():
    torch.manual_seed(6)
    logits16 = (torch.randn(4, 200) * 2).half().requires_grad_()
    labels = torch.rand(4, 200) > 0.5
    loss = lovasz_hinge(logits16, labels)
    assert loss.dtype == torch.float32
    ref_in = logits16.detach().double().requires_grad_()
    ref = reference_lovasz(ref_in, labels)
    torch.testing.assert_close(loss.double(), ref, rtol=0, atol=1e-5)
    loss.sum().backward()
    ref.sum().backward()
    assert logits16.grad.dtype == torch.float16
    torch.testing.assert_close(
        logits16.grad.double(), ref_in.grad, rtol=0, atol=1e-3)


def test_module_reductions_weights_and_ignore_index():
    torch.manual_seed(7)
    logits = torch.randn(4, 8, 8, dtype=torch.float64)
    labels = (torch.rand(4, 8, 8) > 0.5).long()
    labels[0, :2] = 255
    per_row = reference_lovasz(
        logits.flatten(1), labels.flatten(1).clamp(max=1),
        (labels != 255).flatten(1))
    loss = LovaszHingeLoss(ignore_index=255, reduction='none')
    torch.testing.assert_close(loss(logits, labels), per_row)
    weight = torch.tensor([1., 0., 2., 1.], dtype=torch.float64)
    loss = LovaszHingeLoss(ignore_index=255, loss_weight=0.5)
    torch.testing.assert_close(
        loss(logits, labels, weight=weight, avg_factor=2.),
        0.5 * (per_row * weight).sum() / 2)
    torch.testing.assert_close(
        loss(logits, labels, reduction_override='sum'), 0.5 * per_row.sum())


def test_module_per_image_false_is_one_flat_loss():
    torch.manual_seed(8)
    logits = torch.randn(3, 5, 5, dtype=torch.float64)
    labels = torch.rand(3, 5, 5) > 0.5
    loss = LovaszHingeLoss(per_image=False)(logits, labels)
    ref = reference_lovasz_flat(logits.flatten(), labels.flatten().double())
    torch.testing.assert_close(loss, ref)


def test_module_probs_input_matches_clamped_logit_reference():
    torch.manual_seed(9)
    probs = torch.rand(3, 64, dtype=torch.float64)
    probs[0, :3] = torch.tensor([0., 1e-12, 1.])
    labels = torch.rand(3, 64) > 0.5
    eps = 1e-9
    clamped = probs.clamp(eps, 1 - eps)
    ref = reference_lovasz(torch.log(clamped) - torch.log(1 - clamped), labels)
    loss = LovaszHingeLoss(input_type='probs', prob_eps=eps, reduction='none')
    torch.testing.assert_close(loss(probs, labels), ref)
    # float32 probabilities of exactly 1 must not give inf / NaN gradients
    probs32 = probs.float().requires_grad_()
    out = loss(probs32, labels).sum()
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(probs32.grad).all()


def test_module_empty_batch_keeps_graph():
    pred = torch.zeros(0, 4, 4, requires_grad=True)
    loss = LovaszHingeLoss()(pred, torch.zeros(0, 4, 4))
    assert loss.item() == 0
    loss.backward()
    assert pred.grad is not None


def test_built_through_mmdet_registry():
    loss = MODELS.build(dict(type='LovaszHingeLoss', loss_weight=2.0))
    assert isinstance(loss, LovaszHingeLoss) and loss.loss_weight == 2.0


def test_bad_input_errors():
    with pytest.raises(ValueError, match='input_type'):
        LovaszHingeLoss(input_type='sigmoid')
    with pytest.raises(ValueError, match='reduction'):
        LovaszHingeLoss(reduction='avg')
    with pytest.raises(ValueError, match='differ in shape'):
        LovaszHingeLoss()(torch.zeros(2, 4), torch.zeros(2, 5))
    with pytest.raises(ValueError, match='valid_mask'):
        LovaszHingeLoss()(torch.zeros(2, 4), torch.zeros(2, 4),
                          valid_mask=torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match='weight'):
        LovaszHingeLoss()(torch.zeros(2, 4), torch.zeros(2, 4),
                          weight=torch.ones(3))
    with pytest.raises(ValueError, match='per_image=True'):
        LovaszHingeLoss(per_image=False)(torch.zeros(2, 4), torch.zeros(2, 4),
                                         weight=torch.ones(2))
