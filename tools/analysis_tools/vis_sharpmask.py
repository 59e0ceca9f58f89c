# Copyright (c) mmembed authors. All rights reserved.
"""Picture of what SharpMask's refinement adds: the same top proposal
windows of a trained proposal model, masked by DeepMask's coarse 56 x 56
branch (top row) and by the refined 160 x 160 SharpMask output (bottom
row), one column per proposal.

    python tools/analysis_tools/vis_sharpmask.py \\
        configs/sharpmask/sharpmask_r18_coco128_proposals.py ckpt.pth \\
        ../shared/data/coco128/train2017/000000000009.jpg \\
        --out sharpmask_coarse_vs_refined.png

Both rows come from one model and one window ranking (the scores do not
depend on the masks), so column k is the same window twice.
"""
import argparse
import os
import os.path as osp
import sys

import numpy as np


def parse_args(argv=None) -> argparse.Namespace:
    from mmembed.utils.cli_utils import doc_summary
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('image')
    parser.add_argument('--out', default='sharpmask_coarse_vs_refined.png')
    parser.add_argument('--num-proposals', type=int, default=4,
                        help='top proposals drawn, one column each')
    parser.add_argument('--panel-height', type=int, default=240)
    return parser.parse_args(argv)


def overlay(img: np.ndarray, mask: np.ndarray,
            colour=(255, 80, 0)) -> np.ndarray:
    """The mask tinted over the image, its contour in white."""
    import cv2
    out = img.copy()
    tint = np.array(colour, np.float32)
    out[mask] = (0.45 * out[mask] + 0.55 * tint).astype(np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, (255, 255, 255), 2)
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    import cv2
    from mmdet.apis import inference_detector, init_detector

    import mmembed  # noqa: F401
    model = init_detector(args.config, args.checkpoint, device='cpu')
    if getattr(model, 'refine_head', None) is None:
        raise SystemExit(f'{args.config} has no refinement head: a '
                         'SharpMaskProposer with refine_head is needed')
    img = cv2.cvtColor(cv2.imread(args.image), cv2.COLOR_BGR2RGB)
    rows = []
    for refine in (False, True):
        model.test_cfg['use_refinement'] = refine
        model.test_cfg['num_proposals'] = args.num_proposals
        pred = inference_detector(model, img).pred_instances
        masks = pred.masks.cpu().numpy()
        scale = args.panel_height / img.shape[0]
        size = (round(img.shape[1] * scale), args.panel_height)
        panels = [
            cv2.resize(overlay(img, mask), size,
                       interpolation=cv2.INTER_AREA) for mask in masks
        ]
        rows.append(np.concatenate(panels, axis=1))
        scores = pred.scores.tolist()
    os.makedirs(osp.dirname(args.out) or '.', exist_ok=True)
    cv2.imwrite(args.out,
                cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
    print(f'wrote {args.out}: top {len(scores)} windows (scores '
          f'{", ".join(f"{s:.2f}" for s in scores)}), DeepMask above, '
          'SharpMask below')
    return 0


if __name__ == '__main__':
    sys.exit(main())
