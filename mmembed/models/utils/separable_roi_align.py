# Copyright (c) mmembed authors. All rights reserved.
"""mmcv's RoIAlign (average mode, fixed sampling ratio) as two matmuls.

Why: mmcv 2.1's CPU RoIAlign kernel runs on one thread (its
``#pragma omp`` is commented out) and reads four feature values per sample
point, for every channel: 100 RoIs of 256 channels at ISTR v2's 28 x 28 take
about half a second at 800 x 1333, a fifth of the whole model's time.

The bilinear weight of a sample point is a product of a y factor and an x
factor, and mmcv's rules (a sample more than one cell outside the map
contributes nothing; one within a cell is clamped to the border; the last
row or column has no upper neighbour) act on y and x separately. So is the
average over the ``s x s`` samples of a bin. Hence, per RoI,

    out[c] = A_y @ F[c, window] @ A_x^T,

with ``A_y`` (S_h, h) and ``A_x`` (S_w, w) holding the averaged
interpolation weights over a window (h, w) of the map that covers the RoI's
samples. Every RoI's window is gathered channels-last into one padded batch
and both products are batched matmuls, which use all of torch's threads and
get autograd for free. The values equal mmcv's up to float summation order.

The matmul form computes ``h * w`` products per channel where mmcv computes
``4 * s * s`` per bin; it wins when a RoI covers a few cells per bin (the
level mapping of FPN extractors keeps RoIs 14-56 cells wide at 28 x 28
output) and loses on a wide RoI pooled to a tiny output. On CUDA, while
tracing, for ``sampling_ratio=0`` (a per-RoI sample count), for max
pooling, and for a pass that needs a gradient at outputs below 14 x 14
(where autograd's backward is slower than mmcv's), :class:`SeparableRoIAlign`
calls mmcv's kernel. :class:`mmembed.models.SeparableRoIExtractor` builds it
in place of mmdet's ``RoIAlign``.

Shape shorthand: B images, C channels, H x W map, R RoIs, S_h x S_w output.
"""
from typing import Tuple, Union

import torch
from mmcv.ops import RoIAlign
from torch import Tensor, nn


def _axis_weights(start: Tensor, length: Tensor, out_size: int,
                  sampling_ratio: int, size: int) -> Tuple[Tensor, Tensor]:
    """Averaged bilinear weights of one axis, on a window per RoI.

    Args:
        start: (R,) first coordinate of each RoI on the map (cells).
        length: (R,) extent of each RoI on the map (cells).
        out_size: bins along the axis (S).
        sampling_ratio: sample points per bin along the axis (s > 0).
        size: the map's extent along the axis (H or W).

    Returns:
        ``weights`` (R, S, n): the weight of window cell j for bin i, summed
        over the bin's samples and divided by ``s`` (so the y and x factors
        together divide by ``s * s`` as mmcv's ``count``); ``origin`` (R,)
        the window's first cell on the map. n is the widest window.
    """
    num_rois = start.shape[0]
    bin_size = length / out_size
    steps = torch.arange(out_size, dtype=start.dtype, device=start.device)
    offsets = torch.arange(
        sampling_ratio, dtype=start.dtype, device=start.device) + 0.5
    # (R, S, s): mmcv's yy = start + ph * bin + (iy + .5) * bin / s, in
    # mmcv's order of operations (a different rounding could move a sample
    # that lands on a cell edge to the neighbouring cell)
    bin_size = bin_size[:, None, None]
    coord = (start[:, None, None] + steps[None, :, None] * bin_size) + (
        offsets[None, None, :] * bin_size / sampling_ratio)
    inside = (coord >= -1.0) & (coord <= size)
    coord = coord.clamp(min=0)
    low = coord.floor()
    at_border = low >= size - 1
    low = torch.where(at_border, torch.full_like(low, size - 1), low)
    coord = torch.where(at_border, low, coord)
    high = torch.where(at_border, low, low + 1)
    frac = coord - low
    # where, not a product: a non-finite RoI coordinate makes frac NaN,
    # and its samples must weigh 0 like any sample outside the map
    zero = torch.zeros_like(frac)
    w_low = torch.where(inside, (1 - frac) / sampling_ratio, zero)
    w_high = torch.where(inside, frac / sampling_ratio, zero)
    low = low.long()
    high = high.long()
    # window: from the lowest to the highest cell any kept sample touches;
    # a RoI with no kept sample gets a 1-cell window of zero weights
    big = torch.iinfo(torch.long).max
    origin = torch.where(inside, low,
                         torch.full_like(low, big)).flatten(1).amin(dim=1)
    origin = torch.where(origin == big, torch.zeros_like(origin), origin)
    last = torch.where(inside, high,
                       torch.full_like(high, -1)).flatten(1).amax(dim=1)
    extent = (last - origin + 1).clamp(min=1)
    num = int(extent.max()) if num_rois else 1
    weights = coord.new_zeros(num_rois, out_size, num)
    # outside samples have weight 0; clamp their index into the window
    rel_low = (low - origin[:, None, None]).clamp(0, num - 1)
    rel_high = (high - origin[:, None, None]).clamp(0, num - 1)
    weights.scatter_add_(2, rel_low, w_low)
    weights.scatter_add_(2, rel_high, w_high)
    return weights, origin


def separable_roi_align(feats: Tensor,
                        rois: Tensor,
                        output_size: Union[int, Tuple[int, int]],
                        spatial_scale: float,
                        sampling_ratio: int,
                        aligned: bool = True) -> Tensor:
    """mmcv's ``roi_align(..., pool_mode='avg')`` by batched matmuls.

    Args:
        feats: (B, C, H, W) float map.
        rois: (R, 5) ``[batch index, x1, y1, x2, y2]`` in input pixels.
        output_size: S or (S_h, S_w).
        spatial_scale: map cells per input pixel (1 / stride).
        sampling_ratio: sample points per bin along each axis; must be > 0.
        aligned: shift by half a cell (detectron2's ROIAlignV2), as mmcv.

    Returns:
        (R, C, S_h, S_w) in ``feats``' dtype, laid out channels-last
        (``torch.channels_last``; call ``.contiguous()`` for ``view``).
    """
    if sampling_ratio <= 0:
        raise ValueError('separable_roi_align: sampling_ratio must be > 0 '
                         '(the adaptive count differs per RoI), got '
                         f'{sampling_ratio}')
    if feats.dim() != 4 or rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError('separable_roi_align: expects feats (B, C, H, W) and '
                         f'rois (R, 5), got {tuple(feats.shape)} and '
                         f'{tuple(rois.shape)}')
    out_h, out_w = ((output_size, output_size)
                    if isinstance(output_size, int) else tuple(output_size))
    num_imgs, channels, height, width = feats.shape
    num_rois = rois.shape[0]
    if num_rois == 0:
        return feats.new_zeros(0, channels, out_h, out_w)
    rois = rois.to(feats.dtype)
    img = rois[:, 0].long()
    if bool((img < 0).any() | (img >= num_imgs).any()):
        raise ValueError(
            f'separable_roi_align: RoI batch index {int(img.max())} (or a '
            f'negative one) outside the {num_imgs} images of feats')
    offset = 0.5 if aligned else 0.0
    x1 = rois[:, 1] * spatial_scale - offset
    y1 = rois[:, 2] * spatial_scale - offset
    roi_w = rois[:, 3] * spatial_scale - offset - x1
    roi_h = rois[:, 4] * spatial_scale - offset - y1
    if aligned:
        if bool((roi_w < 0).any() | (roi_h < 0).any()):
            raise ValueError('separable_roi_align: RoIs with x2 < x1 or '
                             'y2 < y1 (aligned=True needs a non-negative '
                             'size, as mmcv)')
    else:
        roi_w = roi_w.clamp(min=1.0)
        roi_h = roi_h.clamp(min=1.0)
    weight_y, origin_y = _axis_weights(y1, roi_h, out_h, sampling_ratio,
                                       height)
    weight_x, origin_x = _axis_weights(x1, roi_w, out_w, sampling_ratio, width)
    win_h, win_w = weight_y.shape[2], weight_x.shape[2]
    # channels-last windows: each gathered cell is a contiguous C-vector;
    # indices past the map's edge are clamped (their weights are 0)
    rows = (origin_y[:, None] +
            torch.arange(win_h, device=feats.device)).clamp(max=height - 1)
    cols = (origin_x[:, None] +
            torch.arange(win_w, device=feats.device)).clamp(max=width - 1)
    feats_cl = feats.permute(0, 2, 3, 1)
    if feats_cl.is_contiguous():
        # a channels-last map: one row copy of C floats per window cell
        # (index_select), 2-3x faster than the element-wise advanced index
        # below, which the NCHW layout needs
        flat = (img[:, None, None] * height + rows[:, :, None]) * width + \
            cols[:, None, :]
        windows = feats_cl.reshape(-1, channels).index_select(
            0, flat.flatten()).view(num_rois, win_h, win_w, channels)
    else:
        windows = feats_cl[img[:, None, None], rows[:, :, None],
                           cols[:, None, :]]  # (R, h, w, C)
    # A_y @ window over y: (R, S_h, h) x (R, h, w*C)
    pooled_y = torch.bmm(weight_y, windows.reshape(num_rois, win_h, -1))
    # then over x: (R, S_h*C... ) laid out so the x contraction is one bmm
    pooled_y = pooled_y.view(num_rois, out_h, win_w, channels)
    out = torch.matmul(weight_x[:, None], pooled_y)  # (R, S_h, S_w, C)
    # (R, C, S_h, S_w) in channels_last memory format, without a copy: the
    # extractor's scatter into its output copies anyway, and convs read it
    return out.permute(0, 3, 1, 2)


class SeparableRoIAlign(RoIAlign):
    """mmcv's ``RoIAlign`` whose CPU forward is :func:`separable_roi_align`.

    Same arguments and results as ``mmcv.ops.RoIAlign``; only the CPU path
    with average pooling, a fixed ``sampling_ratio`` and no torchvision
    changes, and not while tracing (the window size depends on the data).
    When a gradient is needed, the matmul path is taken only for outputs of
    at least :attr:`min_grad_size` bins a side: autograd's backward of the
    window gather (a scatter-add) is slower than mmcv's backward at 7 x 7
    and faster from 14 x 14 (``tools/analysis_tools/roi_align_benchmark.py``,
    ``benchmarks/results/roi_align_cpu.json``).
    """

    #: smallest output side for which a pass that needs a gradient takes
    #: the matmul path
    min_grad_size = 14

    def is_separable_for(self, feats: Tensor) -> bool:
        """Whether :meth:`forward` on ``feats`` takes the matmul path."""
        if (feats.device.type != 'cpu' or self.sampling_ratio <= 0
                or self.pool_mode != 'avg' or self.use_torchvision
                or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
            return False
        needs_grad = torch.is_grad_enabled() and feats.requires_grad
        return not needs_grad or min(self.output_size) >= self.min_grad_size

    def forward(self, input: Tensor, rois: Tensor) -> Tensor:
        if not self.is_separable_for(input):
            # mmcv's kernels index NCHW memory whatever the strides: a
            # channels-last map would pool wrong values without an error
            return super().forward(input.contiguous(), rois)
        return separable_roi_align(input, rois, self.output_size,
                                   self.spatial_scale, self.sampling_ratio,
                                   self.aligned)
