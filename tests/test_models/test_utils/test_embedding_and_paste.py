# Copyright (c) mmembed authors. All rights reserved.
"""Shared math of models/utils against direct formulas."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmembed.models.utils import (box_cell_masks, boxes_to_cells,
                                  candidate_out_regions, chunk_ranges,
                                  embedding_logprob, embedding_logprob_pairs,
                                  even_chunks, logprob_to_logit,
                                  paste_dense_logits,
                                  paste_ragged_logits, ragged_grid,
                                  region_areas, region_masks,
                                  rescale_gt_masks, upsampled_size)


def direct_prob(pixel_embeds, codes, margins):
    """Per-pixel loop: exp(-sum_d m_d (e_d - q_d)^2)."""
    dim, height, width = pixel_embeds.shape
    out = torch.zeros(len(codes), height, width, dtype=torch.float64)
    for j in range(len(codes)):
        m = margins[j].expand(dim)
        for y in range(height):
            for x in range(width):
                diff = pixel_embeds[:, y, x] - codes[j]
                out[j, y, x] = math.exp(-float((m * diff * diff).sum()))
    return out


@pytest.mark.parametrize('margin_dims', [1, 5])
def test_embedding_logprob_matches_per_pixel_formula(margin_dims):
    torch.manual_seed(0)
    embeds = torch.randn(5, 7, 9, dtype=torch.float64)
    codes = torch.randn(4, 5, dtype=torch.float64)
    margins = torch.rand(4, margin_dims, dtype=torch.float64) + 0.1
    logprob = embedding_logprob(embeds.flatten(1), codes, margins)
    torch.testing.assert_close(
        logprob.exp().view(4, 7, 9), direct_prob(embeds, codes, margins))


def test_embedding_logprob_pairs_matches_dense():
    torch.manual_seed(1)
    embeds = torch.randn(6, 40, dtype=torch.float64)  # (D, Q)
    codes = torch.randn(3, 6, dtype=torch.float64)
    margins = torch.rand(3, 6, dtype=torch.float64)
    dense = embedding_logprob(embeds, codes, margins)
    pix = torch.randint(0, 40, (50, ))
    prop = torch.randint(0, 3, (50, ))
    pairs = embedding_logprob_pairs(embeds.t(), pix, prop, codes, margins)
    torch.testing.assert_close(pairs, dense[prop, pix])


def test_kernel_shape_errors():
    with pytest.raises(ValueError, match='codes must be'):
        embedding_logprob(torch.zeros(4, 10), torch.zeros(2, 3),
                          torch.ones(2, 1))
    with pytest.raises(ValueError, match='margins must be'):
        embedding_logprob(torch.zeros(4, 10), torch.zeros(2, 4),
                          torch.ones(2, 3))


def test_ragged_grid_lists_every_region_pixel():
    regions = torch.tensor([[1, 2, 4, 3], [0, 0, 0, 5], [2, 1, 3, 4]])
    grid = ragged_grid(regions)
    assert region_areas(regions).tolist() == [3, 0, 3]
    assert grid.box_inds.tolist() == [0, 0, 0, 2, 2, 2]
    assert list(zip(grid.ys.tolist(), grid.xs.tolist())) == [(2, 1), (2, 2),
                                                             (2, 3), (1, 2),
                                                             (2, 2), (3, 2)]
    assert grid.offsets.tolist() == [0, 3, 3]


def test_chunk_ranges_cover_and_bound():
    costs = torch.tensor([5, 1, 1, 9, 0, 3, 2])
    ranges = chunk_ranges(costs, budget=6)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(costs)
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    for start, end in ranges:
        assert costs[start:end].sum() < 6 + costs.max()
    assert chunk_ranges(torch.zeros(0, dtype=torch.long), 4) == []
    with pytest.raises(ValueError):
        chunk_ranges(costs, 0)


def test_boxes_to_cells_follows_official_rounding():
    boxes = torch.tensor([[9., 5., 30., 17.], [-3., 0., 500., 70.]])
    cells = boxes_to_cells(boxes, stride=4, expand=2, map_size=(16, 20))
    # floor(9/4)-2 = 0, floor(5/4)-2 = -1 -> 0, floor(30/4)+2+1 = 10, ...
    assert cells.tolist() == [[0, 0, 10, 7], [0, 0, 20, 16]]


def dense_reference(values, regions, offsets, map_size, up_size, out_size,
                    fill, thr):
    """The official paste: full maps, F.interpolate, crop, threshold."""
    masks = []
    for i, (x0, y0, x1, y1) in enumerate(regions.tolist()):
        full = torch.full(map_size, fill)
        if x1 > x0 and y1 > y0:
            n = (x1 - x0) * (y1 - y0)
            full[y0:y1, x0:x1] = values[offsets[i]:offsets[i] + n].view(
                y1 - y0, x1 - x0)
        up = F.interpolate(
            full[None, None], size=up_size, mode='bilinear',
            align_corners=False)[0, 0]
        masks.append(up[:out_size[0], :out_size[1]] > thr)
    return torch.stack(masks)


@pytest.mark.parametrize('map_size,input_size,out_size', [
    ((12, 16), (45, 61), (45, 61)),  # rescale=False: x4 upsampling
    ((12, 16), (45, 61), (90, 122)),  # rescale to a larger original
    ((13, 17), (50, 66), (37, 49)),  # rescale to a smaller original
])
def test_paste_equals_full_map_interpolation(map_size, input_size, out_size):
    torch.manual_seed(2)
    boxes = torch.tensor([[3., 4., 30., 40.], [0., 0., 60., 44.],
                          [40., 10., 44., 13.], [20., 20., 20., 20.]])
    cells = boxes_to_cells(boxes, 4, 1, map_size)
    grid = ragged_grid(cells)
    values = -torch.rand(grid.box_inds.numel()) * 2.5
    up_size = upsampled_size(map_size, 4, input_size, out_size)
    thr = math.log(0.53)
    got = paste_ragged_logits(values, cells, grid.offsets, map_size, up_size,
                              out_size, -10., thr)
    want = dense_reference(values, cells, grid.offsets, map_size, up_size,
                           out_size, -10., thr)
    assert got.dtype == torch.bool and got.shape == want.shape
    assert torch.equal(got, want)


@pytest.mark.parametrize('map_size,input_size,out_size', [
    ((12, 16), (45, 61), (45, 61)),
    ((12, 16), (45, 61), (90, 122)),
    ((13, 17), (50, 66), (37, 49)),
])
@pytest.mark.parametrize('expand', [0, 2])
def test_dense_paste_equals_ragged_paste(map_size, input_size, out_size,
                                         expand):
    """Both layouts against the same full-map reference, on boxes that
    cross the map border, are tiny, degenerate or lie outside it."""
    torch.manual_seed(4)
    boxes = torch.tensor([[3., 4., 30., 40.], [-9., -5., 60., 44.],
                          [40., 10., 44., 13.], [20., 20., 20., 20.],
                          [70., 50., 90., 60.], [7.9, 8., 8.1, 8.]])
    cells = boxes_to_cells(boxes, 4, expand, map_size)
    grid = ragged_grid(cells)
    # dense values that agree with the ragged ones inside every region
    logits = -torch.rand(len(boxes), *map_size) * 2.5
    values = logits[grid.box_inds, grid.ys, grid.xs]
    up_size = upsampled_size(map_size, 4, input_size, out_size)
    thr = math.log(0.53)
    ragged = paste_ragged_logits(values, cells, grid.offsets, map_size,
                                 up_size, out_size, -10., thr)
    dense = paste_dense_logits(logits, boxes, 4, expand, up_size, out_size,
                               -10., thr)
    want = dense_reference(values, cells, grid.offsets, map_size, up_size,
                           out_size, -10., thr)
    assert dense.dtype == torch.bool and dense.shape == want.shape
    assert torch.equal(dense, want) and torch.equal(ragged, want)
    assert want.any()


def test_box_cell_masks_rasterise_boxes_to_cells():
    boxes = torch.tensor([[9., 5., 30., 17.], [-3., 0., 500., 70.],
                          [3.99, 4., 4., 7.99], [12., 12., 11., 11.]])
    for expand in (0, 1, 3):
        cells = boxes_to_cells(boxes, 4, expand, (16, 20))
        want = torch.zeros(len(boxes), 16, 20, dtype=torch.bool)
        for i, (x0, y0, x1, y1) in enumerate(cells.tolist()):
            want[i, y0:y1, x0:x1] = True
        got = box_cell_masks(boxes, 4, expand, (16, 20))
        assert torch.equal(got, want), expand
        assert torch.equal(region_masks(cells, (16, 20)), want)


def test_even_chunks_cover_and_bound():
    assert even_chunks(0, 10, 100) == []
    assert even_chunks(10, 10, 100) == [(0, 10)]
    assert even_chunks(101, 1, 100) == [(0, 51), (51, 101)]
    chunks = even_chunks(30, 7, 50)  # 7 items fit: 5 chunks of 6
    assert chunks == [(0, 6), (6, 12), (12, 18), (18, 24), (24, 30)]
    assert even_chunks(3, 500, 100) == [(0, 1), (1, 2), (2, 3)]
    with pytest.raises(ValueError, match='budget'):
        even_chunks(3, 1, 0)


def test_candidate_regions_contain_all_foreground():
    torch.manual_seed(3)
    map_size, up_size, out_size = (10, 10), (37, 41), (35, 40)
    cells = torch.tensor([[2, 3, 5, 7], [0, 0, 10, 10], [9, 9, 10, 10]])
    grid = ragged_grid(cells)
    values = torch.zeros(grid.box_inds.numel())  # log-prob 0 = certain
    want = dense_reference(values, cells, grid.offsets, map_size, up_size,
                           out_size, -10., -9.99)
    regions = candidate_out_regions(cells, up_size, map_size, out_size)
    for mask, (x0, y0, x1, y1) in zip(want, regions.tolist()):
        outside = mask.clone()
        outside[y0:y1, x0:x1] = False
        assert not outside.any()


def test_paste_errors():
    cells = torch.tensor([[0, 0, 2, 2]])
    with pytest.raises(ValueError, match='fill'):
        paste_ragged_logits(
            torch.zeros(4), cells, torch.tensor([0]), (4, 4), (16, 16),
            (16, 16), fill=0., thr=-1.)
    with pytest.raises(ValueError, match='cover'):
        paste_ragged_logits(
            torch.zeros(4), cells, torch.tensor([0]), (4, 4), (8, 8),
            (16, 16), fill=-10., thr=-1.)
    boxes = torch.tensor([[0., 0., 8., 8.]])
    with pytest.raises(ValueError, match='fill'):
        paste_dense_logits(torch.zeros(1, 4, 4), boxes, 4, 0, (16, 16),
                           (16, 16), fill=0., thr=-1.)
    with pytest.raises(ValueError, match='N = 1 boxes'):
        paste_dense_logits(torch.zeros(2, 4, 4), boxes, 4, 0, (16, 16),
                           (16, 16), fill=-10., thr=-1.)


def test_rescale_gt_masks_keeps_partial_coverage():
    masks = torch.zeros(2, 16, 16, dtype=torch.bool)
    masks[0, 5, 6] = True  # a single pixel: taps rows/cols 4i+1, 4i+2
    masks[1, 4:12, 8:16] = True
    small = rescale_gt_masks(masks, (4, 4))
    assert small.dtype == torch.bool and small.shape == (2, 4, 4)
    assert small[0].nonzero().tolist() == [[1, 1]]
    assert small[1, 1:3, 2:4].all() and small[1].sum() == 4
    assert rescale_gt_masks(masks[:0], (4, 4)).shape == (0, 4, 4)


def test_logprob_to_logit_is_log_odds_and_finite_at_zero():
    p = torch.tensor([1e-8, 0.1, 0.5, 0.53, 0.9, 0.999], dtype=torch.float64)
    torch.testing.assert_close(logprob_to_logit(p.log()),
                               torch.log(p / (1 - p)))
    # a pixel at the proposal's own embedding (log p = 0) stays finite
    top = logprob_to_logit(torch.zeros(3))
    assert torch.isfinite(top).all() and (top > 13).all()
    # monotonic, so thresholding keeps its meaning
    grid = torch.linspace(-30, 0, 301)
    assert (logprob_to_logit(grid).diff() >= 0).all()
