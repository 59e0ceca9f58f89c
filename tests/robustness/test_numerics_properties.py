# Copyright (c) mmembed authors. All rights reserved.
"""Property-based tests (hypothesis) of the shared math: random shapes,
empty inputs and extreme values. Each test name states its property.

Bounded: ``max_examples`` per test below, ``deadline=None`` (CPU timing on
a shared 2-core machine is not a property).
"""
import math

import pytest
import torch
import torch.nn.functional as F

hypothesis = pytest.importorskip('hypothesis')
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mmembed.models.losses.lovasz_hinge_loss import lovasz_hinge  # noqa: E402
from mmembed.models.losses.smooth_embedding_loss import \
    smooth_embedding_loss  # noqa: E402
from mmembed.models.utils import (boxes_to_cells, embedding_logprob,  # noqa
                                  paste_box_masks, paste_dense_logits,
                                  paste_ragged_logits, ragged_grid)

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)
EXTREME = st.sampled_from([0.0, 1e-6, 1.0, 30.0, 1e4, -1e4, -30.0])


def _tensor(seed: int, *shape: int, scale: float = 1.0,
            dtype=torch.float64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=dtype) * scale


# --------------------------------------------------------------------- #
# Lovász hinge
# --------------------------------------------------------------------- #
@SETTINGS
@given(n=st.integers(0, 4), p=st.integers(1, 40), seed=st.integers(0, 9999),
       scale=EXTREME)
def test_lovasz_hinge_is_finite_and_non_negative(n, p, seed, scale):
    logits = _tensor(seed, n, p, scale=scale)
    labels = (_tensor(seed + 1, n, p) > 0).double()
    loss = lovasz_hinge(logits, labels)
    assert loss.shape == (n, )
    assert torch.isfinite(loss).all() and (loss >= 0).all()


@SETTINGS
@given(p=st.integers(1, 40), seed=st.integers(0, 9999))
def test_lovasz_hinge_is_zero_iff_every_margin_is_at_least_one(p, seed):
    labels = (_tensor(seed, 1, p) > 0).double()
    signs = 2 * labels - 1
    margins = 1 + _tensor(seed + 1, 1, p).abs()  # all margins >= 1
    assert lovasz_hinge(signs * margins, labels).item() == 0
    # one pixel on the wrong side makes it positive
    wrong = (signs * margins).clone()
    wrong[0, 0] = -signs[0, 0] * 0.5
    assert lovasz_hinge(wrong, labels).item() > 0


@SETTINGS
@given(p=st.integers(2, 40), seed=st.integers(0, 9999))
def test_lovasz_hinge_is_invariant_to_pixel_permutation(p, seed):
    logits = _tensor(seed, 2, p)
    labels = (_tensor(seed + 1, 2, p) > 0).double()
    perm = torch.randperm(p, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(
        lovasz_hinge(logits[:, perm], labels[:, perm]),
        lovasz_hinge(logits, labels), rtol=1e-12, atol=1e-12)


@SETTINGS
@given(p=st.integers(1, 30), seed=st.integers(0, 9999))
def test_lovasz_hinge_row_without_valid_pixel_is_zero_with_zero_grad(p, seed):
    logits = _tensor(seed, 2, p).requires_grad_()
    labels = (_tensor(seed + 1, 2, p) > 0).double()
    valid = torch.ones(2, p, dtype=torch.bool)
    valid[1] = False
    loss = lovasz_hinge(logits, labels, valid)
    assert loss[1].item() == 0
    loss.sum().backward()
    assert torch.isfinite(logits.grad).all()
    assert (logits.grad[1] == 0).all()


# --------------------------------------------------------------------- #
# smooth embedding loss
# --------------------------------------------------------------------- #
@SETTINGS
@given(s=st.integers(0, 30), c=st.integers(1, 6), t=st.integers(1, 5),
       seed=st.integers(0, 9999), scale=EXTREME)
def test_smooth_loss_equals_per_instance_variance_sum(s, c, t, seed, scale):
    samples = _tensor(seed, s, c, scale=scale)
    gen = torch.Generator().manual_seed(seed)
    inds = torch.randint(0, t, (s, ), generator=gen)
    got = smooth_embedding_loss(samples, inds, t)
    want = torch.stack([
        ((samples[inds == k] - samples[inds == k].mean(0))**2).sum()
        if (inds == k).any() else samples.new_zeros(()) for k in range(t)
    ])
    assert torch.isfinite(got).all() and (got >= 0).all()
    torch.testing.assert_close(got, want, rtol=1e-9,
                               atol=1e-9 * max(1.0, scale**2))


@SETTINGS
@given(c=st.integers(1, 6), t=st.integers(1, 5), seed=st.integers(0, 9999),
       shift=EXTREME)
def test_smooth_loss_is_invariant_to_translation(c, t, seed, shift):
    samples = _tensor(seed, 12, c)
    inds = torch.arange(12) % t
    torch.testing.assert_close(
        smooth_embedding_loss(samples + shift, inds, t),
        smooth_embedding_loss(samples, inds, t), rtol=1e-6,
        atol=1e-6 * max(1.0, abs(shift)))


def test_smooth_loss_with_no_samples_is_zero_and_connected():
    samples = torch.zeros(0, 3, requires_grad=True)
    loss = smooth_embedding_loss(samples, torch.zeros(0, dtype=torch.long), 2)
    assert loss.tolist() == [0, 0] and loss.requires_grad
    loss.sum().backward()


# --------------------------------------------------------------------- #
# Gaussian kernel
# --------------------------------------------------------------------- #
@SETTINGS
@given(d=st.integers(1, 8), q=st.integers(0, 30), p=st.integers(0, 6),
       per_dim=st.booleans(), seed=st.integers(0, 9999), scale=EXTREME)
def test_kernel_logprob_is_non_positive_and_matches_direct_formula(
        d, q, p, per_dim, seed, scale):
    pixels = _tensor(seed, d, q, scale=scale)
    codes = _tensor(seed + 1, p, d, scale=scale)
    margins = _tensor(seed + 2, p, d if per_dim else 1).abs() + 1e-3
    got = embedding_logprob(pixels, codes, margins)
    want = -(margins[:, :, None] *
             (pixels[None] - codes[:, :, None])**2).sum(1)
    assert got.shape == (p, q)
    assert (got <= 0).all() and torch.isfinite(got).all()
    # the matmul expansion loses ~eps * |e|^2 absolute precision
    atol = 1e-9 * max(1.0, scale)**2 * d * float(margins.max()) \
        if p else 0.0
    torch.testing.assert_close(got, want, rtol=1e-7, atol=atol)


@SETTINGS
@given(d=st.integers(1, 8), seed=st.integers(0, 9999))
def test_kernel_logprob_is_zero_at_the_code(d, seed):
    codes = _tensor(seed, 3, d)
    got = embedding_logprob(codes.t().contiguous(), codes,
                            torch.ones(3, 1, dtype=codes.dtype))
    torch.testing.assert_close(got.diagonal(), torch.zeros(3,
                                                           dtype=got.dtype),
                               rtol=0, atol=1e-12)


# --------------------------------------------------------------------- #
# mask pasting and box-restricted evaluation
# --------------------------------------------------------------------- #
def _boxes(seed: int, n: int, h: int, w: int,
           empty: bool = True) -> torch.Tensor:
    """Boxes in and around an (h, w) image: some cross the border; with
    ``empty``, every third is degenerate (x1 == x2, y1 == y2)."""
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=gen) * torch.tensor([w + 8., h + 8.]) - 4
    wh = torch.rand(n, 2, generator=gen) * torch.tensor([w / 2., h / 2.])
    if empty:
        wh[::3] = 0
    else:
        wh = wh + 0.5
    return torch.cat([xy, xy + wh], 1)


@SETTINGS
@given(n=st.integers(0, 6), h=st.integers(1, 40), w=st.integers(1, 40),
       m=st.integers(1, 9), seed=st.integers(0, 9999))
def test_paste_box_masks_dense_equals_ragged(n, h, w, m, seed):
    probs = torch.rand(n, m, m, generator=torch.Generator().manual_seed(seed))
    boxes = _boxes(seed, n, h, w)
    dense = paste_box_masks(probs, boxes, (h, w), thr=None, impl='dense')
    ragged = paste_box_masks(probs, boxes, (h, w), thr=None, impl='ragged')
    assert dense.shape == ragged.shape == (n, h, w)
    torch.testing.assert_close(dense, ragged, rtol=1e-5, atol=1e-5)


def _zero_outside_box(probs: torch.Tensor, boxes: torch.Tensor, h: int,
                      w: int) -> None:
    pasted = paste_box_masks(probs, boxes, (h, w), thr=None)
    assert ((pasted >= 0) & (pasted <= 1 + 1e-6)).all()
    ys = torch.arange(h, dtype=torch.float32)[None, :, None] + 0.5
    xs = torch.arange(w, dtype=torch.float32)[None, None, :] + 0.5
    x1, y1, x2, y2 = (boxes[:, i, None, None] for i in range(4))
    m_h, m_w = probs.shape[-2:]
    # a pixel centre more than half a map cell outside the box samples only
    # the zero padding of grid_sample
    cell_w, cell_h = (x2 - x1) / m_w, (y2 - y1) / m_h
    outside = (xs < x1 - cell_w / 2 - 1e-4) | (xs > x2 + cell_w / 2 + 1e-4) \
        | (ys < y1 - cell_h / 2 - 1e-4) | (ys > y2 + cell_h / 2 + 1e-4)
    assert (pasted[outside.expand_as(pasted)] == 0).all()


@SETTINGS
@given(n=st.integers(1, 6), h=st.integers(1, 40), w=st.integers(1, 40),
       m=st.integers(1, 9), seed=st.integers(0, 9999))
def test_paste_box_masks_is_zero_outside_the_box_plus_half_a_cell(
        n, h, w, m, seed):
    probs = torch.rand(n, m, m, generator=torch.Generator().manual_seed(seed))
    _zero_outside_box(probs, _boxes(seed, n, h, w, empty=False), h, w)


def test_paste_box_masks_of_zero_size_box_is_empty():
    probs = torch.full((1, 1, 1), 0.5)
    for box in ([0.2, 0.2, 0.2, 0.2], [0.5, 0.5, 0.5, 0.5]):
        pasted = paste_box_masks(probs, torch.tensor([box]), (3, 3),
                                 thr=None)
        assert torch.isfinite(pasted).all() and (pasted == 0).all(), box


@SETTINGS
@given(n=st.integers(0, 5), mh=st.integers(2, 12), mw=st.integers(2, 12),
       expand=st.integers(0, 2), out_scale=st.sampled_from([1, 2]),
       seed=st.integers(0, 9999))
def test_box_restricted_paste_dense_equals_ragged_equals_formula(
        n, mh, mw, expand, out_scale, seed):
    stride = 4
    in_h, in_w = mh * stride, mw * stride
    out_size = (in_h * out_scale, in_w * out_scale)
    up_size = out_size
    gen = torch.Generator().manual_seed(seed)
    boxes = _boxes(seed, n, in_h, in_w)
    logits = -torch.rand(n, mh, mw, generator=gen) * 2.5
    thr, fill = math.log(0.53), -10.0
    dense = paste_dense_logits(logits, boxes, stride, expand, up_size,
                               out_size, fill, thr)
    cells = boxes_to_cells(boxes, stride, expand, (mh, mw))
    grid = ragged_grid(cells)
    ragged = paste_ragged_logits(logits[grid.box_inds, grid.ys, grid.xs],
                                 cells, grid.offsets, (mh, mw), up_size,
                                 out_size, fill, thr)
    # the formula, one detection at a time
    want = torch.zeros(n, *out_size, dtype=torch.bool)
    for i in range(n):
        x0, y0, x1, y1 = cells[i].tolist()
        full = torch.full((mh, mw), fill)
        full[y0:y1, x0:x1] = logits[i, y0:y1, x0:x1]
        up = F.interpolate(full[None, None], up_size, mode='bilinear',
                           align_corners=False)[0, 0]
        want[i] = up[:out_size[0], :out_size[1]] > thr
    assert torch.equal(dense, want) and torch.equal(ragged, want)
