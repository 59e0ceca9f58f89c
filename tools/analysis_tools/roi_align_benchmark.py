# Copyright (c) mmembed authors. All rights reserved.
"""Time mmembed's ``SeparableRoIExtractor`` (RoIAlign as batched matmuls
on the CPU) against mmdet's ``SingleRoIExtractor`` with mmcv's RoIAlign, on
the same FPN maps and RoIs, after checking that both give the same
features (and, with ``--backward``, the same gradients).

    python tools/analysis_tools/roi_align_benchmark.py --threads 2 \\
        --out benchmarks/results/roi_align_cpu.json

Setting: the latency benchmark's R-50 FPN maps of an 800 x 1344 input
(P2-P5, 256 channels, strides 4-32), 100 RoIs of 16-716 pixels (a fixed
random set, aspect ratios spread around 1), ``sampling_ratio=2``,
``aligned=True``, pooled to 7 x 7 (Sparse R-CNN / QueryInst / ISTR boxes),
14 x 14 (QueryInst and Mask R-CNN masks) and 28 x 28 (ISTR v2 masks). Each
round times both in turn and the median round is reported, so a machine
shared with other jobs slows them alike. Per case: milliseconds of each and
``separable_over_mmcv`` (below 1: faster than mmcv). The matmul path is
timed at every size, also where the extractor keeps mmcv's kernel for a
pass that needs a gradient (``SeparableRoIAlign.min_grad_size``, set from
these figures).
"""
import argparse
import statistics
import time
from typing import Dict, List

import torch

from mmembed.utils.cli_utils import write_kernel_report

SIZES = (7, 14, 28)
STRIDES = (4, 8, 16, 32)
IMAGE = (800, 1344)


def make_inputs(num: int = 100, channels: int = 256, seed: int = 0):
    """FPN-like maps (P2-P5) and ``num`` RoIs ``[0, x1, y1, x2, y2]``."""
    gen = torch.Generator().manual_seed(seed)
    feats = tuple(
        torch.randn(1, channels, IMAGE[0] // s, IMAGE[1] // s, generator=gen)
        for s in STRIDES)
    w = torch.rand(num, generator=gen)**2 * 700 + 16
    h = (w * torch.exp(torch.randn(num, generator=gen) * 0.4)).clamp(
        max=IMAGE[0] - 1)
    x1 = torch.rand(num, generator=gen) * (1333 - w).clamp(min=1)
    y1 = torch.rand(num, generator=gen) * (800 - h).clamp(min=1)
    rois = torch.stack([torch.zeros(num), x1, y1, x1 + w, y1 + h], 1)
    return feats, rois


def build_extractors(size: int, channels: int) -> Dict[str, torch.nn.Module]:
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    import mmembed  # noqa: F401  (registers SeparableRoIExtractor)
    register_all_modules(init_default_scope=False)
    cfg = dict(roi_layer=dict(type='RoIAlign',
                              output_size=size,
                              sampling_ratio=2,
                              aligned=True),
               out_channels=channels,
               featmap_strides=list(STRIDES))
    separable = MODELS.build(dict(type='SeparableRoIExtractor', **cfg))
    # time the matmul path itself, also where a pass that needs a gradient
    # would keep mmcv's kernel (SeparableRoIAlign.min_grad_size): these
    # figures are what that threshold is set from
    for layer in separable.roi_layers:
        layer.min_grad_size = 1
    return dict(mmcv=MODELS.build(dict(type='SingleRoIExtractor', **cfg)),
                separable=separable)


def run(rounds: int,
        backward: bool,
        num: int = 100,
        channels: int = 256) -> List[dict]:
    feats, rois = make_inputs(num, channels)
    cases = []
    for size in SIZES:
        extractors = build_extractors(size, channels)
        grad_out = torch.randn(num, channels, size, size)

        def call(name):
            if not backward:
                with torch.no_grad():
                    return extractors[name](feats, rois), None
            leaves = [f.detach().requires_grad_() for f in feats]
            out = extractors[name](leaves, rois)
            (out * grad_out).sum().backward()
            return out.detach(), [leaf.grad for leaf in leaves]

        (out_a, grad_a), (out_b, grad_b) = call('mmcv'), call('separable')
        max_diff = (out_a - out_b).abs().max().item()
        torch.testing.assert_close(out_b, out_a, rtol=1e-4, atol=1e-4)
        if backward:
            for got, want in zip(grad_b, grad_a):
                torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
        times: Dict[str, List[float]] = {'mmcv': [], 'separable': []}
        for _ in range(rounds):
            for name in times:
                start = time.perf_counter()
                call(name)
                times[name].append((time.perf_counter() - start) * 1000)
        median = {k: statistics.median(v) for k, v in times.items()}
        cases.append(
            dict(output_size=size,
                 num_rois=num,
                 channels=channels,
                 backward=backward,
                 max_abs_diff=max_diff,
                 median_ms=median,
                 separable_over_mmcv=median['separable'] / median['mmcv']))
        print(
            f'[roi_align] {size}x{size}'
            f'{" fwd+bwd" if backward else ""}: mmcv '
            f'{median["mmcv"]:.1f} ms, separable '
            f'{median["separable"]:.1f} ms '
            f'({cases[-1]["separable_over_mmcv"]:.2f} x)',
            flush=True)
    return cases


def main(argv=None) -> None:
    from mmembed.utils.cli_utils import doc_summary
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument('--out',
                        default='benchmarks/results/roi_align_cpu.json')
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--num-rois', type=int, default=100)
    parser.add_argument('--channels', type=int, default=256)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.num_rois < 1 or args.channels < 1:
        parser.error('--rounds, --num-rois and --channels must be >= 1')
    torch.set_num_threads(args.threads)
    cases = []
    for backward in (False, True):
        cases += run(args.rounds, backward, args.num_rois, args.channels)
    write_kernel_report(args.out, __doc__, args.threads, args.rounds, cases)


if __name__ == '__main__':
    main()
