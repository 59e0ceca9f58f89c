# Copyright (c) mmembed authors. All rights reserved.
"""Fitting the PCA mask codec from COCO annotations, streaming.

Used by ``tools/misc/fit_mask_codec.py``. Shape shorthand: N masks, S x S
mask size, F = S * S features, D code length.
"""
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
from mmdet.structures.mask import BitmapMasks, PolygonMasks
from pycocotools import mask as mask_utils

from .pca_codec import soft_mask_logits


class StreamingCovariance:
    """Running mean and covariance of F-dim rows, in float64.

    Memory is O(F^2) whatever the number of rows (784 x 784 for 28 x 28
    masks), so all COCO masks never sit in memory at once.
    """

    def __init__(self, num_features: int) -> None:
        self.count = 0
        self.sum = np.zeros(num_features)
        self.outer = np.zeros((num_features, num_features))

    def update(self, rows: np.ndarray) -> None:
        """Add (N, F) rows."""
        rows = np.asarray(rows, dtype=np.float64)
        self.count += len(rows)
        self.sum += rows.sum(0)
        self.outer += rows.T @ rows

    def fit_pca(self, code_dim: int) -> Dict[str, np.ndarray]:
        """Principal axes of the rows seen so far.

        Returns:
            ``components`` (D, F) float32 orthonormal rows, largest variance
            first (sign: largest-magnitude entry positive, for
            reproducibility), ``explained_variances`` (D,) (unbiased, as
            sklearn's), ``explained_variance_ratio`` (D,), ``means`` (F,).
        """
        if self.count < 2:
            raise ValueError(f'need at least 2 masks to fit a PCA, got '
                             f'{self.count}')
        if code_dim > len(self.sum):
            raise ValueError(f'code_dim {code_dim} > {len(self.sum)} '
                             'features')
        if code_dim > self.count - 1:
            # n masks span at most n - 1 directions around their mean: the
            # other components would have zero variance, and the whitened
            # codec would divide by it
            raise ValueError(
                f'a {code_dim}-d PCA needs more than {code_dim} masks, got '
                f'{self.count}; fit fewer dimensions or use the DCT codec '
                '(DCTMaskCodec, nothing to fit)')
        mean = self.sum / self.count
        cov = (self.outer - self.count * np.outer(mean, mean)) / (
            self.count - 1)
        values, vectors = np.linalg.eigh(cov)
        order = np.argsort(values)[::-1][:code_dim]
        values, vectors = values[order], vectors[:, order].T
        signs = np.sign(vectors[np.arange(code_dim),
                                np.abs(vectors).argmax(1)])
        total = max(float(np.trace(cov)), 1e-12)  # all F variances
        return dict(
            components=(vectors * signs[:, None]).astype(np.float32),
            explained_variances=np.maximum(values, 1e-12).astype(np.float32),
            explained_variance_ratio=(values / total).astype(np.float32),
            means=mean.astype(np.float32))


def coco_box_masks(coco,
                   img_id: int,
                   mask_size: int = 28) -> np.ndarray:
    """Non-crowd masks of one COCO image cropped to their boxes.

    Uses mmdet's ``PolygonMasks`` / ``BitmapMasks.crop_and_resize``, the same
    code that builds the training targets of the ISTR head, so the fitted
    codec sees the distribution it will encode.

    Args:
        coco: a ``pycocotools.coco.COCO``.
        img_id: image id.
        mask_size: S.

    Returns:
        (N, S, S) uint8 {0, 1} masks, N = non-crowd annotations with a
        positive-size box and a segmentation.
    """
    info = coco.imgs[img_id]
    height, width = info['height'], info['width']
    polys: List[Tuple[list, list]] = []
    rles: List[Tuple[dict, list]] = []
    for ann in coco.imgToAnns.get(img_id, []):
        x, y, w, h = ann['bbox']
        seg = ann.get('segmentation')
        if ann.get('iscrowd', 0) or w < 1 or h < 1 or not seg:
            continue
        box = [x, y, x + w, y + h]
        if isinstance(seg, list):
            polys.append(([np.asarray(p, dtype=np.float64) for p in seg
                           if len(p) >= 6], box))
        else:
            if isinstance(seg['counts'], list):
                seg = mask_utils.frPyObjects(seg, height, width)
            rles.append((seg, box))
    polys = [(p, box) for p, box in polys if p]
    out = []
    if polys:
        masks = PolygonMasks([p for p, _ in polys], height, width)
        boxes = np.array([box for _, box in polys], dtype=np.float32)
        out.append(
            masks.crop_and_resize(boxes, (mask_size, mask_size),
                                  np.arange(len(boxes))).to_ndarray())
    if rles:
        masks = BitmapMasks(
            np.stack([mask_utils.decode(r) for r, _ in rles]), height, width)
        boxes = np.array([box for _, box in rles], dtype=np.float32)
        out.append(
            masks.crop_and_resize(boxes, (mask_size, mask_size),
                                  np.arange(len(boxes))).to_ndarray())
    if not out:
        return np.zeros((0, mask_size, mask_size), dtype=np.uint8)
    return np.concatenate(out).astype(np.uint8)


def iter_coco_box_masks(coco, mask_size: int = 28,
                        img_ids: Optional[List[int]] = None
                        ) -> Iterator[np.ndarray]:
    """Yield :func:`coco_box_masks` of each image (default: all, sorted)."""
    for img_id in img_ids if img_ids is not None else sorted(coco.imgs):
        yield coco_box_masks(coco, img_id, mask_size)


def mask_rows_for_pca(masks: np.ndarray,
                      value_range: Tuple[float, float] = (0.01, 0.05),
                      random: bool = True,
                      generator: Optional[torch.Generator] = None
                      ) -> np.ndarray:
    """(N, S, S) {0, 1} masks -> (N, F) float64 soft logits, the space the
    ISTR codec lives in (``LME/mask_generation.py`` fits in it too)."""
    logits = soft_mask_logits(
        torch.from_numpy(masks.reshape(len(masks), -1)).float(),
        value_range, random, generator)
    return logits.double().numpy()
