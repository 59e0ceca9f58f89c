# Copyright (c) mmembed authors. All rights reserved.
"""ONNX Runtime vs PyTorch CPU latency of exported mmembed detectors.

Usage::

    python tools/deployment/onnx_latency.py [--config CONFIG] [--shape H W]
        [--repeats 5] [--warmup 1] [--threads N]
        [--out benchmarks/results/onnx_cpu.json]

For every detector in the run (default: EmbedMask R-50-FPN 1x at 800 x 1344,
random weights: latency depends on shapes, not on weight values), both
graphs are exported (``tensor`` = ``forward(mode='tensor')``, ``end2end`` =
``--with-postprocess``) and timed in the same process, with the same input
and the same number of threads, in onnxruntime (CPUExecutionProvider) and in
PyTorch (the module that was exported). mmdet's usual PyTorch inference path,
``model.predict`` on the same tensor, is timed too, as the reference for the
end-to-end graph. Ratios are ONNX Runtime / PyTorch median latency (< 1:
ONNX Runtime is faster).

:func:`measure_onnx_latency` is the entry point for the benchmark suite.
"""
import argparse
import json
import os
import os.path as osp
import platform
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import mmembed  # noqa: F401  isort:skip
import numpy as np
import torch

from mmembed.deployment import build_export_module, export_onnx

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIG = 'configs/embedmask/embedmask_r50_fpn_1x_coco.py'
DEFAULT_SHAPE = (800, 1344)  # 1333 x 800 padded to a multiple of 32
DEFAULT_OUT = 'benchmarks/results/onnx_cpu.json'


def _stats(times_ms: List[float]) -> Dict[str, float]:
    arr = np.asarray(times_ms)
    return dict(
        median_ms=float(np.median(arr)),
        p25_ms=float(np.percentile(arr, 25)),
        p75_ms=float(np.percentile(arr, 75)),
        mean_ms=float(arr.mean()),
        n=len(arr))


def _time(fn: Callable[[], Any], repeats: int, warmup: int) -> List[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def _predict_fn(model: torch.nn.Module, inputs: torch.Tensor) -> Callable:
    """mmdet's inference path on an already preprocessed tensor."""
    from mmdet.structures import DetDataSample
    height, width = inputs.shape[-2:]
    samples = [
        DetDataSample(
            metainfo=dict(
                img_shape=(height, width),
                ori_shape=(height, width),
                pad_shape=(height, width),
                batch_input_shape=(height, width),
                scale_factor=(1., 1.))) for _ in range(len(inputs))
    ]

    def run():
        with torch.no_grad():
            return model.predict(inputs, samples, rescale=False)

    return run


def measure_onnx_latency(config: str = DEFAULT_CONFIG,
                         shape: Sequence[int] = DEFAULT_SHAPE,
                         repeats: int = 5,
                         warmup: int = 1,
                         threads: Optional[int] = None,
                         graphs: Sequence[str] = ('tensor', 'end2end'),
                         cfg_options: Optional[dict] = None,
                         work_dir: Optional[str] = None) -> Dict[str, Any]:
    """Time PyTorch and ONNX Runtime on one config in this process.

    Args:
        config: config file (relative paths from the repository root).
        shape: input (H, W), multiples of the padding divisor.
        repeats, warmup: timed and untimed runs per measurement.
        threads: CPU threads for both runtimes (default: torch's current).
        graphs: which exports to time, from ``('tensor', 'end2end')``.
        cfg_options: merged into the config (e.g. a smaller test_cfg).
        work_dir: where the .onnx files go (default: a temporary folder).

    Returns:
        JSON-ready dict: machine and versions, and per graph the PyTorch and
        ONNX Runtime latency statistics, their ratio and the largest output
        difference; ``predict`` holds ``model.predict`` for reference.
    """
    import onnxruntime as ort
    from mmdet.apis import init_detector
    from mmengine.config import Config

    unknown = set(graphs) - {'tensor', 'end2end'}
    if unknown:
        raise ValueError(f'unknown graphs {sorted(unknown)}; use tensor and/or '
                         'end2end')
    if threads:
        torch.set_num_threads(threads)
    threads = torch.get_num_threads()
    cfg_path = config if osp.isabs(config) or osp.exists(config) else \
        osp.join(REPO, config)
    cfg = Config.fromfile(cfg_path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model = init_detector(cfg, None, device='cpu')
    torch.manual_seed(0)
    inputs = torch.randn(1, 3, *shape)

    result: Dict[str, Any] = dict(
        config=config,
        detector=type(model).__name__,
        input_shape=list(inputs.shape),
        weights='random (latency depends on shapes only)',
        machine=dict(
            processor=platform.processor() or platform.machine(),
            cpu_count=os.cpu_count(),
            python=platform.python_version(),
            torch=torch.__version__,
            onnxruntime=ort.__version__,
            mmembed=mmembed.__version__,
            threads=threads),
        repeats=repeats,
        warmup=warmup,
        graphs={})
    result['predict'] = _stats(
        _time(_predict_fn(model, inputs), repeats, warmup))

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        for graph in graphs:
            post = graph == 'end2end'
            module = build_export_module(model, with_postprocess=post)
            onnx_file = osp.join(tmp, f'{graph}.onnx')
            start = time.perf_counter()
            export_onnx(model, onnx_file, tuple(inputs.shape), post)
            export_s = time.perf_counter() - start
            session = ort.InferenceSession(
                onnx_file, options, providers=['CPUExecutionProvider'])
            feed = {'inputs': inputs.numpy()}

            def torch_run(module=module):
                with torch.no_grad():
                    return module(inputs)

            torch_times = _time(torch_run, repeats, warmup)
            ort_times = _time(lambda: session.run(None, feed), repeats,
                              warmup)
            worst = 0.
            for want, have in zip(torch_run(), session.run(None, feed)):
                want = want.numpy()
                if want.dtype.kind == 'f':
                    worst = max(worst,
                                float(np.abs(want - have).max(initial=0)))
                else:
                    worst = max(worst, float((want != have).mean()))
            torch_stats, ort_stats = _stats(torch_times), _stats(ort_times)
            entry = dict(
                export_s=export_s,
                onnx_mib=osp.getsize(onnx_file) / 2**20,
                pytorch=torch_stats,
                onnxruntime=ort_stats,
                ratio_ort_over_pytorch=ort_stats['median_ms'] /
                torch_stats['median_ms'],
                max_output_difference=worst)
            if post:
                entry['ratio_ort_over_predict'] = \
                    ort_stats['median_ms'] / result['predict']['median_ms']
            result['graphs'][graph] = entry
    return result


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='ONNX Runtime vs PyTorch CPU latency')
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument(
        '--shape', type=int, nargs=2, default=DEFAULT_SHAPE,
        metavar=('H', 'W'))
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument(
        '--graphs', nargs='+', default=['tensor', 'end2end'],
        choices=['tensor', 'end2end'])
    parser.add_argument(
        '--out', default=DEFAULT_OUT,
        help='JSON file (relative paths from the repository root)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    result = measure_onnx_latency(args.config, tuple(args.shape),
                                  args.repeats, args.warmup, args.threads,
                                  args.graphs)
    out = args.out if osp.isabs(args.out) else osp.join(REPO, args.out)
    os.makedirs(osp.dirname(out), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(result, f, indent=1)
    print(f"model.predict: {result['predict']['median_ms']:.1f} ms")
    for graph, entry in result['graphs'].items():
        print(f"{graph}: PyTorch {entry['pytorch']['median_ms']:.1f} ms, "
              f"ONNX Runtime {entry['onnxruntime']['median_ms']:.1f} ms "
              f"(ratio {entry['ratio_ort_over_pytorch']:.2f}), max diff "
              f"{entry['max_output_difference']:.2g}")
    print(f'wrote {out}')


if __name__ == '__main__':
    sys.exit(main())
