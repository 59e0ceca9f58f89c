# Copyright (c) mmembed authors. All rights reserved.
"""Time the boundary-band extraction of boundary AP: mmembed's
``mask_to_boundary`` against the official Boundary IoU API's method, on the
same masks, after checking that both give the same bands.

    python tools/analysis_tools/boundary_extraction_benchmark.py \\
        --out benchmarks/results/boundary_extraction_coco128.json

The masks are the ground-truth masks of a COCO annotation file (default:
coco128, 939 masks at 640-pixel-wide images; no image file is read),
rasterised once before timing. The official method is written out below as
``official_mask_to_boundary``: ``bowenc0221/boundary-iou-api``
``boundary_iou/utils/boundary_utils.py`` ``mask_to_boundary`` (the API is
not a package), one mask per call. mmembed's runs as ``BoundaryCOCOeval``
calls it, all masks of an image at once ("per image"), and one mask per
call ("per mask"). Each round times the three in turn over all masks and
the median round is reported, so a machine shared with other jobs slows
them alike. OpenCV runs on ``--threads`` threads (default 1).

Two layouts of the same masks: ``row_major`` (C order, what neither method
has to convert) and ``as_decoded`` (column-major, as pycocotools' decode
returns masks, which is how the official API calls its method and how
``BoundaryCOCOeval`` calls mmembed's). Per layout: milliseconds per mask of
each method, ``speedup`` (official / mmembed per image; above 1: mmembed is
faster) and ``speedup_per_mask``.
"""
import argparse
import datetime
import json
import os
import os.path as osp
import platform
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import cv2
import numpy as np

DEFAULT_ANN = '../shared/data/coco128/annotations/instances_train2017.json'


def official_mask_to_boundary(mask: np.ndarray,
                              dilation_ratio: float = 0.02) -> np.ndarray:
    """The Boundary IoU API's method (``mask_to_boundary`` of its
    ``boundary_utils.py``), step for step: d from the diagonal, one zero
    pixel of padding so the image border counts as background, d OpenCV
    erosions by a 3 x 3 square, the padding cropped off, mask minus
    erosion.

    Args:
        mask: (H, W) uint8 {0, 1}.

    Returns:
        (H, W) uint8 {0, 1}, the boundary band.
    """
    height, width = mask.shape
    dilation = max(1, int(round(dilation_ratio * np.sqrt(height**2 +
                                                         width**2))))
    padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT,
                                value=0)
    eroded = cv2.erode(padded, np.ones((3, 3), dtype=np.uint8),
                       iterations=dilation)
    return mask - eroded[1:height + 1, 1:width + 1]


def load_masks(ann_file: str,
               num_masks: Optional[int] = None) -> List[np.ndarray]:
    """Ground-truth masks of ``ann_file`` grouped by image, image-id order:
    a list of (N_i, H_i, W_i) uint8 arrays (the first ``num_masks`` masks
    when given). Each mask is column-major, as pycocotools' ``annToMask``
    (``decode``) returns it and as both APIs get it."""
    from pycocotools.coco import COCO
    coco = COCO(ann_file)
    images, total = [], 0
    for img_id in sorted(coco.getImgIds()):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[img_id]))
        if num_masks is not None:
            anns = anns[:num_masks - total]
        if not anns:
            continue
        images.append(np.stack([coco.annToMask(a) for a in anns]))
        total += len(anns)
        if num_masks is not None and total >= num_masks:
            break
    return images


def check_identical(images: Sequence[np.ndarray],
                    dilation_ratio: float) -> None:
    """Raise if mmembed's bands differ from the official ones anywhere."""
    from mmembed.evaluation import mask_to_boundary
    for i, masks in enumerate(images):
        ours = mask_to_boundary(masks, dilation_ratio)
        for j, mask in enumerate(masks):
            official = official_mask_to_boundary(mask, dilation_ratio)
            if not np.array_equal(ours[j], official.astype(bool)):
                raise AssertionError(
                    f'image {i}, mask {j}: mmembed and the official method '
                    'give different bands')


def time_methods(images: Sequence[np.ndarray], dilation_ratio: float,
                 repeats: int) -> Dict[str, List[float]]:
    """Seconds per round of every method over all masks, ``repeats``
    rounds, the methods interleaved within a round."""
    from mmembed.evaluation import mask_to_boundary

    def official() -> None:
        for masks in images:
            for mask in masks:
                official_mask_to_boundary(mask, dilation_ratio)

    def per_image() -> None:
        for masks in images:
            mask_to_boundary(masks, dilation_ratio)

    def per_mask() -> None:
        for masks in images:
            for mask in masks:
                mask_to_boundary(mask, dilation_ratio)

    methods: Dict[str, Callable[[], None]] = dict(
        official=official, mmembed_per_image=per_image,
        mmembed_per_mask=per_mask)
    for run in methods.values():  # warm-up: caches, lazy imports
        run()
    seconds: Dict[str, List[float]] = {name: [] for name in methods}
    for _ in range(repeats):
        for name, run in methods.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmembed.utils.cli_utils import doc_summary
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument('--ann-file', default=DEFAULT_ANN,
                        help='COCO annotation file whose GT masks are timed')
    parser.add_argument('--num-masks', type=int, default=None,
                        help='time the first N masks only (default: all)')
    parser.add_argument('--dilation-ratio', type=float, default=0.02)
    parser.add_argument('--repeats', type=int, default=7,
                        help='timed rounds; the median is reported')
    parser.add_argument('--threads', type=int, default=1,
                        help='OpenCV threads (cv2.setNumThreads)')
    parser.add_argument('--out', default=None, help='write the JSON here')
    return parser.parse_args(argv)


def ms_per_mask(seconds: Dict[str, List[float]],
                num_masks: int) -> Dict[str, float]:
    """Per-mask milliseconds of the median round, and the speedups."""
    ms = {
        name: 1e3 * statistics.median(rounds) / num_masks
        for name, rounds in seconds.items()
    }
    return dict(
        official_ms_per_mask=round(ms['official'], 4),
        mmembed_ms_per_mask=round(ms['mmembed_per_image'], 4),
        mmembed_single_call_ms_per_mask=round(ms['mmembed_per_mask'], 4),
        speedup=round(ms['official'] / ms['mmembed_per_image'], 2),
        speedup_per_mask=round(ms['official'] / ms['mmembed_per_mask'], 2),
        round_seconds={k: [round(x, 4) for x in v]
                       for k, v in seconds.items()})


def main(argv: Optional[Sequence[str]] = None) -> int:
    from mmembed.evaluation import boundary_dilation
    args = parse_args(argv)
    if args.repeats < 1:
        raise SystemExit('--repeats must be >= 1')
    cv2.setNumThreads(args.threads)
    decoded = load_masks(args.ann_file, args.num_masks)
    num_masks = sum(len(m) for m in decoded)
    if not num_masks:
        raise SystemExit(f'{args.ann_file} has no masks to time')
    # the same masks row-major: neither method gains or pays a layout
    # change (OpenCV copies a column-major mask before it erodes)
    row_major = [np.ascontiguousarray(m) for m in decoded]
    check_identical(decoded, args.dilation_ratio)
    check_identical(row_major, args.dilation_ratio)
    load_before = os.getloadavg()
    layouts = {
        name: ms_per_mask(
            time_methods(images, args.dilation_ratio, args.repeats),
            num_masks)
        for name, images in (('row_major', row_major),
                             ('as_decoded', decoded))
    }
    pixels = [m.shape[1] * m.shape[2] for m in decoded]
    report = dict(
        what='boundary band extraction, ms per mask (median round); '
        'row_major: the same row-major masks given to both methods; '
        "as_decoded: column-major masks as pycocotools' decode returns "
        'them (how the official API and BoundaryCOCOeval call it)',
        ann_file=args.ann_file,
        num_images=len(decoded),
        num_masks=num_masks,
        mean_image_pixels=round(statistics.mean(pixels)),
        mean_mask_fraction=round(
            float(np.concatenate([m.mean(axis=(1, 2))
                                  for m in decoded]).mean()), 4),
        dilation_ratio=args.dilation_ratio,
        dilation_px=sorted({
            boundary_dilation(*m.shape[1:], args.dilation_ratio)
            for m in decoded
        }),
        identical=True,  # check_identical raised otherwise
        repeats=args.repeats,
        opencv_threads=args.threads,
        **layouts,
        load_average_before=[round(x, 2) for x in load_before],
        machine=dict(
            platform=platform.platform(), cpu_count=os.cpu_count(),
            python=platform.python_version(), opencv=cv2.__version__,
            numpy=np.__version__),
        date=datetime.date.today().isoformat())
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        out_dir = osp.dirname(args.out)
        if out_dir:
            os.makedirs(out_dir, exist_ok=True)
        with open(args.out, 'w') as f:
            f.write(text + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
