# Copyright (c) mmembed authors. All rights reserved.
"""Time the implementations of ``paste_box_masks`` (the paste of per-box
mask maps into the image used by ISTR and BlendMask) against mmdet's CPU
paste, ``FCNMaskHead._do_paste_mask`` box by box with ``skip_empty=True``
(what mmdet's Mask R-CNN and QueryInst heads do on a CPU), on the same
maps and boxes, after checking that all give the same masks.

    python tools/analysis_tools/paste_benchmark.py \\
        --out benchmarks/results/paste_impls_cpu.json

Cases: 100 boxes in an 800 x 1333 image (the latency benchmark's setting)
with maps of 28 x 28 (Mask R-CNN, ISTR v1), 56 x 56 (BlendMask) and
112 x 112 (ISTR v2), boxes of 20-320 pixels, plus one case with boxes up
to 800 pixels. Each round times every implementation in turn and the median
round is reported, so a machine shared with other jobs slows them alike.
Per case (``cases``): milliseconds of each, and ``<impl>_over_mmdet`` ratios (below 1:
faster than mmdet's paste).
"""
import argparse
import statistics
import time
from typing import Dict, List

import torch
from mmdet.models.roi_heads.mask_heads.fcn_mask_head import _do_paste_mask

from mmembed.models.utils import paste_box_masks
from mmembed.utils.cli_utils import write_kernel_report

IMPLS = ('boxwise', 'ragged', 'separable', 'dense')
CASES = (
    dict(mask_size=28, num=100, max_box=300),
    dict(mask_size=56, num=100, max_box=300),
    dict(mask_size=112, num=100, max_box=300),
    dict(mask_size=112, num=100, max_box=800),
)
OUT_SIZE = (800, 1333)


def make_case(mask_size: int, num: int, max_box: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    probs = torch.rand(num, mask_size, mask_size, generator=gen)
    xy = torch.rand(num, 2, generator=gen) * torch.tensor(
        [OUT_SIZE[1] - 20., OUT_SIZE[0] - 20.])
    wh = torch.rand(num, 2, generator=gen) * (max_box - 20) + 20
    return probs, torch.cat([xy, xy + wh], dim=1)


def mmdet_paste(probs: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """mmdet's CPU rule: one box per chunk, pasted into its own region."""
    out = torch.zeros(len(probs), *OUT_SIZE, dtype=torch.bool)
    for i in range(len(probs)):
        masks, spatial = _do_paste_mask(probs[i:i + 1, None], boxes[i:i + 1],
                                        *OUT_SIZE, skip_empty=True)
        out[(slice(i, i + 1), ) + spatial] = masks >= 0.5
    return out


def run(rounds: int, impls) -> List[Dict]:
    results = []
    for case in CASES:
        probs, boxes = make_case(**case)
        want = mmdet_paste(probs, boxes)
        fns = {'mmdet': lambda: mmdet_paste(probs, boxes)}
        for impl in impls:
            got = paste_box_masks(probs, boxes, OUT_SIZE, 0.5, impl=impl)
            # the threshold is >= in all; ties aside every pixel agrees
            differ = int((got != want).sum())
            if differ > 10:
                raise AssertionError(f'{impl} differs from mmdet on {differ} '
                                     f'pixels for {case}')
            fns[impl] = (lambda impl=impl: paste_box_masks(
                probs, boxes, OUT_SIZE, 0.5, impl=impl))
        times: Dict[str, list] = {name: [] for name in fns}
        for _ in range(rounds):
            for name, fn in fns.items():
                start = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - start) * 1e3)
        median = {name: statistics.median(v) for name, v in times.items()}
        row = dict(case, out_size=list(OUT_SIZE),
                   summed_box_area_over_image=float(
                       ((boxes[:, 2] - boxes[:, 0]) *
                        (boxes[:, 3] - boxes[:, 1])).sum() /
                       (OUT_SIZE[0] * OUT_SIZE[1])),
                   median_ms=median)
        for impl in impls:
            row[f'{impl}_over_mmdet'] = median[impl] / median['mmdet']
        results.append(row)
        print(row)
    return results


def main(argv=None) -> None:
    from mmembed.utils.cli_utils import doc_summary
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument('--out',
                        default='benchmarks/results/paste_impls_cpu.json')
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--impls', nargs='+', default=list(IMPLS),
                        choices=IMPLS)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error('--rounds must be >= 1')
    torch.set_num_threads(args.threads)
    results = run(args.rounds, args.impls)
    write_kernel_report(args.out, __doc__, args.threads, args.rounds, results)


if __name__ == '__main__':
    main()
