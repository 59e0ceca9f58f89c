# Copyright (c) mmembed authors. All rights reserved.
"""Write a small, learnable, COCO-format instance-segmentation dataset.

The set exists so that the whole train -> test -> demo loop can run on a CPU
in minutes with a model that actually learns something. Every image shows a
smooth, textured background and ``1..max_objects`` textured shapes of four
classes (:data:`SYNTHETIC_CLASSES`):

* ``disc``     - a filled circle;
* ``square``   - a square, rotated by a random angle;
* ``triangle`` - a slightly irregular, randomly rotated triangle;
* ``ring``     - an annulus, i.e. a shape with a hole.

Each shape gets its own random colours and texture (blotchy noise, stripes or
a checkerboard), so colour alone does not identify a class: the network has to
look at the shape.

Layout written under ``out_dir``::

    train/000000.png ...              (file_name is relative to the split dir)
    val/000000.png ...
    annotations/train.json
    annotations/val.json

Annotation rules (deliberate, so that the annotations are exact):

* Shapes are painted in order; later shapes occlude earlier ones. An
  annotation's mask is the *visible* part of its shape, so the masks of one
  image never overlap.
* Instances whose visible area is below ``min_area`` pixels (default
  :data:`MIN_VISIBLE_AREA` = 40) are **dropped and not painted at all**: the
  image is composed again without them, so there is no unlabelled sliver of a
  shape in any image. Removing a shape only uncovers pixels of shapes below
  it, so the areas of the instances that are kept can only grow and no second
  pass is needed. An image always keeps at least one instance (its layout is
  drawn again, deterministically, if every instance was dropped).
* ``segmentation`` is a polygon list (``[[x0, y0, x1, y1, ...]]``) for a
  disc/square/triangle whose visible mask is one 4-connected region without
  holes. The polygon is traced with ``cv2.findContours`` along the pixel
  *edges* (see :func:`mask_to_polygon`), so it rasterises with pycocotools to
  exactly the visible mask. Rings, and visible masks that are split or have
  holes (an occluder inside a shape), are stored as compressed RLE
  (``counts`` decoded to ``str`` for JSON).
* ``bbox`` (``[x, y, w, h]``, tight, integer) and ``area`` (pixel count) are
  computed from the visible mask; ``iscrowd`` is 0. Image and annotation ids
  start at 1 (COCOeval uses annotation id 0 to mean "unmatched").

Generation is seeded: the same arguments give byte-identical JSON and PNGs.
Every image draws from its own random stream derived from ``(seed, split,
index)``, so e.g. changing ``--num-val`` does not change the train images.

Example::

    python tools/misc/make_synthetic_coco.py --out-dir data/synthetic
"""
import argparse
import json
import os
import os.path as osp
import re
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from pycocotools import mask as mask_utils

SYNTHETIC_CLASSES = ('disc', 'square', 'triangle', 'ring')
# Category ids are 1-based, in the order of SYNTHETIC_CLASSES.
RING_CATEGORY_ID = SYNTHETIC_CLASSES.index('ring') + 1
MIN_VISIBLE_AREA = 40
MIN_IMG_SIZE = 32
MAX_IMG_SIZE = 4096
MAX_OBJECTS_LIMIT = 200
# Redraw budget for an image whose every instance fell below min_area; only
# reachable with tiny images, where a shape can be smaller than min_area.
_MAX_LAYOUT_TRIES = 100
# cv2 drawing functions take fixed-point coordinates with this many
# fractional bits; this gives sub-pixel placement of the shapes.
_SHIFT = 4
_SPLIT_CODES = {'train': 0, 'val': 1}
_IMAGE_NAME = re.compile(r'^\d{6}\.png$')


# ----------------------------------------------------------------- textures
def _smooth_noise(rng: np.random.Generator, h: int, w: int, channels: int,
                  cells: int) -> np.ndarray:
    """Smooth random field in [0, 1]: a coarse grid upsampled bicubically."""
    grid = rng.random((cells + 1, cells + 1, channels)).astype(np.float32)
    field = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(field.reshape(h, w, channels), 0.0, 1.0)


def _random_colour(rng: np.random.Generator, min_sat: float,
                   min_val: float) -> np.ndarray:
    """A random RGB colour in [0, 255] with bounded saturation/value."""
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(min_sat, 1.0) * 255,
                      rng.uniform(min_val, 1.0) * 255]]], dtype=np.float32)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(
        np.float32)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Textured background: smooth colour noise + a gradient + faint stripes.

    Its colours are muted (low saturation, soft contrast) so that the shapes,
    which are saturated, remain the salient objects.
    """
    base = _random_colour(rng, 0.05, 0.3)
    other = _random_colour(rng, 0.05, 0.3)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx + np.sin(angle) * yy)
    ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
    img = base * (1 - ramp[..., None]) + other * ramp[..., None]
    img += (_smooth_noise(rng, size, size, 3, int(rng.integers(3, 8))) -
            0.5) * 70
    if rng.random() < 0.5:
        period = rng.uniform(0.05, 0.2) * size
        phase = 2 * np.pi * (np.cos(angle) * xx + np.sin(angle) * yy) * size
        img += 12 * np.sin(phase / period)[..., None]
    return img


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A (h, w, 3) float texture for one shape: two colours mixed by a
    pattern (blotchy noise, stripes or a checkerboard) plus fine grain."""
    c1 = _random_colour(rng, 0.45, 0.45)
    c2 = np.clip(c1 * rng.uniform(0.45, 0.8) + rng.uniform(-30, 30, 3), 0,
                 255)
    kind = rng.integers(3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == 0:
        weight = _smooth_noise(rng, h, w, 1, int(rng.integers(2, 6)))[..., 0]
    else:
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(4.0, 12.0)
        u = np.cos(angle) * xx + np.sin(angle) * yy
        if kind == 1:
            weight = 0.5 + 0.5 * np.sin(2 * np.pi * u / period)
        else:
            v = -np.sin(angle) * xx + np.cos(angle) * yy
            weight = ((np.floor(u / period) + np.floor(v / period)) %
                      2).astype(np.float32)
    tex = c1 * (1 - weight[..., None]) + c2 * weight[..., None]
    tex += rng.normal(0, 6, (h, w, 3)).astype(np.float32)
    return tex


# ------------------------------------------------------------------- shapes
def _fixed(points: np.ndarray) -> np.ndarray:
    """Float pixel coordinates -> cv2 fixed-point int32 polygon."""
    return np.round(points * (1 << _SHIFT)).astype(np.int32)


def _draw_shape(category_id: int, rng: np.random.Generator,
                size: int, shape_scale: float = 1.0) -> np.ndarray:
    """Rasterise one random shape of ``category_id`` into a uint8 mask."""
    mask = np.zeros((size, size), np.uint8)
    radius = rng.uniform(0.08, 0.2) * size * shape_scale
    cx, cy = rng.uniform(0.1 * size, 0.9 * size, 2)
    name = SYNTHETIC_CLASSES[category_id - 1]
    # cv2 uses pixel-centre coordinates; our masks use pixel (i) = [i, i+1),
    # hence the -0.5.
    centre = _fixed(np.array([cx - 0.5, cy - 0.5]))
    if name in ('disc', 'ring'):
        cv2.circle(mask, (int(centre[0]), int(centre[1])),
                   int(round(radius * (1 << _SHIFT))), 1, -1, cv2.LINE_8,
                   _SHIFT)
        if name == 'ring':
            inner = radius * rng.uniform(0.4, 0.65)
            cv2.circle(mask, (int(centre[0]), int(centre[1])),
                       int(round(inner * (1 << _SHIFT))), 0, -1, cv2.LINE_8,
                       _SHIFT)
    else:
        if name == 'square':
            # radius is the half-diagonal; a square's corners are 90 deg apart.
            angles = rng.uniform(0, np.pi / 2) + np.arange(4) * np.pi / 2
            dists = np.full(4, radius)
        else:
            # Slightly irregular triangle: still clearly three-cornered.
            angles = (rng.uniform(0, 2 * np.pi) + np.arange(3) * 2 * np.pi / 3
                      + rng.uniform(-0.2, 0.2, 3))
            dists = radius * rng.uniform(0.9, 1.15, 3)
        pts = np.stack([cx - 0.5 + dists * np.cos(angles),
                        cy - 0.5 + dists * np.sin(angles)], axis=1)
        cv2.fillPoly(mask, [_fixed(pts)], 1, cv2.LINE_8, _SHIFT)
    return mask


# ----------------------------------------------------- mask -> annotation
def _remove_collinear(points: np.ndarray) -> np.ndarray:
    """Drop vertices of a closed integer polygon that lie on a straight line
    between their neighbours (they add nothing to the shape)."""
    if len(points) < 4:
        return points
    prev_pts = np.roll(points, 1, axis=0)
    next_pts = np.roll(points, -1, axis=0)
    d1 = points - prev_pts
    d2 = next_pts - points
    cross = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
    return points[cross != 0]


def mask_to_polygon(mask: np.ndarray) -> Optional[List[List[int]]]:
    """Trace a one-piece, hole-free binary mask as an exact COCO polygon.

    ``cv2.findContours`` returns the *centres* of the boundary pixels; a
    polygon through them rasterises (pycocotools) to roughly half a pixel less
    than the mask all around. We therefore trace the mask upsampled 2x: there
    every boundary pixel centre of the upsampled mask maps onto a pixel
    *corner* of the original (upsampled coordinate ``u`` -> ``(u + 1) // 2``),
    which gives the polygon along the pixel edges, which pycocotools
    rasterises back to exactly ``mask``.

    Returns:
        ``[[x0, y0, x1, y1, ...]]`` or ``None`` when the mask is empty, not a
        single 4-connected region, has holes, or (defensively) the polygon
        does not round-trip exactly; callers then store RLE instead.
    """
    if not mask.any():
        return None
    num_labels, _ = cv2.connectedComponents(mask, connectivity=4)
    if num_labels != 2:  # background + exactly one region
        return None
    up = np.kron(mask, np.ones((2, 2), np.uint8))
    contours, hierarchy = cv2.findContours(up, cv2.RETR_CCOMP,
                                           cv2.CHAIN_APPROX_SIMPLE)
    # Any contour with a parent is a hole boundary (this also catches
    # background pockets that only touch the outside diagonally).
    if len(contours) != 1 or (hierarchy[0, :, 3] >= 0).any():
        return None
    pts = (contours[0].reshape(-1, 2) + 1) // 2
    keep = np.ones(len(pts), bool)
    keep[1:] = np.any(pts[1:] != pts[:-1], axis=1)
    pts = pts[keep]
    if len(pts) > 1 and (pts[0] == pts[-1]).all():
        pts = pts[:-1]
    pts = _remove_collinear(pts)
    if len(pts) < 3:
        return None
    polygon = [pts.astype(int).ravel().tolist()]
    h, w = mask.shape
    decoded = mask_utils.decode(
        mask_utils.merge(mask_utils.frPyObjects(polygon, h, w)))
    if not np.array_equal(decoded, mask):
        return None
    return polygon


def mask_to_rle(mask: np.ndarray) -> Dict[str, Union[List[int], str]]:
    """Compressed COCO RLE of a binary mask, with JSON-safe str counts."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {'size': [int(v) for v in rle['size']],
            'counts': rle['counts'].decode('ascii')}


def _tight_bbox(mask: np.ndarray) -> List[int]:
    """Tight ``[x, y, w, h]`` of a non-empty mask (pixel i spans [i, i+1))."""
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    return [x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1]


# -------------------------------------------------------------- one image
def _compose_image(
        rng: np.random.Generator, size: int, max_objects: int,
        min_area: int, shape_scale: float = 1.0
) -> Tuple[np.ndarray, List[Tuple[int, np.ndarray]]]:
    """Draw one image; return it (RGB uint8) and its (category, visible
    mask) pairs, bottom-most first."""
    for _ in range(_MAX_LAYOUT_TRIES):
        num = int(rng.integers(1, max_objects + 1))
        cats = rng.integers(1, len(SYNTHETIC_CLASSES) + 1, num)
        masks = [_draw_shape(int(c), rng, size, shape_scale) for c in cats]
        # Topmost index per pixel (-1 = background): later shapes win.
        owner = np.full((size, size), -1, np.int32)
        for i, m in enumerate(masks):
            owner[m > 0] = i
        areas = np.bincount(owner.ravel() + 1, minlength=num + 1)[1:]
        kept = [i for i in range(num) if areas[i] >= min_area]
        if kept:
            break
    else:
        raise RuntimeError(
            f'could not place any shape with a visible area >= {min_area} px '
            f'in {_MAX_LAYOUT_TRIES} tries; use a larger img_size or a '
            f'smaller min_area')
    # Compose again without the dropped shapes (see module docstring).
    img = _background(rng, size)
    owner = np.full((size, size), -1, np.int32)
    for i in kept:
        m = masks[i] > 0
        ys, xs = np.nonzero(m)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        tex = _texture(rng, int(y1 - y0), int(x1 - x0))
        crop = m[y0:y1, x0:x1]
        img[y0:y1, x0:x1][crop] = tex[crop]
        owner[m] = i
    instances = [(int(cats[i]), (owner == i).astype(np.uint8)) for i in kept]
    return np.clip(np.round(img), 0, 255).astype(np.uint8), instances


def _annotate(category_id: int, mask: np.ndarray) -> dict:
    """COCO fields (without ids) for one visible mask."""
    polygon = None
    if category_id != RING_CATEGORY_ID:
        polygon = mask_to_polygon(mask)
    return {
        'category_id': category_id,
        'segmentation': polygon if polygon is not None else mask_to_rle(mask),
        'area': int(mask.sum()),
        'bbox': _tight_bbox(mask),
        'iscrowd': 0,
    }


# ---------------------------------------------------------------- public
def _check_int(name: str, value: object, low: int,
               high: Optional[int] = None) -> int:
    """Validate an integer argument; raise ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f'{name} must be an integer, got {value!r}')
    if value < low or (high is not None and value > high):
        bound = f'>= {low}' if high is None else f'in [{low}, {high}]'
        raise ValueError(f'{name} must be {bound}, got {value}')
    return int(value)


def _write_split(out_dir: str, split: str, num_images: int, img_size: int,
                 seed: int, max_objects: int, min_area: int,
                 shape_scale: float = 1.0) -> dict:
    """Generate one split's images and annotation file."""
    img_dir = osp.join(out_dir, split)
    os.makedirs(img_dir, exist_ok=True)
    # Remove images of an earlier, larger run written under our naming
    # scheme, so the folder matches the annotation file. Nothing else in the
    # folder is touched.
    for name in os.listdir(img_dir):
        if _IMAGE_NAME.match(name) and int(name[:6]) >= num_images:
            os.remove(osp.join(img_dir, name))

    images, annotations = [], []
    num_polygons = 0
    for index in range(num_images):
        rng = np.random.default_rng(
            np.random.SeedSequence([seed, _SPLIT_CODES[split], index]))
        img, instances = _compose_image(rng, img_size, max_objects, min_area,
                                        shape_scale)
        file_name = f'{index:06d}.png'
        # cv2 writes BGR; PNG is lossless, so the file is exactly `img`.
        if not cv2.imwrite(osp.join(img_dir, file_name), img[..., ::-1]):
            raise OSError(f'could not write {osp.join(img_dir, file_name)}')
        image_id = index + 1
        images.append({'id': image_id, 'file_name': file_name,
                       'width': img_size, 'height': img_size})
        for category_id, mask in instances:
            ann = _annotate(category_id, mask)
            num_polygons += isinstance(ann['segmentation'], list)
            annotations.append({'id': len(annotations) + 1,
                                'image_id': image_id, **ann})

    coco = {
        'info': {'description': 'mmembed synthetic shapes '
                 f'(seed={seed}, split={split})', 'version': '1.0'},
        'licenses': [],
        'images': images,
        'annotations': annotations,
        'categories': [{'id': i + 1, 'name': name, 'supercategory': 'shape'}
                       for i, name in enumerate(SYNTHETIC_CLASSES)],
    }
    ann_file = osp.join(out_dir, 'annotations', f'{split}.json')
    with open(ann_file, 'w') as f:
        json.dump(coco, f, separators=(',', ':'))
    return {'img_dir': img_dir, 'ann_file': ann_file,
            'num_images': num_images, 'num_annotations': len(annotations),
            'num_polygon': num_polygons,
            'num_rle': len(annotations) - num_polygons}


def make_synthetic_coco(out_dir: str = 'data/synthetic',
                        num_train: int = 300,
                        num_val: int = 60,
                        img_size: int = 256,
                        seed: int = 0,
                        max_objects: int = 5,
                        min_area: int = MIN_VISIBLE_AREA,
                        shape_scale: float = 1.0) -> dict:
    """Generate the synthetic shapes dataset (see the module docstring).

    Args:
        out_dir: output root; ``train/``, ``val/`` and ``annotations/`` are
            created inside it (existing files are overwritten).
        num_train: number of train images (>= 0).
        num_val: number of val images (>= 0).
        img_size: side of the square images, in [32, 4096].
        seed: non-negative random seed.
        max_objects: maximum number of shapes drawn per image, in [1, 200]
            (instances dropped for a small visible area reduce the count).
        min_area: instances whose visible area is below this many pixels are
            dropped (and not painted).
        shape_scale: multiplies every shape's size, in (0, 1] (1: radii of
            8-20 % of the image side; smaller shapes let crowded images keep
            most of their ``max_objects``).

    Returns:
        ``{'out_dir': ..., 'classes': SYNTHETIC_CLASSES, 'train': {...},
        'val': {...}}``; each split dict holds ``img_dir``, ``ann_file``,
        ``num_images``, ``num_annotations``, ``num_polygon``, ``num_rle``.

    Raises:
        ValueError: an argument is out of range or of the wrong type.
    """
    if not isinstance(out_dir, (str, os.PathLike)) or not str(out_dir):
        raise ValueError(f'out_dir must be a non-empty path, got {out_dir!r}')
    num_train = _check_int('num_train', num_train, 0)
    num_val = _check_int('num_val', num_val, 0)
    if num_train + num_val == 0:
        raise ValueError('num_train + num_val must be >= 1, got 0 images')
    img_size = _check_int('img_size', img_size, MIN_IMG_SIZE, MAX_IMG_SIZE)
    seed = _check_int('seed', seed, 0)
    max_objects = _check_int('max_objects', max_objects, 1,
                             MAX_OBJECTS_LIMIT)
    min_area = _check_int('min_area', min_area, 1)
    if not isinstance(shape_scale, (int, float)) or not 0 < shape_scale <= 1:
        raise ValueError(f'shape_scale must be in (0, 1], got {shape_scale!r}')

    out_dir = str(out_dir)
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    result = {'out_dir': out_dir, 'classes': SYNTHETIC_CLASSES}
    for split, num in (('train', num_train), ('val', num_val)):
        result[split] = _write_split(out_dir, split, num, img_size, seed,
                                     max_objects, min_area, shape_scale)
    return result


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line arguments (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description='Write a small learnable COCO-format instance '
        'segmentation dataset of textured shapes (' +
        ', '.join(SYNTHETIC_CLASSES) + ').')
    parser.add_argument('--out-dir', default='data/synthetic',
                        help='output root (default: data/synthetic)')
    parser.add_argument('--num-train', type=int, default=300,
                        help='number of train images (default: 300)')
    parser.add_argument('--num-val', type=int, default=60,
                        help='number of val images (default: 60)')
    parser.add_argument('--img-size', type=int, default=256,
                        help='side of the square images (default: 256)')
    parser.add_argument('--seed', type=int, default=0,
                        help='random seed (default: 0)')
    parser.add_argument('--max-objects', type=int, default=5,
                        help='max shapes per image (default: 5)')
    parser.add_argument('--min-area', type=int, default=MIN_VISIBLE_AREA,
                        help='drop instances with a smaller visible area, in '
                        f'pixels (default: {MIN_VISIBLE_AREA})')
    parser.add_argument('--shape-scale', type=float, default=1.0,
                        help='multiply every shape size by this, in (0, 1] '
                        '(default: 1)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point; bad arguments exit with status 2 and a message."""
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        result = make_synthetic_coco(args.out_dir, args.num_train,
                                     args.num_val, args.img_size, args.seed,
                                     args.max_objects, args.min_area,
                                     args.shape_scale)
    except ValueError as err:
        # Same exit status and format as argparse's own usage errors.
        print(f'make_synthetic_coco.py: error: {err}', file=sys.stderr)
        raise SystemExit(2)
    elapsed = time.perf_counter() - start
    for split in ('train', 'val'):
        info = result[split]
        print(f'{split}: {info["num_images"]} images, '
              f'{info["num_annotations"]} instances ({info["num_polygon"]} '
              f'polygon, {info["num_rle"]} RLE) -> {info["ann_file"]}')
    print(f'done in {elapsed:.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
