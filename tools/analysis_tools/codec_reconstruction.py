# Copyright (c) mmembed authors. All rights reserved.
"""How well ISTR's DCT mask codec can represent a dataset's masks: each
ground-truth mask cropped to its box and resized (as the training targets),
encoded, decoded and thresholded, against itself.

    python tools/analysis_tools/codec_reconstruction.py \\
        ../shared/data/fruits_nuts/trainval.json --mask-size 112 \\
        --dims 32 64 128 256 \\
        --out benchmarks/results/istr_dct_reconstruction_fruits_nuts.json

Reported per code dimension: the mean IoU of reconstruction and mask
(``decode(encode(m)) >= --thr`` vs ``m``), the ceiling a model that
predicts the codes exactly would reach.
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, Sequence

import numpy as np
import torch


def reconstruction_iou(masks: torch.Tensor, dims: Sequence[int],
                       thr: float) -> Dict[int, float]:
    """Mean IoU of DCT reconstructions of (N, S, S) {0, 1} ``masks``."""
    from mmembed.models.task_modules.codecs import DCTMaskCodec
    masks = masks.float()
    target = masks.bool()
    out = {}
    for dim in dims:
        codec = DCTMaskCodec(code_dim=dim, mask_size=masks.shape[-1])
        rec = codec.decode(codec.encode(masks)) >= thr
        inter = (rec & target).flatten(1).sum(1).float()
        union = (rec | target).flatten(1).sum(1).float().clamp(min=1)
        out[dim] = round(float((inter / union).mean()), 4)
    return out


def main(argv=None) -> int:
    from mmembed.utils.cli_utils import doc_summary
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument('ann_file', help='COCO instances json (masks)')
    parser.add_argument('--mask-size', type=int, default=112)
    parser.add_argument('--dims', type=int, nargs='+',
                        default=[32, 64, 128, 256])
    parser.add_argument('--thr', type=float, default=0.45,
                        help='binarisation threshold (v2 pastes at 0.45)')
    parser.add_argument('--out', default=None)
    args = parser.parse_args(argv)
    from pycocotools.coco import COCO

    from mmembed.models.task_modules.codecs.pca_fit import \
        iter_coco_box_masks
    coco = COCO(args.ann_file)
    masks = np.concatenate(
        [m for m in iter_coco_box_masks(coco, args.mask_size) if len(m)])
    ious = reconstruction_iou(torch.from_numpy(masks), args.dims, args.thr)
    report = dict(ann_file=args.ann_file, num_masks=int(len(masks)),
                  mask_size=args.mask_size, thr=args.thr,
                  dct_mean_iou={str(k): v for k, v in ious.items()})
    print(json.dumps(report, indent=1))
    if args.out:
        os.makedirs(osp.dirname(args.out) or '.', exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
