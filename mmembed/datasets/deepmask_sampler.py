# Copyright (c) mmembed authors. All rights reserved.
"""The release's training sampler for DeepMask / SharpMask as a transform.

``facebookresearch/deepmask`` ``DataSampler.lua`` (specs/methods.md 4.3),
one image at a time as an mmdet pipeline sees it:

- **mask samples** (probability ``1 - hfreq``): a non-crowd object with
  mask area >= 100 and box sides >= 5 is picked uniformly; a window of
  wSz = 192 pixels is placed so the object's longer side is about objSz =
  ceil(iSz * 128 / 224) = 92 pixels in it, with scale jitter
  2^U(-0.25, 0.25) and a centre shift of U(-16, 16) * 2^s; the label is the
  object's mask over the central iSz x iSz (160) region, resized to
  ``label_size`` (112 for DeepMask, 160 for SharpMask), in {0, 1};
- **score samples** (probability ``hfreq``), half positive (a window
  centred on an object at the quarter-octave scale bin of its size, label
  +1), half negative (a random position and scale 2^-U{-3, ..., 2 step .25}
  at least 3 * shift = 48 scaled pixels from every object centre whose scale
  bin is within 2.5 octaves, label -1).

Out-of-image pixels are filled with 0.5 grey (127.5), the patch is flipped
with probability 0.5. Differences from the release, all forced by the
per-image pipeline or chosen for correctness: objects are drawn uniformly
within the image the dataset gives (the release draws a category first);
the negative test compares centres at one scale (the release compares a
point at one scale with object centres at their own); an image with no
object to sample returns None, so the dataset draws another image.
"""
import math
from typing import Optional

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmdet.structures.mask import BitmapMasks, PolygonMasks

SCORE_SCALES = np.arange(-3., 2. + 1e-9, .25)


@TRANSFORMS.register_module()
class DeepMaskPatchSampler(BaseTransform):
    """Cut one training patch (and its label) out of an image.

    Required keys: ``img``, ``gt_masks``, ``gt_bboxes``; optional
    ``gt_ignore_flags`` (crowd). Sets ``img`` (wSz, wSz, 3) float32,
    ``img_shape``, ``gt_masks`` (one (label_size, label_size) BitmapMask:
    the object's mask, zeros for score samples), ``patch_label`` (+1 / -1)
    and ``patch_has_mask``; removes the other instance keys so
    ``PackDetInputs`` packs the label mask alone (add ``'patch_label',
    'patch_has_mask'`` to its ``meta_keys``).

    Args:
        input_size: iSz (release 160); the window is iSz + 32.
        label_size: gSz, side of the mask label (112 DeepMask, 160
            SharpMask).
        hfreq: probability of a score sample (release: 0.5 for DeepMask,
            0 for SharpMask).
        scale_jitter: octaves of scale jitter (release 0.25).
        shift: centre jitter in window pixels (release 16).
        min_area, min_side: objects eligible for mask samples.
        pad_value: fill outside the image (0.5 grey of 0-255 pixels).
    """

    def __init__(self,
                 input_size: int = 160,
                 label_size: int = 112,
                 hfreq: float = 0.5,
                 scale_jitter: float = 0.25,
                 shift: float = 16.,
                 min_area: float = 100.,
                 min_side: float = 5.,
                 pad_value: float = 127.5,
                 flip_prob: float = 0.5) -> None:
        if not 0 <= hfreq <= 1:
            raise ValueError(f'DeepMaskPatchSampler: hfreq must be in '
                             f'[0, 1], got {hfreq}')
        self.input_size = input_size
        self.window = input_size + 32
        self.obj_size = math.ceil(input_size * 128 / 224)
        self.label_size = label_size
        self.hfreq = hfreq
        self.scale_jitter = scale_jitter
        self.shift = shift
        self.min_area = min_area
        self.min_side = min_side
        self.pad_value = pad_value
        self.flip_prob = flip_prob

    # ------------------------------------------------------------- helpers
    def _crop(self, img: np.ndarray, x0: float, y0: float, side: float,
              out: int, border: float, interp=cv2.INTER_LINEAR) -> np.ndarray:
        """The square (x0, y0, side) of ``img`` resized to out x out, with
        ``border`` outside the image."""
        k = out / side
        affine = np.array([[k, 0., -x0 * k], [0., k, -y0 * k]])
        return cv2.warpAffine(
            img, affine, (out, out), flags=interp,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(border, border, border))

    @staticmethod
    def _bitmaps(results: dict) -> np.ndarray:
        masks = results['gt_masks']
        if isinstance(masks, PolygonMasks):
            masks = masks.to_bitmap()
        if not isinstance(masks, BitmapMasks):
            raise TypeError('DeepMaskPatchSampler: gt_masks must be mmdet '
                            f'BitmapMasks or PolygonMasks, got {type(masks)}')
        return masks.masks

    def _boxes_and_flags(self, results: dict):
        boxes = results['gt_bboxes']
        # mmdet's HorizontalBoxes or a plain (n, 4) array
        boxes = boxes.numpy() if hasattr(boxes, 'numpy') else np.asarray(
            boxes)
        ignore = results.get('gt_ignore_flags',
                             np.zeros(len(boxes), dtype=bool))
        return boxes.reshape(-1, 4).astype(np.float64), np.asarray(
            ignore, dtype=bool)

    # ------------------------------------------------------------- samples
    def _mask_sample(self, img, masks, boxes, ignore):
        widths = boxes[:, 2] - boxes[:, 0]
        heights = boxes[:, 3] - boxes[:, 1]
        areas = masks.reshape(len(masks), -1).sum(1) if len(masks) else \
            np.zeros(0)
        eligible = np.flatnonzero((~ignore) & (areas >= self.min_area)
                                  & (widths >= self.min_side)
                                  & (heights >= self.min_side))
        if len(eligible) == 0:
            return None
        k = eligible[np.random.randint(len(eligible))]
        x1, y1, x2, y2 = boxes[k]
        xc, yc = (x1 + x2) / 2, (y1 + y2) / 2
        scale = math.log2(max(x2 - x1, y2 - y1) / self.obj_size)
        s = scale + np.random.uniform(-self.scale_jitter, self.scale_jitter)
        xc += np.random.uniform(-self.shift, self.shift) * 2**s
        yc += np.random.uniform(-self.shift, self.shift) * 2**s
        side = self.window * 2**s
        patch = self._crop(img, xc - side / 2, yc - side / 2, side,
                           self.window, self.pad_value)
        inner = self.input_size * side / self.window
        label = self._crop(masks[k].astype(np.float32), xc - inner / 2,
                           yc - inner / 2, inner, self.label_size, 0.)
        return patch, (label > 0.5).astype(np.uint8), 1.

    def _scale_bins(self, boxes, ignore):
        """Object centres and quarter-octave scale bins (the release's
        ``createBBstruct``: the first s with maxDim in (objSz 2^((s-1)/4),
        objSz 2^((s+1)/4)], bin -s/4)."""
        keep = ~ignore & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] >
                                                        boxes[:, 1])
        boxes = boxes[keep]
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        max_dim = np.maximum(boxes[:, 2] - boxes[:, 0],
                             boxes[:, 3] - boxes[:, 1])
        steps = np.ceil(4 * np.log2(max_dim / self.obj_size)) - 1
        return centres, -steps * self.scale_jitter

    def _score_sample(self, img, boxes, ignore):
        height, width = img.shape[:2]
        centres, bins = self._scale_bins(boxes, ignore)
        if len(centres) and np.random.uniform() > .5:
            k = np.random.randint(len(centres))
            (x, y), scale = centres[k], bins[k]
            label = 1.
        else:
            label = -1.
            for _ in range(100):
                scale = float(np.random.choice(SCORE_SCALES))
                x = np.random.uniform(1, max(width * 2**scale, 1)) / 2**scale
                y = np.random.uniform(1, max(height * 2**scale, 1)) / 2**scale
                near = np.abs(bins - scale) <= 10 * self.scale_jitter
                dist = np.hypot(centres[near, 0] - x,
                                centres[near, 1] - y) * 2**scale
                if not (dist < 3 * self.shift).any():
                    break
        s = 2.**-scale
        x, y = min(max(x, 1), width), min(max(y, 1), height)
        side = max(self.window * s, 10)
        patch = self._crop(img, x - side / 2, y - side / 2, side,
                           self.window, self.pad_value)
        zeros = np.zeros((self.label_size, self.label_size), np.uint8)
        return patch, zeros, label

    def transform(self, results: dict) -> Optional[dict]:
        img = results['img'].astype(np.float32)
        masks = self._bitmaps(results)
        boxes, ignore = self._boxes_and_flags(results)
        if len(masks) != len(boxes):
            raise ValueError(
                f'DeepMaskPatchSampler: {len(masks)} masks for '
                f'{len(boxes)} boxes in {results.get("img_path")}')
        score = np.random.uniform() < self.hfreq
        sample = self._score_sample(img, boxes, ignore) if score else \
            self._mask_sample(img, masks, boxes, ignore)
        if sample is None:
            return None   # no object to sample: the dataset draws another
        patch, label, patch_label = sample
        if np.random.uniform() < self.flip_prob:
            patch, label = patch[:, ::-1], label[:, ::-1]
        results['img'] = np.ascontiguousarray(patch)
        results['img_shape'] = patch.shape[:2]
        results['gt_masks'] = BitmapMasks(
            np.ascontiguousarray(label)[None], self.label_size,
            self.label_size)
        for key in ('gt_bboxes', 'gt_bboxes_labels', 'gt_ignore_flags',
                    'gt_seg_map'):
            results.pop(key, None)
        results['patch_label'] = patch_label
        results['patch_has_mask'] = not score
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(input_size={self.input_size}, '
                f'label_size={self.label_size}, hfreq={self.hfreq})')
