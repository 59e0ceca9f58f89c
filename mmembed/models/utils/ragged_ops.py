# Copyright (c) mmembed authors. All rights reserved.
"""Box-restricted ("ragged") evaluation of dense maps, vectorised over boxes.

Shape shorthand: N boxes, T = total number of (box, pixel) pairs, i.e. the
summed area of the N regions.

Instead of evaluating N full maps (cost and memory N x H x W) we list, for
every box, only the pixels of its region, all boxes concatenated into flat
tensors of length T. Every op on them is one batched tensor op; the cost grows
with the summed box area. :func:`chunk_ranges` splits the boxes so that T
stays under a memory budget.
"""
import math
from typing import List, NamedTuple, Tuple

import torch
from torch import Tensor


class RaggedGrid(NamedTuple):
    """Pixels of N rectangular regions, concatenated.

    Attributes:
        box_inds: (T,) long, the region each pixel belongs to.
        ys: (T,) long, pixel row.
        xs: (T,) long, pixel column.
        offsets: (N,) long, index in the flat list of each region's first
            pixel (row-major inside the region).
    """
    box_inds: Tensor
    ys: Tensor
    xs: Tensor
    offsets: Tensor


def region_areas(regions: Tensor) -> Tensor:
    """(N, 4) long ``[x0, y0, x1, y1)`` -> (N,) long areas (0 if empty)."""
    widths = (regions[:, 2] - regions[:, 0]).clamp(min=0)
    heights = (regions[:, 3] - regions[:, 1]).clamp(min=0)
    return widths * heights


def ragged_grid(regions: Tensor) -> RaggedGrid:
    """List the pixels of every region.

    Args:
        regions: (N, 4) long ``[x0, y0, x1, y1)``, end exclusive. Empty
            regions (x1 <= x0 or y1 <= y0) contribute no pixel.

    Returns:
        :class:`RaggedGrid` with T = sum of the region areas.
    """
    if regions.dim() != 2 or regions.shape[1] != 4:
        raise ValueError(f'regions must be (N, 4), got {tuple(regions.shape)}')
    regions = regions.long()
    widths = (regions[:, 2] - regions[:, 0]).clamp(min=0)
    areas = region_areas(regions)
    offsets = areas.cumsum(0) - areas
    box_inds = torch.repeat_interleave(
        torch.arange(len(regions), device=regions.device), areas)
    local = torch.arange(
        box_inds.numel(), device=regions.device) - offsets[box_inds]
    # box_inds only indexes regions with a positive area, so width > 0 here
    row_width = widths[box_inds]
    ys = regions[box_inds, 1] + torch.div(
        local, row_width, rounding_mode='floor')
    xs = regions[box_inds, 0] + local % row_width
    return RaggedGrid(box_inds, ys, xs, offsets)


def chunk_ranges(costs: Tensor, budget: int) -> List[Tuple[int, int]]:
    """Split ``range(N)`` into consecutive chunks of bounded summed cost.

    Item i goes to chunk ``floor(cost of items before i / budget)``, so a
    chunk's cost is below ``budget + max(costs)``; the number of chunks is
    about ``sum(costs) / budget``.

    Args:
        costs: (N,) non-negative ints (e.g. region areas).
        budget: target summed cost per chunk, > 0.

    Returns:
        list of ``(start, end)`` pairs covering ``range(N)``; empty if N = 0.
    """
    if budget <= 0:
        raise ValueError(f'chunk budget must be positive, got {budget}')
    if len(costs) == 0:
        return []
    costs = costs.long()
    chunk_ids = torch.div(
        costs.cumsum(0) - costs, budget, rounding_mode='floor')
    _, counts = torch.unique_consecutive(chunk_ids, return_counts=True)
    ends = counts.cumsum(0).tolist()
    return list(zip([0] + ends[:-1], ends))


def even_chunks(num: int, cost_per_item: int,
                budget: int) -> List[Tuple[int, int]]:
    """Split ``range(num)`` into equal chunks of at most ``budget`` cost.

    Unlike :func:`chunk_ranges` every number here is a host-side Python int
    (shapes, never tensor values), so choosing the chunks never waits for
    the device. With ``num * cost_per_item <= budget`` there is one chunk,
    and the ops launched per call do not depend on ``num``.

    Args:
        num: number of items (e.g. detections), >= 0.
        cost_per_item: cost of one item (e.g. H x W output pixels), >= 0.
        budget: target cost per chunk, > 0; a single item above it gets a
            chunk of its own.

    Returns:
        list of ``(start, end)`` pairs covering ``range(num)``; empty if
        ``num`` is 0.
    """
    if budget <= 0:
        raise ValueError(f'chunk budget must be positive, got {budget}')
    if num <= 0:
        return []
    per_chunk = max(1, budget // max(cost_per_item, 1))
    # equal chunks: N = 101 with room for 100 gives 51 + 50, not 100 + 1
    num_chunks = math.ceil(num / per_chunk)
    size = math.ceil(num / num_chunks)
    return [(start, min(start + size, num)) for start in range(0, num, size)]


def region_masks(regions: Tensor, size: Tuple[int, int]) -> Tensor:
    """Rasterise rectangular regions.

    Args:
        regions: (N, 4) ``[x0, y0, x1, y1)``, end exclusive, long or float
            holding whole numbers; may reach outside the map or be empty.
        size: ``(h, w)`` of the map.

    Returns:
        (N, h, w) bool, True inside each region.
    """
    if regions.dim() != 2 or regions.shape[1] != 4:
        raise ValueError(f'regions must be (N, 4), got {tuple(regions.shape)}')
    ys = torch.arange(size[0], device=regions.device, dtype=regions.dtype)
    xs = torch.arange(size[1], device=regions.device, dtype=regions.dtype)
    # an (N, h) and an (N, w) test and one broadcast: fewer ops (and less
    # work) than four (N, h, w) comparisons
    in_rows = (ys >= regions[:, 1:2]) & (ys < regions[:, 3:4])
    in_cols = (xs >= regions[:, 0:1]) & (xs < regions[:, 2:3])
    return in_rows.unsqueeze(2) & in_cols.unsqueeze(1)


def box_cell_masks(boxes: Tensor, stride: int, expand: int,
                   size: Tuple[int, int]) -> Tensor:
    """The cells of :func:`boxes_to_cells` as dense masks, unclamped and
    computed straight from the boxes in a few ops.

    Cell c (row or column) is in box i's region when
    ``floor(x1 / s) - e <= c <= floor(x2 / s) + e``, i.e. when
    ``x1 < (c + e + 1) s`` and ``(c - e) s <= x2``: the box is compared
    with two aranges of cell edges, so no per-box cell indices are made.
    Equal to rasterising :func:`boxes_to_cells` for any stride where
    ``x / s`` rounds exactly (powers of two, as the strides 4 and 8 are).

    Args:
        boxes: (N, 4) float ``(x1, y1, x2, y2)`` in input pixels.
        stride: cell size in pixels.
        expand: cells added on every side.
        size: ``(h, w)`` of the map.

    Returns:
        (N, h, w) bool.
    """
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f'boxes must be (N, 4), got {tuple(boxes.shape)}')

    def axis(length: int, low: Tensor, high: Tensor) -> Tensor:
        ends = torch.arange((expand + 1) * stride,
                            (length + expand + 1) * stride, stride,
                            device=boxes.device, dtype=boxes.dtype)
        starts = torch.arange(-expand * stride, (length - expand) * stride,
                              stride, device=boxes.device, dtype=boxes.dtype)
        return (low < ends) & (starts <= high)

    in_rows = axis(size[0], boxes[:, 1:2], boxes[:, 3:4])
    in_cols = axis(size[1], boxes[:, 0:1], boxes[:, 2:3])
    return in_rows.unsqueeze(2) & in_cols.unsqueeze(1)


def boxes_to_cells(boxes: Tensor, stride: int, expand: int,
                   map_size: Tuple[int, int]) -> Tensor:
    """Cells of a stride-``stride`` map covered by boxes, grown by ``expand``.

    Follows official EmbedMask v3 inference (``int(box / 4)`` then 2 cells
    per side): cell ``floor(x1 / s) - e`` to ``floor(x2 / s) + e`` inclusive.

    Args:
        boxes: (N, 4) float ``(x1, y1, x2, y2)`` in input-image pixels.
        stride: map stride in pixels.
        expand: cells added on every side (may be 0).
        map_size: ``(h, w)`` of the map; the result is clamped to it.

    Returns:
        (N, 4) long ``[x0, y0, x1, y1)`` cell regions, end exclusive.
    """
    height, width = map_size
    cells = torch.div(boxes, stride, rounding_mode='floor').long()
    x0 = (cells[:, 0] - expand).clamp(0, width)
    y0 = (cells[:, 1] - expand).clamp(0, height)
    x1 = (cells[:, 2] + expand + 1).clamp(0, width)
    y1 = (cells[:, 3] + expand + 1).clamp(0, height)
    return torch.stack([x0, y0, x1, y1], dim=1)
