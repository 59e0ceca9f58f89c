# Copyright (c) mmembed authors. All rights reserved.
"""Boundary IoU (Cheng et al., "Boundary IoU: Improving Object-Centric Image
Segmentation Evaluation", CVPR 2021, arXiv 2103.16562; reference code
``bowenc0221/boundary-iou-api`` ``boundary_iou/utils/boundary_utils.py``).

The boundary region of a mask is the set of its pixels within distance d of
its contour: the mask minus its erosion by a (2d + 1) x (2d + 1) square
(chessboard distance; the reference erodes d times with a 3 x 3 kernel,
the same set). Pixels outside the image count as background, so a mask cut
by the image border has a boundary along the border, as in the reference
(which pads with one zero pixel before eroding). d is a fraction of the
image diagonal, ``round(0.02 * sqrt(H^2 + W^2))`` and at least 1.

Shape shorthand: N masks of one image, H x W the image, G ground truths, D
detections.
"""
import math
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F

ArrayLike = Union[np.ndarray, torch.Tensor]

# elements per chunk: N x (H + 2d + 1) x (W + 2d + 1) int32 (a few
# temporaries of that size, ~128 MB each)
CHUNK_ELEMENTS = 1 << 25


def boundary_dilation(height: int, width: int,
                      dilation_ratio: float = 0.02) -> int:
    """d in pixels: ``round(dilation_ratio * image diagonal)``, >= 1."""
    if not dilation_ratio > 0:
        raise ValueError(f'dilation_ratio must be > 0, got {dilation_ratio}')
    return max(1, int(round(dilation_ratio * math.hypot(height, width))))


def mask_to_boundary(masks: ArrayLike,
                     dilation_ratio: float = 0.02,
                     dilation: int = None) -> np.ndarray:
    """Inner boundary bands of binary masks.

    Args:
        masks: (N, H, W) or (H, W), bool or {0, 1}, numpy or torch.
        dilation_ratio: d as a fraction of the image diagonal.
        dilation: d in pixels; overrides ``dilation_ratio``.

    Returns:
        bool array of the input's shape: pixels of the mask whose
        chessboard distance to the nearest background pixel (outside the
        image included) is <= d.
    """
    masks_t = torch.as_tensor(np.asarray(masks) if not isinstance(
        masks, torch.Tensor) else masks).bool()
    if masks_t.dim() not in (2, 3):
        raise ValueError(f'masks must be (N, H, W) or (H, W), got '
                         f'{tuple(masks_t.shape)}')
    single = masks_t.dim() == 2
    if single:
        masks_t = masks_t[None]
    num, height, width = masks_t.shape
    if dilation is None:
        dilation = boundary_dilation(height, width, dilation_ratio)
    elif dilation < 1:
        raise ValueError(f'dilation must be >= 1 pixel, got {dilation}')
    size = 2 * dilation + 1
    per_mask = (height + 2 * dilation + 1) * (width + 2 * dilation + 1)
    chunk = max(1, CHUNK_ELEMENTS // per_mask)
    bands = []
    for start in range(0, num, chunk):  # a memory bound, not per instance
        part = masks_t[start:start + chunk].cpu()
        # background indicator with d pixels of background around the image
        background = F.pad((~part).int(), [dilation] * 4, value=1)
        # a pixel is within d of the background iff its (2d+1)^2 window
        # holds a background pixel: window sums from a summed-area table
        # cost O(HW) whatever d (a max-pool costs O(HW d); d is 20-30 px
        # on COCO-sized images)
        table = F.pad(
            background.cumsum(1, dtype=torch.int32).cumsum(
                2, dtype=torch.int32), [1, 0, 1, 0])
        window = (table[:, size:, size:] - table[:, :-size, size:] -
                  table[:, size:, :-size] + table[:, :-size, :-size])
        bands.append(part & (window > 0))
    band = torch.cat(bands) if bands else masks_t.clone()
    band = band.numpy()
    return band[0] if single else band


def mask_iou(dt_masks: ArrayLike, gt_masks: ArrayLike) -> np.ndarray:
    """(D, H, W), (G, H, W) binary -> (D, G) IoU; 0 where both are empty."""
    dt = torch.as_tensor(np.asarray(dt_masks)).flatten(1).double()
    gt = torch.as_tensor(np.asarray(gt_masks)).flatten(1).double()
    inter = dt @ gt.t()
    union = dt.sum(1, keepdim=True) + gt.sum(1)[None] - inter
    return (inter / union.clamp(min=1)).numpy()


def boundary_iou(dt_masks: ArrayLike,
                 gt_masks: ArrayLike,
                 dilation_ratio: float = 0.02) -> np.ndarray:
    """Boundary IoU of every detection with every ground truth.

    ``|(G_d & G) & (P_d & P)| / |(G_d & G) | (P_d & P)|`` with X_d the band
    of width d inside X (:func:`mask_to_boundary`).

    Args:
        dt_masks: (D, H, W) binary.
        gt_masks: (G, H, W) binary, same image size.
        dilation_ratio: d as a fraction of the image diagonal.

    Returns:
        (D, G) float64 in [0, 1].
    """
    dt_masks, gt_masks = np.asarray(dt_masks), np.asarray(gt_masks)
    if dt_masks.ndim != 3 or gt_masks.ndim != 3 or \
            dt_masks.shape[1:] != gt_masks.shape[1:]:
        raise ValueError(
            f'boundary_iou needs (D, H, W) and (G, H, W) masks of one image '
            f'size, got {dt_masks.shape} and {gt_masks.shape}')
    return mask_iou(
        mask_to_boundary(dt_masks, dilation_ratio),
        mask_to_boundary(gt_masks, dilation_ratio))
