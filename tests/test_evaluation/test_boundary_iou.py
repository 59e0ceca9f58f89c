# Copyright (c) mmembed authors. All rights reserved.
"""Boundary bands and boundary IoU against slow reference loops written
from the paper's definition and against the official API's OpenCV method,
and the properties the metric relies on."""
import importlib.util
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from mmembed.evaluation import (boundary_dilation, boundary_iou, mask_iou,
                                mask_to_boundary)
from mmembed.testing import get_repo_root


def official_mask_to_boundary():
    """The official method, as written out in the extraction benchmark."""
    path = osp.join(get_repo_root(), 'tools', 'analysis_tools',
                    'boundary_extraction_benchmark.py')
    spec = importlib.util.spec_from_file_location('boundary_benchmark', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.official_mask_to_boundary


def boundary_ref(mask: np.ndarray, d: int) -> np.ndarray:
    """A mask pixel is on the boundary if a background pixel (outside the
    image counts as background) lies within chessboard distance d."""
    height, width = mask.shape
    band = np.zeros_like(mask, dtype=bool)
    for y in range(height):
        for x in range(width):
            if not mask[y, x]:
                continue
            for dy in range(-d, d + 1):
                for dx in range(-d, d + 1):
                    yy, xx = y + dy, x + dx
                    outside = not (0 <= yy < height and 0 <= xx < width)
                    if outside or not mask[yy, xx]:
                        band[y, x] = True
    return band


def iou_ref(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.logical_and(a, b).sum()
    union = np.logical_or(a, b).sum()
    return inter / union if union else 0.0


def hand_made_masks() -> np.ndarray:
    """(6, 17, 23): a rectangle, an L, a mask cut by the image border, a
    one-pixel line, an empty mask, a random blob with holes."""
    masks = np.zeros((6, 17, 23), dtype=bool)
    masks[0, 3:12, 4:19] = True
    masks[1, 2:15, 3:8] = True
    masks[1, 10:15, 3:20] = True
    masks[2, 0:9, 15:23] = True
    masks[3, 8, 2:21] = True
    rng = np.random.default_rng(0)
    masks[5] = rng.random((17, 23)) < 0.6
    return masks


@pytest.mark.parametrize('d', [1, 2, 3])
def test_mask_to_boundary_equals_reference_loop(d):
    masks = hand_made_masks()
    got = mask_to_boundary(masks, dilation=d)
    assert got.shape == masks.shape and got.dtype == bool
    for i, mask in enumerate(masks):
        np.testing.assert_array_equal(got[i], boundary_ref(mask, d), str(i))


def test_dilation_is_two_percent_of_the_diagonal():
    assert boundary_dilation(600, 800) == 20  # diagonal 1000
    assert boundary_dilation(17, 23) == 1  # round(0.57) = 1
    assert boundary_dilation(10, 10) == 1  # round(0.28) = 0 -> at least 1
    masks = hand_made_masks()
    np.testing.assert_array_equal(
        mask_to_boundary(masks, dilation_ratio=0.1),
        mask_to_boundary(masks, dilation=3))  # round(0.1 * 28.6) = 3
    with pytest.raises(ValueError, match='dilation_ratio'):
        boundary_dilation(10, 10, 0)


def test_boundary_iou_equals_reference_loop():
    masks = hand_made_masks()
    dets = np.roll(masks, shift=(1, 2), axis=(1, 2))
    d = boundary_dilation(17, 23, 0.1)
    want = np.array([[
        iou_ref(boundary_ref(p, d), boundary_ref(g, d)) for g in masks
    ] for p in dets])
    got = boundary_iou(dets, masks, dilation_ratio=0.1)
    assert got.shape == (6, 6)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        mask_iou(dets, masks),
        [[iou_ref(p, g) for g in masks] for p in dets], rtol=0, atol=1e-12)


def test_identical_masks_give_one():
    masks = hand_made_masks()
    got = np.diag(boundary_iou(masks, masks))
    np.testing.assert_allclose(got[[0, 1, 2, 3, 5]], 1.0)
    assert got[4] == 0  # an empty mask has no boundary: IoU 0, not NaN


def test_shift_beyond_d_costs_more_boundary_iou_than_mask_iou():
    """A 60 x 60 square shifted by 6 px in a 100 x 100 image (d = 3): mask
    IoU stays high, boundary IoU drops; a shift of 0 gives 1 for both."""
    gt = np.zeros((1, 100, 100), dtype=bool)
    gt[0, 20:80, 20:80] = True
    dt = np.roll(gt, 6, axis=2)
    assert boundary_dilation(100, 100) == 3
    m_iou = mask_iou(dt, gt)[0, 0]
    b_iou = boundary_iou(dt, gt)[0, 0]
    np.testing.assert_allclose(m_iou, 54 / 66)
    assert b_iou < m_iou - 0.3, (b_iou, m_iou)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match='one image size'):
        boundary_iou(np.zeros((1, 4, 5)), np.zeros((1, 5, 4)))
    with pytest.raises(ValueError, match=r'\(N, H, W\)'):
        mask_to_boundary(np.zeros((1, 1, 4, 5)))


def blobs(num: int, height: int, width: int, seed: int) -> np.ndarray:
    """(num, H, W) uint8 smooth random shapes (some touching the border,
    some with holes) plus an empty, a full and a corner-pixel mask."""
    rng = np.random.default_rng(seed)
    masks = []
    for i in range(num):
        noise = cv2.GaussianBlur(rng.random((height, width)), (0, 0),
                                 sigmaX=2 + i % 5)
        masks.append(noise > np.quantile(noise, rng.uniform(0.3, 0.97)))
    empty = np.zeros((height, width), dtype=bool)
    corner = empty.copy()
    corner[-1, -1] = True
    masks += [empty, ~empty, corner]
    return np.stack(masks).astype(np.uint8)


@pytest.mark.parametrize('ratio', [0.02, 0.1, 0.3])
@pytest.mark.parametrize('size', [(48, 64), (61, 37)])
def test_mask_to_boundary_equals_the_official_opencv_method(ratio, size):
    """Bit for bit the official API's bands (pad 1, d erosions by 3 x 3,
    mask minus erosion), whatever the input's layout or type: row-major,
    column-major as pycocotools decodes, bool, torch, one mask."""
    official = official_mask_to_boundary()
    masks = blobs(12, *size, seed=int(ratio * 100))
    want = np.stack([official(m, ratio) for m in masks]).astype(bool)
    assert want[:-3].any() and not want[-3].any()
    column_major = np.asfortranarray(masks.transpose(1, 2, 0)).transpose(
        2, 0, 1)
    assert not column_major.flags.c_contiguous
    for given in (masks, column_major, masks.astype(bool),
                  torch.from_numpy(masks)):
        got = mask_to_boundary(given, ratio)
        assert got.dtype == bool and got.shape == masks.shape
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(
        mask_to_boundary(column_major[3], ratio), want[3])
