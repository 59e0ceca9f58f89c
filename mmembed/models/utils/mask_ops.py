# Copyright (c) mmembed authors. All rights reserved.
"""Mask helpers shared by the heads: GT mask rescaling and pasting
box-restricted dense maps back to image resolution.

Shape shorthand: G ground truths, N detections, T (detection, pixel) pairs,
(h, w) a stride-s map, (H, W) the output image.
"""
import math
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .ragged_ops import RaggedGrid, ragged_grid, region_areas


def rescale_gt_masks(masks: Tensor, size: Tuple[int, int]) -> Tensor:
    """Resize binary GT masks to a coarser map, keeping partial coverage.

    Official EmbedMask (v1-v3, ``loss.py::prepare_masks``) resizes GT masks
    bilinearly (``align_corners=False``) to stride 4 and keeps any pixel > 0,
    so targets come out slightly dilated; we match it for parity
    (``specs/methods.md`` 1.2).

    Args:
        masks: (G, H, W) bool/uint8/float binary masks.
        size: output ``(h, w)``.

    Returns:
        (G, h, w) bool.
    """
    if masks.dim() != 3:
        raise ValueError(f'masks must be (G, H, W), got {tuple(masks.shape)}')
    if masks.shape[0] == 0:
        return masks.new_zeros((0, *size), dtype=torch.bool)
    resized = F.interpolate(
        masks[:, None].float(), size=size, mode='bilinear',
        align_corners=False)[:, 0]
    return resized > 0


def upsampled_size(map_size: Tuple[int, int], stride: int,
                   input_size: Tuple[int, int],
                   out_size: Tuple[int, int]) -> Tuple[int, int]:
    """Size to which a stride-``stride`` map is upsampled before cropping.

    Official EmbedMask v3 (``coco_eval.py::prepare_for_coco_segmentation``):
    ``ceil(h * stride * out_h / input_h)``; the top-left ``out_size`` window
    of the upsampled map is the mask at output resolution. ``input_size`` is
    the resized (unpadded) network input, ``map_size`` the map of the padded
    input.
    """
    return (math.ceil(map_size[0] * stride * out_size[0] / input_size[0]),
            math.ceil(map_size[1] * stride * out_size[1] / input_size[1]))


def _source_index(dst: Tensor, in_size: int,
                  out_size: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Bilinear source taps of output coordinates, as
    ``F.interpolate(mode='bilinear', align_corners=False)`` computes them in
    float32: returns (lower index, upper index, weight of the upper one)."""
    scale = torch.tensor(in_size, dtype=torch.float32) / out_size
    src = ((dst.float() + 0.5) * scale - 0.5).clamp(min=0)
    low = src.long().clamp(max=in_size - 1)
    high = (low + 1).clamp(max=in_size - 1)
    return low, high, src - low.float()


def candidate_out_regions(cell_regions: Tensor, up_size: Tuple[int, int],
                          map_size: Tuple[int, int],
                          out_size: Tuple[int, int]) -> Tensor:
    """Output pixels whose bilinear taps can reach a region's cells.

    Args:
        cell_regions: (N, 4) long ``[x0, y0, x1, y1)`` on the (h, w) map.
        up_size, map_size, out_size: see :func:`paste_ragged_logits`.

    Returns:
        (N, 4) long ``[x0, y0, x1, y1)`` regions on the (H, W) output. One
        extra pixel per side absorbs rounding; the bounds are conservative.
    """
    scale_y = up_size[0] / map_size[0]
    scale_x = up_size[1] / map_size[1]
    # a tap reaches cell c when src in (c - 1, c + 1), src = (y+.5)/s - .5
    x0 = torch.floor((cell_regions[:, 0] - 0.5) * scale_x - 0.5) - 1
    y0 = torch.floor((cell_regions[:, 1] - 0.5) * scale_y - 0.5) - 1
    x1 = torch.ceil((cell_regions[:, 2] + 0.5) * scale_x - 0.5) + 1
    y1 = torch.ceil((cell_regions[:, 3] + 0.5) * scale_y - 0.5) + 1
    out = torch.stack([
        x0.clamp(0, out_size[1]),
        y0.clamp(0, out_size[0]),
        x1.clamp(0, out_size[1]),
        y1.clamp(0, out_size[0])
    ], dim=1).long()
    empty = region_areas(cell_regions) == 0
    return out.masked_fill(empty[:, None], 0)


def paste_ragged_logits(values: Tensor, cell_regions: Tensor,
                        cell_offsets: Tensor, map_size: Tuple[int, int],
                        up_size: Tuple[int, int], out_size: Tuple[int, int],
                        fill: float, thr: float) -> Tensor:
    """Threshold bilinearly upsampled, box-restricted maps at output size.

    Each detection i has values only on its cell region (``values`` holds
    them row-major, starting at ``cell_offsets[i]``); everywhere else its map
    equals ``fill``. The result equals, for every i::

        full = fill outside the region, values inside      # (h, w)
        up = F.interpolate(full[None, None], up_size, mode='bilinear',
                           align_corners=False)[0, 0]
        mask_i = up[:H, :W] > thr

    but costs O(summed region area at output size), not N x H x W.

    Args:
        values: (T,) float, the region values of all detections.
        cell_regions: (N, 4) long ``[x0, y0, x1, y1)`` on the (h, w) map.
        cell_offsets: (N,) long, see :class:`RaggedGrid`.
        map_size: (h, w).
        up_size: size of the upsampled map; must cover ``out_size``.
        out_size: (H, W).
        fill: value outside the regions; must be <= ``thr``.
        thr: threshold (strict ``>``).

    Returns:
        (N, H, W) bool.
    """
    if fill > thr:
        raise ValueError(f'fill ({fill}) must not exceed thr ({thr}): '
                         'pixels outside the regions would be foreground')
    if up_size[0] < out_size[0] or up_size[1] < out_size[1]:
        raise ValueError(f'up_size {up_size} must cover out_size {out_size}')
    num, device = len(cell_regions), values.device
    height, width = out_size
    masks = torch.zeros((num, height, width), dtype=torch.bool, device=device)
    out_regions = candidate_out_regions(cell_regions, up_size, map_size,
                                        out_size)
    grid: RaggedGrid = ragged_grid(out_regions)
    if grid.box_inds.numel() == 0:
        return masks
    y_low, y_high, y_w = _source_index(grid.ys, map_size[0], up_size[0])
    x_low, x_high, x_w = _source_index(grid.xs, map_size[1], up_size[1])
    cells = cell_regions[grid.box_inds]
    offsets = cell_offsets[grid.box_inds]
    cell_width = cells[:, 2] - cells[:, 0]

    def tap(cy: Tensor, cx: Tensor) -> Tensor:
        inside = (cy >= cells[:, 1]) & (cy < cells[:, 3]) & \
                 (cx >= cells[:, 0]) & (cx < cells[:, 2])
        index = offsets + (cy - cells[:, 1]) * cell_width + (cx - cells[:, 0])
        index = torch.where(inside, index, torch.zeros_like(index))
        return torch.where(inside, values[index].float(),
                           values.new_full((), fill, dtype=torch.float32))

    # same weighting order as the CPU upsample_bilinear2d kernel
    top = (1 - x_w) * tap(y_low, x_low) + x_w * tap(y_low, x_high)
    bottom = (1 - x_w) * tap(y_high, x_low) + x_w * tap(y_high, x_high)
    up = (1 - y_w) * top + y_w * bottom
    flat = (grid.box_inds * height + grid.ys) * width + grid.xs
    masks.view(-1)[flat] = up > thr
    return masks
