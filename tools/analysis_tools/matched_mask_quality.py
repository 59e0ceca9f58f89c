# Copyright (c) mmembed authors. All rights reserved.
"""Mask quality of the detections that found their object, apart from
detection quality: for every ground-truth instance, the detection (score >=
``--score-thr``) whose mask overlaps it most, and that pair's mask IoU and
boundary IoU. AP mixes both (a model whose boxes miss loses AP however
sharp its masks); this separates them.

    python tools/analysis_tools/matched_mask_quality.py \\
        --model fpn configs/embedmask/embedmask_r18_fpn_fruits_nuts.py a.pth \\
        --model sharpmask configs/sharpmask/embedmask_r18_sharpmask_fruits_nuts.py b.pth \\
        --out benchmarks/results/matched_mask_quality.json

Reported per model: ``found`` (fraction of GTs whose best mask IoU >= 0.5),
and over the found ones the mean ``mask_iou`` and ``boundary_iou``
(dilation 0.02 of the diagonal, as BoundaryCocoMetric), on the config's
test set. Models named ``<base>_seed<k>`` are also averaged per base
(``means``).

Defects of the found masks (speckle and holes, e.g. texture of the skip
features leaking into refined masks): ``fragmented`` (fraction of them
with more than one 8-connected component), ``hole_fraction`` (mean area of
enclosed background over mask area), and ``mask_iou_cleaned`` /
``boundary_iou_cleaned``: the same pairs after keeping each mask's largest
component and filling its holes (what the defects cost).
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
from typing import Dict


def parse_args(argv=None) -> argparse.Namespace:
    from mmembed.utils.cli_utils import doc_summary
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument('--model', nargs=3, action='append', required=True,
                        metavar=('NAME', 'CONFIG', 'CHECKPOINT'))
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--dilation-ratio', type=float, default=0.02)
    parser.add_argument('--out', default=None)
    return parser.parse_args(argv)


def measure(config: str, checkpoint: str, score_thr: float,
            dilation_ratio: float) -> Dict[str, float]:
    import numpy as np
    import torch
    from mmdet.apis import init_detector
    from mmengine.runner import Runner

    from mmembed.evaluation import boundary_iou, mask_iou
    from mmembed.utils.mmdet_paste_fix import tolerate_boxes_outside_image
    model = init_detector(config, checkpoint, device='cpu')
    loader_cfg = dict(model.cfg.test_dataloader)
    loader_cfg.update(num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg)
    found, ious, biou = 0, [], []
    fragmented, holes, ious_clean, biou_clean = [], [], [], []
    total = 0
    # (mmdet's CPU paste raises on a box with no pixel in the image)
    with torch.no_grad(), tolerate_boxes_outside_image():
        for data in loader:
            for sample in model.test_step(data):
                gt = sample.gt_instances.masks
                gt = gt.to_ndarray() if hasattr(gt, 'to_ndarray') else \
                    np.asarray(gt)
                if len(gt) == 0:
                    continue
                pred = sample.pred_instances
                keep = (pred.scores >= score_thr).cpu().numpy()
                dt = pred.masks.cpu().numpy()[keep]
                total += len(gt)
                if len(dt) == 0:
                    continue
                overlap = mask_iou(dt, gt)            # (D, G)
                best = overlap.argmax(0)
                band = boundary_iou(dt, gt, dilation_ratio)
                for g, d in enumerate(best):
                    if overlap[d, g] >= 0.5:
                        found += 1
                        ious.append(float(overlap[d, g]))
                        biou.append(float(band[d, g]))
                        parts, hole, clean = mask_defects(dt[d])
                        fragmented.append(float(parts > 1))
                        holes.append(hole)
                        ious_clean.append(
                            float(mask_iou(clean[None], gt[g:g + 1])[0, 0]))
                        biou_clean.append(float(boundary_iou(
                            clean[None], gt[g:g + 1], dilation_ratio)[0, 0]))

    def mean(values):
        return round(statistics.fmean(values), 4) if values else None

    return dict(
        gts=total,
        found=round(found / max(total, 1), 4),
        mask_iou=mean(ious),
        boundary_iou=mean(biou),
        fragmented=mean(fragmented),
        hole_fraction=mean(holes),
        mask_iou_cleaned=mean(ious_clean),
        boundary_iou_cleaned=mean(biou_clean))


def mask_defects(mask) -> tuple:
    """(components, hole area / mask area, cleaned mask) of one (H, W)
    bool mask: 8-connected components; holes are background regions not
    4-connected to the image border; the cleaned mask is the largest
    component with its holes filled."""
    import numpy as np
    from scipy import ndimage
    labels, parts = ndimage.label(mask, structure=np.ones((3, 3)))
    if parts == 0:
        return 0, 0.0, mask
    sizes = np.bincount(labels.ravel())[1:]
    largest = labels == (sizes.argmax() + 1)
    filled = ndimage.binary_fill_holes(mask)
    hole = float((filled & ~mask).sum()) / max(float(mask.sum()), 1.0)
    return parts, hole, ndimage.binary_fill_holes(largest)


def seed_means(models: Dict[str, dict]) -> Dict[str, dict]:
    """Models named ``<base>_seed<k>`` averaged per ``<base>`` (every
    numeric measure, over the seeds where it is not None), with the seed
    count."""
    groups: Dict[str, list] = {}
    for name, row in models.items():
        base, sep, seed = name.rpartition('_seed')
        if sep and seed.isdigit():
            groups.setdefault(base, []).append(row)
    means = {}
    for base, rows in groups.items():
        keys = [k for k, v in rows[0].items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)]
        means[base] = dict(seeds=len(rows))
        for key in keys:
            values = [r[key] for r in rows if r.get(key) is not None]
            means[base][key] = round(statistics.fmean(values), 4) \
                if values else None
    return means


def main(argv=None) -> int:
    args = parse_args(argv)
    import mmembed  # noqa: F401
    report = dict(score_thr=args.score_thr,
                  dilation_ratio=args.dilation_ratio, models={})
    for name, config, checkpoint in args.model:
        report['models'][name] = dict(
            config=config, checkpoint=checkpoint,
            **measure(config, checkpoint, args.score_thr,
                      args.dilation_ratio))
        print(name, report['models'][name], flush=True)
    report['means'] = seed_means(report['models'])
    if args.out:
        os.makedirs(osp.dirname(args.out) or '.', exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
