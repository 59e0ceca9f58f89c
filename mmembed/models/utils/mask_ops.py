# Copyright (c) mmembed authors. All rights reserved.
"""Mask helpers shared by the heads: GT mask rescaling and pasting
box-restricted dense maps back to image resolution.

Shape shorthand: G ground truths, N detections, T (detection, pixel) pairs,
(h, w) a stride-s map, (H, W) the output image.
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .ragged_ops import (RaggedGrid, box_cell_masks, chunk_ranges,
                         ragged_grid, region_areas)


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


def _check_paste_args(fill: float, thr: float, up_size: Tuple[int, int],
                      out_size: Tuple[int, int]) -> None:
    if fill > thr:
        raise ValueError(f'fill ({fill}) must not exceed thr ({thr}): '
                         'pixels outside the regions would be foreground')
    if up_size[0] < out_size[0] or up_size[1] < out_size[1]:
        raise ValueError(f'up_size {up_size} must cover out_size {out_size}')


def paste_dense_logits(logits: Tensor, boxes: Tensor, stride: int,
                       expand: int, up_size: Tuple[int, int],
                       out_size: Tuple[int, int], fill: float,
                       thr: float) -> Tensor:
    """Dense twin of :func:`paste_ragged_logits`: the same masks from full
    (h, w) maps, in a fixed number of batched ops and with no host
    synchronisation.

    It computes exactly the formula that :func:`paste_ragged_logits`
    reproduces sparsely, for all N maps at once::

        full = where(cell in region, logits, fill)          # (N, h, w)
        up = F.interpolate(full[:, None], up_size, mode='bilinear',
                           align_corners=False)[:, 0]
        masks = up[:, :H, :W] > thr

    where the region of detection i is ``boxes_to_cells(boxes, stride,
    expand)[i]`` (:func:`box_cell_masks`). Its cost is N x H x W whatever
    the boxes, which a GPU absorbs in a few kernels; on a CPU the ragged
    form, whose cost is the summed box area, is faster. Callers chunk N
    (:func:`even_chunks`) to bound memory.

    Args:
        logits: (N, h, w) float, one map per detection; values outside a
            detection's region are ignored.
        boxes: (N, 4) float ``(x1, y1, x2, y2)`` in input pixels.
        stride: map stride in pixels.
        expand: cells added on every side of a box's cells.
        up_size: size of the upsampled map; must cover ``out_size``.
        out_size: (H, W).
        fill: value outside the regions; must be <= ``thr``.
        thr: threshold (strict ``>``).

    Returns:
        (N, H, W) bool.
    """
    _check_paste_args(fill, thr, up_size, out_size)
    if logits.dim() != 3 or len(logits) != len(boxes):
        raise ValueError(f'logits must be (N, h, w) with N = {len(boxes)} '
                         f'boxes, got {tuple(logits.shape)}')
    inside = box_cell_masks(boxes, stride, expand, tuple(logits.shape[-2:]))
    if logits.dtype != torch.float32:  # the official map is float32
        logits = logits.float()
    full = torch.where(inside, logits, fill)
    upsampled = F.interpolate(
        full.unsqueeze(1), size=up_size, mode='bilinear',
        align_corners=False)
    return upsampled[:, 0, :out_size[0], :out_size[1]] > thr


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
    _check_paste_args(fill, thr, up_size, out_size)
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


def _box_interp_taps(low: Tensor,
                     high: Tensor,
                     out_len: int,
                     mask_len: int,
                     start: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """The two bilinear taps of every output pixel on one axis: the lower
    mask cell (N, out_len) float (may lie outside [0, m)) and the weight
    of the upper one; see :func:`_box_interp_weights`. With ``start`` (N,)
    integer-valued, the pixels are ``start + [0, out_len)`` of each box
    instead of ``[0, out_len)`` (the same float values: integers plus 0.5
    are exact)."""
    centres = (torch.arange(out_len, device=low.device,
                            dtype=torch.float32) + 0.5)[None]
    if start is not None:
        centres = centres + start.float()[:, None]
    low, high = low.float()[:, None], high.float()[:, None]
    norm = (centres - low) / (high - low) * 2 - 1  # (N, out_len)
    norm = torch.where(torch.isinf(norm), torch.zeros_like(norm), norm)
    src = ((norm + 1) * mask_len - 1) / 2  # grid_sample's unnormalise
    src_low = torch.floor(src)
    return src_low, src - src_low


def _box_interp_weights(low: Tensor,
                        high: Tensor,
                        out_len: int,
                        mask_len: int,
                        start: Optional[Tensor] = None) -> Tensor:
    """Bilinear weights that sample a mask of ``mask_len`` cells spanning
    ``[low, high)`` at the ``out_len`` pixel centres of the output axis.

    Follows ``F.grid_sample(align_corners=False, padding_mode='zeros')`` on
    the grid of mmdet's ``_do_paste_mask`` step by step (normalise to
    [-1, 1], then back to mask cells), so the float rounding is the same;
    infinite coordinates (zero-size boxes) become 0 as mmdet sets them.

    Args:
        low, high: (N,) float box bounds on this axis, output pixels.
        out_len: H or W.
        mask_len: m, the mask's cells on this axis.
        start: (N,) first output pixel of each box's row (see
            :func:`_box_interp_taps`); None: pixel 0.

    Returns:
        (N, out_len, mask_len) float32: row p holds the (at most two)
        weights of mask cells for output pixel p; taps outside the mask get
        weight 0 (zero padding).
    """
    src_low, frac = _box_interp_taps(low, high, out_len, mask_len, start)
    cells = torch.arange(
        mask_len, device=low.device, dtype=torch.float32)[None, None]
    # a tap outside [0, m) matches no cell: the zero padding of grid_sample
    return (cells == src_low[..., None]) * (1 - frac)[..., None] + \
        (cells == src_low[..., None] + 1) * frac[..., None]


def _resample_rows(maps: Tensor, src_low: Tensor, frac: Tensor) -> Tensor:
    """Bilinear resampling of the rows of ``maps`` (N, a, b) at
    ``out_len`` positions per map: (N, out_len, b).

    Every output row is a blend of two whole input rows, so the taps are
    two ``index_select`` row copies and one ``lerp`` (contiguous, no
    per-element index tensor); taps outside the map read one of the zero
    rows added on both sides (grid_sample's zero padding).
    """
    num, length, width = maps.shape
    padded = F.pad(maps, (0, 0, 1, 1)).reshape(num * (length + 2), width)
    base = (torch.arange(num, device=maps.device) * (length + 2))[:, None]
    low = (src_low + 1).clamp(0, length + 1).long() + base
    high = (src_low + 2).clamp(0, length + 1).long() + base
    out = torch.lerp(
        padded.index_select(0, low.flatten()),
        padded.index_select(0, high.flatten()),
        frac.flatten()[:, None].to(maps.dtype))
    return out.view(num, -1, width)


PASTE_IMPLS = ('auto', 'dense', 'ragged', 'separable', 'boxwise')


def paste_box_masks(mask_probs: Tensor,
                    boxes: Tensor,
                    out_size: Tuple[int, int],
                    thr: Optional[float] = 0.5,
                    chunk_pixels: int = 1 << 26,
                    impl: str = 'auto') -> Tensor:
    """Paste per-box mask maps into the image, all boxes at once.

    Equals mmdet's ``FCNMaskHead._do_paste_mask(masks[:, None], boxes, H,
    W, skip_empty=False)`` (``F.grid_sample`` of each map over its box,
    ``align_corners=False``, zeros outside the map) followed by ``>= thr``,
    which is also detectron2's ``paste_masks_in_image`` rule; tested against
    it, except that a box of zero width or height gives an empty mask (mmdet
    samples the box's middle row / column over the whole image, or NaN on
    its edge). Two implementations give the same maps (up to float
    rounding):

    - ``'dense'``: bilinear sampling on a box-aligned grid is separable, so
      the paste is two batched matmuls, ``W_y (N, H, m) @ map (N, m, m) @
      W_x (N, m, W)^T``, with no (N, H, W, 2) sampling grid. Built for the
      GPU rule of issue 8: nothing reads a value back to the host (no
      ``.item()``, ``nonzero`` or boolean indexing) and the number of
      launched ops does not depend on N. N is split into
      ``ceil(N * H * W / chunk_pixels)`` even chunks, a count computed from
      shapes only. Its cost is N x H x W x m whatever the boxes.
    - ``'ragged'``: evaluates only the output pixels a box's map can reach
      (its box plus half a map cell), as a flat list of (box, pixel) pairs
      with four bilinear taps each; cost grows with the summed box area,
      chunked under ``chunk_pixels`` pairs. Sizing the list reads the box
      areas on the host, so it synchronises; the fast choice on a CPU
      (mmdet and detectron2 paste box by box on the CPU for this reason).
    - ``'separable'``: the same separable sampling as ``'dense'``, with
      each axis done by gathering its two taps instead of a matmul with a
      mostly-zero weight matrix: N x H x (W + m) work instead of N x H x W
      x m, and no host synchronisation. The fast choice on a CPU when the
      boxes are large compared with the image (SharpMask's proposal
      windows, 1000 per image, many covering it whole).
    - ``'boxwise'``: box by box, each box's map sampled onto the pixels it
      can reach (the ragged support) with two small matmuls and written as
      a slice: the CPU rule of mmdet's ``_do_paste_mask`` and detectron2.
      A Python loop over the N boxes, kept because on a CPU it is the fast
      one: several times faster than ``'ragged'`` for 100 boxes in an 800 x
      1333 image (``benchmarks/results/paste_impls_cpu.json``, every layout
      against mmdet's paste), and a padded batched variant tried beside it
      lost too: its index tensors cost more than the loop. Reads the box
      regions on the host.
    - ``'auto'``: ``'dense'`` on CUDA, ``'boxwise'`` elsewhere.

    Args:
        mask_probs: (N, m_h, m_w) float, the map of each box (probabilities
            to threshold, or any values when ``thr`` is None).
        boxes: (N, 4) float ``(x1, y1, x2, y2)`` in output pixels.
        out_size: (H, W) of the output image.
        thr: binarisation threshold (``>=``); None returns the pasted float
            maps.
        chunk_pixels: memory budget, in output pixels of the dense path
            (N x H x W per chunk; ~5 bytes each). The ragged path keeps
            ~16 times more per evaluated (box, pixel) pair (int64 indices,
            four taps), so it evaluates ``chunk_pixels // 16`` pairs per
            chunk.
        impl: ``'auto'``, ``'dense'``, ``'ragged'``, ``'separable'`` or
            ``'boxwise'``, see above.

    Returns:
        (N, H, W) bool, or float32 when ``thr`` is None.
    """
    if mask_probs.dim() != 3:
        raise ValueError('mask_probs must be (N, m_h, m_w), got '
                         f'{tuple(mask_probs.shape)}')
    if boxes.shape != (len(mask_probs), 4):
        raise ValueError(f'boxes must be ({len(mask_probs)}, 4) for '
                         f'{len(mask_probs)} maps, got {tuple(boxes.shape)}')
    if chunk_pixels <= 0:
        raise ValueError(f'chunk_pixels must be > 0, got {chunk_pixels}')
    if impl not in PASTE_IMPLS:
        raise ValueError(f'impl must be one of {PASTE_IMPLS}, got {impl!r}')
    if impl == 'auto':
        impl = 'dense' if mask_probs.is_cuda else 'boxwise'
    num = len(mask_probs)
    height, width = int(out_size[0]), int(out_size[1])
    dtype = torch.bool if thr is not None else torch.float32
    if num == 0 or height == 0 or width == 0:
        return mask_probs.new_zeros((num, height, width), dtype=dtype)
    if impl == 'boxwise':
        return _paste_box_masks_boxwise(mask_probs.float(), boxes,
                                        (height, width), thr)
    if impl == 'ragged':
        return _paste_box_masks_ragged(mask_probs.float(), boxes,
                                       (height, width), thr,
                                       max(chunk_pixels // 16, 1))
    per_box = height * width
    num_chunks = min(num, math.ceil(num * per_box / chunk_pixels))
    outputs = []
    for probs, chunk_boxes in zip(
            mask_probs.float().chunk(num_chunks),
            boxes.chunk(num_chunks)):
        if impl == 'separable':
            # columns first, on the small (N, m_x, m_y) transpose, then
            # rows of the (N, m_y, W) result: both are row copies
            cols = _resample_rows(
                probs.transpose(1, 2).contiguous(),
                *_box_interp_taps(chunk_boxes[:, 0], chunk_boxes[:, 2],
                                  width, probs.shape[2]))
            pasted = _resample_rows(
                cols.transpose(1, 2).contiguous(),
                *_box_interp_taps(chunk_boxes[:, 1], chunk_boxes[:, 3],
                                  height, probs.shape[1]))
        else:
            weights_y = _box_interp_weights(chunk_boxes[:, 1],
                                            chunk_boxes[:, 3], height,
                                            probs.shape[1])
            weights_x = _box_interp_weights(chunk_boxes[:, 0],
                                            chunk_boxes[:, 2], width,
                                            probs.shape[2])
            pasted = weights_y @ probs @ weights_x.transpose(1, 2)
        # an empty box is an empty mask (mmdet instead samples the middle
        # row / column over the whole image, or NaN on the box edge: 0 / 0)
        nonempty = ((chunk_boxes[:, 2] != chunk_boxes[:, 0]) & (
            chunk_boxes[:, 3] != chunk_boxes[:, 1]))[:, None, None]
        if thr is not None:
            # on the bool result: one pass less over N x H x W floats
            outputs.append((pasted >= thr) & nonempty)
        else:
            outputs.append(torch.where(nonempty, pasted, 0.))
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs)


def _box_sample_coords(pixels: Tensor, low: Tensor, high: Tensor,
                       mask_len: int) -> Tuple[Tensor, Tensor]:
    """Map cells sampled by output pixels (same steps as
    :func:`_box_interp_weights`): (lower cell (long), weight of the upper
    one), all (T,)."""
    norm = (pixels.float() + 0.5 - low) / (high - low) * 2 - 1
    norm = torch.where(torch.isinf(norm), torch.zeros_like(norm), norm)
    src = ((norm + 1) * mask_len - 1) / 2
    src_low = torch.floor(src)
    return src_low.long(), src - src_low


def _box_support(boxes: Tensor, mask_size: Tuple[int, int],
                 out_size: Tuple[int, int]) -> Tensor:
    """(N, 4) long ``(x_start, y_start, x_end, y_end)``: the output pixels
    each box's map can reach. A pixel reaches the map while its sample lies
    within half a cell (plus a pixel for rounding) of the box; a zero-size
    box reaches no pixel: an empty box is an empty mask (see the dense
    path)."""

    def axis(low: Tensor, high: Tensor, cells: int,
             size: int) -> Tuple[Tensor, Tensor]:
        lo, hi = torch.minimum(low, high), torch.maximum(low, high)
        half = (hi - lo) / cells / 2 + 1
        start = torch.floor(lo - half).clamp(0, size)
        end = torch.ceil(hi + half).clamp(0, size)
        end = torch.where(hi == lo, start, end)
        return start.long(), end.long()

    x_start, x_end = axis(boxes[:, 0], boxes[:, 2], mask_size[1], out_size[1])
    y_start, y_end = axis(boxes[:, 1], boxes[:, 3], mask_size[0], out_size[0])
    return torch.stack([x_start, y_start, x_end, y_end], dim=1)


def _paste_box_masks_boxwise(mask_probs: Tensor, boxes: Tensor,
                             out_size: Tuple[int, int],
                             thr: Optional[float]) -> Tensor:
    """``'boxwise'`` implementation of :func:`paste_box_masks`: per box,
    ``W_y (h, m) @ map (m, m) @ W_x (w, m)^T`` over the h x w pixels it can
    reach, written into its slice of the output."""
    num, mask_h, mask_w = mask_probs.shape
    height, width = out_size
    boxes = boxes.float()
    regions = _box_support(boxes, (mask_h, mask_w), out_size)
    dtype = torch.bool if thr is not None else torch.float32
    out = mask_probs.new_zeros((num, height, width), dtype=dtype)
    # one host read for all boxes, not one per box
    for i, (x0, y0, x1, y1) in enumerate(regions.tolist()):
        if x1 <= x0 or y1 <= y0:
            continue
        box = boxes[i:i + 1]
        weights_y = _box_interp_weights(box[:, 1], box[:, 3], y1 - y0,
                                        mask_h, regions[i:i + 1, 1])
        weights_x = _box_interp_weights(box[:, 0], box[:, 2], x1 - x0,
                                        mask_w, regions[i:i + 1, 0])
        pasted = weights_y[0] @ mask_probs[i] @ weights_x[0].T
        out[i, y0:y1, x0:x1] = pasted >= thr if thr is not None else pasted
    return out


def _paste_box_masks_ragged(mask_probs: Tensor, boxes: Tensor,
                            out_size: Tuple[int, int], thr: Optional[float],
                            chunk_pairs: int) -> Tensor:
    """``'ragged'`` implementation of :func:`paste_box_masks`, evaluating
    about ``chunk_pairs`` (box, pixel) pairs at a time."""
    num, mask_h, mask_w = mask_probs.shape
    height, width = out_size
    boxes = boxes.float()
    regions = _box_support(boxes, (mask_h, mask_w), out_size)
    dtype = torch.bool if thr is not None else torch.float32
    out = mask_probs.new_zeros((num, height, width), dtype=dtype)
    flat_probs = mask_probs.reshape(-1)
    for start, end in chunk_ranges(region_areas(regions), chunk_pairs):
        grid = ragged_grid(regions[start:end])
        inds = grid.box_inds + start
        box = boxes[inds]
        y_low, y_frac = _box_sample_coords(grid.ys, box[:, 1], box[:, 3],
                                           mask_h)
        x_low, x_frac = _box_sample_coords(grid.xs, box[:, 0], box[:, 2],
                                           mask_w)

        def tap(cy: Tensor, cx: Tensor) -> Tensor:
            inside = (cy >= 0) & (cy < mask_h) & (cx >= 0) & (cx < mask_w)
            index = (inds * mask_h + cy.clamp(0, mask_h - 1)) * mask_w + \
                cx.clamp(0, mask_w - 1)
            return torch.where(inside, flat_probs[index],
                               flat_probs.new_zeros(()))

        # grid_sample's weighting: corner value x (x weight) x (y weight)
        values = tap(y_low, x_low) * (1 - x_frac) * (1 - y_frac) + \
            tap(y_low, x_low + 1) * x_frac * (1 - y_frac) + \
            tap(y_low + 1, x_low) * (1 - x_frac) * y_frac + \
            tap(y_low + 1, x_low + 1) * x_frac * y_frac
        flat = (inds * height + grid.ys) * width + grid.xs
        out.view(-1)[flat] = values >= thr if thr is not None else values
    return out


def clean_instance_masks(masks: Tensor) -> Tensor:
    """Keep each mask's largest 8-connected component and fill its holes.

    For masks whose refinement features carry texture into them (specks
    beside the object, holes inside it: docs/sharpmask.md). Off by default
    in the heads (``test_cfg.mask_clean``): an object split by an occluder
    is two components, and this keeps one.

    Connected components have no batched torch op, so this labels mask by
    mask with SciPy, each within its bounding box, on the host (a CUDA
    tensor is copied there and back: a synchronisation).

    Args:
        masks: (N, H, W) bool.

    Returns:
        (N, H, W) bool on the device of ``masks``.
    """
    import numpy as np
    from scipy import ndimage
    if masks.dim() != 3 or masks.dtype != torch.bool:
        raise ValueError('masks must be (N, H, W) bool, got '
                         f'{tuple(masks.shape)} {masks.dtype}')
    host = masks.cpu().numpy()
    out = np.zeros_like(host)
    eight = np.ones((3, 3), dtype=bool)
    rows_any, cols_any = host.any(axis=2), host.any(axis=1)
    for i in range(len(host)):
        rows, cols = np.flatnonzero(rows_any[i]), np.flatnonzero(cols_any[i])
        if len(rows) == 0:
            continue
        crop = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        labels, parts = ndimage.label(host[i][crop], structure=eight)
        if parts > 1:
            sizes = np.bincount(labels.ravel())
            sizes[0] = 0
            keep = labels == sizes.argmax()
        else:
            keep = labels > 0
        out[i][crop] = ndimage.binary_fill_holes(keep)
    return torch.from_numpy(out).to(masks.device)


def read_mask_clean(test_cfg) -> bool:
    """``test_cfg.mask_clean`` (default False), refused unless a bool."""
    clean = test_cfg.get('mask_clean', False)
    if not isinstance(clean, bool):
        raise ValueError('test_cfg.mask_clean must be True or False, got '
                         f'{clean!r}')
    return clean
