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
test set.
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
    model = init_detector(config, checkpoint, device='cpu')
    loader_cfg = dict(model.cfg.test_dataloader)
    loader_cfg.update(num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg)
    found, ious, biou = 0, [], []
    total = 0
    with torch.no_grad():
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
    return dict(
        gts=total,
        found=round(found / max(total, 1), 4),
        mask_iou=round(statistics.fmean(ious), 4) if ious else None,
        boundary_iou=round(statistics.fmean(biou), 4) if biou else None)


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
    if args.out:
        os.makedirs(osp.dirname(args.out) or '.', exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
