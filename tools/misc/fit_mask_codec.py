# Copyright (c) mmembed authors. All rights reserved.
"""Fit ISTR's PCA mask codec on a COCO-format annotation file.

    python tools/misc/fit_mask_codec.py \
        data/coco/annotations/instances_train2017.json \
        --out data/coco/istr_pca60_m28.npz

Every non-crowd mask is cropped to its box and resized to S x S (mmdet's
``crop_and_resize``, as the ISTR head builds its targets), turned into
ISTR's soft logits (random label smoothing, seeded) and added to a running
covariance (O(F^2) memory, F = S * S), image by image. The principal axes are
written with the explained variance ratio; point ``PCAMaskCodec.codec_file``
at the output (``model.roi_head.mask_codec.codec_file``).
"""
import argparse
import os
import os.path as osp
import sys

import numpy as np
import torch
from mmengine.utils import ProgressBar
from pycocotools.coco import COCO

from mmembed.models.task_modules.codecs.pca_fit import (StreamingCovariance,
                                                        coco_box_masks,
                                                        mask_rows_for_pca)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('ann_file', help='COCO instances json')
    parser.add_argument('--out', required=True, help='output .npz')
    parser.add_argument('--dim', type=int, default=60,
                        help='code length D (ISTR v1: 60)')
    parser.add_argument('--mask-size', type=int, default=28,
                        help='mask size S (ISTR v1: 28)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the random soft targets')
    parser.add_argument('--no-random', action='store_true',
                        help='fixed soft targets (0.01 / 0.99) instead of '
                        "ISTR's random ones")
    parser.add_argument('--max-images', type=int, default=None,
                        help='use only the first N images (sorted ids)')
    parser.add_argument('--no-progress', action='store_true')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    coco = COCO(args.ann_file)
    img_ids = sorted(coco.imgs)[:args.max_images]
    generator = torch.Generator().manual_seed(args.seed)
    stats = StreamingCovariance(args.mask_size**2)
    bar = None if args.no_progress else ProgressBar(len(img_ids))
    for img_id in img_ids:
        masks = coco_box_masks(coco, img_id, args.mask_size)
        if len(masks):
            stats.update(
                mask_rows_for_pca(
                    masks, random=not args.no_random, generator=generator))
        if bar is not None:
            bar.update()
    if bar is not None:
        sys.stdout.write('\n')
    arrays = stats.fit_pca(args.dim)
    ratio = arrays['explained_variance_ratio']
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    np.savez(
        args.out,
        **arrays,
        mask_size=np.int64(args.mask_size),
        num_masks=np.int64(stats.count),
        seed=np.int64(args.seed))
    print(f'{stats.count} masks from {len(img_ids)} images; the {args.dim} '
          f'components explain {100 * ratio.sum():.1f} % of the variance '
          f'(first 5: {", ".join(f"{100 * r:.1f}" for r in ratio[:5])} %)')
    print(f'wrote {args.out}')
    return dict(num_masks=stats.count, explained=float(ratio.sum()))


if __name__ == '__main__':
    main()
