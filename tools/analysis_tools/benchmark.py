# Copyright (c) mmembed authors. All rights reserved.
"""Inference speed and memory of a detector, one image at a time.

Usage::

    python tools/analysis_tools/benchmark.py CONFIG [--checkpoint CKPT]
        [--device {cpu,cuda}] [--num-warmup 5] [--max-iter 2000]
        [--repeat-num 1] [--log-interval 50] [--fuse-conv-bn]
        [--work-dir DIR] [--out-json PATH] [--cfg-options KEY=VALUE ...]

Measures what mmdet's ``benchmark.py --task inference`` measures: the test
dataloader with batch size 1 and no worker processes, ``model.test_step``
timed with ``time.perf_counter`` (with ``torch.cuda.synchronize()`` on both
sides on CUDA, since kernels run asynchronously), the first ``--num-warmup``
iterations discarded and the run stopped after ``--max-iter`` iterations
(warm-up included). It also reports the median and mean ms/img, peak memory
(CUDA: ``torch.cuda.max_memory_allocated``; CPU: the peak resident set size),
the device, the library versions and the torch thread count, and can write
all of it as JSON.

The timing core is :func:`benchmark_inference`, importable by benchmark
suites::

    from benchmark import benchmark_inference   # tools/analysis_tools on path
    result = benchmark_inference('cfg.py', device='cpu', max_iter=50)

Without ``--checkpoint`` the model keeps its freshly constructed weights
(``init_weights`` is not called, so no pretrained backbone is fetched); the
result's ``checkpoint`` is then ``None``. Post-processing cost depends on how
many boxes pass the score threshold, so compare numbers from real weights.
"""
import argparse
import copy
import json
import os
import os.path as osp
import platform
import resource
import statistics
import sys
import time
from typing import Any, Dict, List, Optional, Union

# First: registers mmembed's components, installs safe checkpoint loading.
import mmembed  # isort:skip
import torch
from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope

from mmembed.utils.cli_utils import (add_allow_partial_load_arg,
                                     apply_allow_partial_load, run_main)
from mmembed.utils.config_utils import missing_file_message

_MB = 1024.0 * 1024.0


def _peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (a high-water mark)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes
    return peak if platform.system() == 'Darwin' else peak * 1024


def _current_rss_bytes() -> Optional[int]:
    """Current resident set size, from /proc (None where there is none)."""
    try:
        with open('/proc/self/statm') as f:
            resident_pages = int(f.read().split()[1])
        return resident_pages * os.sysconf('SC_PAGE_SIZE')
    except (OSError, ValueError, IndexError):
        return None


def _cpu_name() -> str:
    """The CPU model ('model name' in /proc/cpuinfo), else the machine."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _resolve_device(device: Optional[str]) -> torch.device:
    if device is None:
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    dev = torch.device(device)
    if dev.type not in ('cpu', 'cuda'):
        raise ValueError(f'device must be cpu or cuda, got {device!r}')
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError(f'device {device!r} requested but CUDA is not '
                           'available; use --device cpu')
    return dev


def _build_model(cfg: Config, checkpoint: Optional[str],
                 fuse_conv_bn: bool, device: torch.device) -> torch.nn.Module:
    from mmdet.registry import MODELS
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        from mmengine.runner import load_checkpoint
        # goes through mmembed's weights_only loader
        load_checkpoint(model, checkpoint, map_location='cpu')
    if fuse_conv_bn:
        from mmcv.cnn import fuse_conv_bn as fuse
        model = fuse(model)
    model = model.to(device)
    model.eval()
    return model


def _build_dataloader(cfg: Config) -> Any:
    from mmengine.runner import Runner
    loader_cfg = cfg.test_dataloader.copy()
    # one image per step; workers would compete with the model for the CPU
    # and make the timings noisy (mmdet does the same)
    loader_cfg['batch_size'] = 1
    loader_cfg['num_workers'] = 0
    loader_cfg['persistent_workers'] = False
    return Runner.build_dataloader(loader_cfg)


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _time_one_run(model: torch.nn.Module, dataloader: Any,
                  device: torch.device, num_warmup: int, max_iter: int,
                  log_interval: int, logger: MMLogger) -> List[float]:
    """Seconds per timed image of one pass (warm-up dropped)."""
    times: List[float] = []
    for i, data in enumerate(dataloader):
        _sync(device)
        start = time.perf_counter()
        with torch.no_grad():
            model.test_step(data)
        _sync(device)
        elapsed = time.perf_counter() - start
        if i >= num_warmup:
            times.append(elapsed)
            if log_interval > 0 and (i + 1) % log_interval == 0:
                fps = len(times) / sum(times)
                logger.info(f'image [{i + 1}/{max_iter}] fps: {fps:.2f} '
                            f'img/s, {1000.0 / fps:.1f} ms/img')
        if i + 1 >= max_iter:
            break
    return times


def benchmark_inference(cfg: Union[str, Config],
                        checkpoint: Optional[str] = None,
                        device: Optional[str] = 'cpu',
                        num_warmup: int = 5,
                        max_iter: int = 2000,
                        repeat_num: int = 1,
                        log_interval: int = 50,
                        fuse_conv_bn: bool = False,
                        cfg_options: Optional[Dict[str, Any]] = None,
                        logger: Optional[MMLogger] = None) -> Dict[str, Any]:
    """Time ``model.test_step`` image by image on the test dataloader.

    Args:
        cfg: Config or path of a config file.
        checkpoint: Weights to load (loaded safely, weights_only). None keeps
            the freshly built weights.
        device: ``'cpu'``, ``'cuda'``/``'cuda:N'``, or None for cuda when
            available, else cpu.
        num_warmup: Leading iterations of each run that are not timed.
        max_iter: Iterations per run, warm-up included (a run also ends with
            the dataset).
        repeat_num: Passes over the data; fps/ms are over all timed images.
        log_interval: Log progress every this many iterations (0: never).
        fuse_conv_bn: Fold BatchNorm into the preceding convolutions.
        cfg_options: Overrides merged into the config.
        logger: Logger for progress; default: ``MMLogger`` 'mmembed'.

    Returns:
        dict with ``fps``, ``ms_per_img_median``, ``ms_per_img_mean``,
        per-run numbers in ``runs``, memory fields (``peak_memory_mb`` plus
        ``cuda_max_memory_allocated_mb`` on CUDA, ``peak_rss_mb``,
        ``peak_rss_increase_mb``, ``rss_before_mb``/``rss_after_mb``), the
        device, versions and ``torch_num_threads``.
    """
    if num_warmup < 0:
        raise ValueError(f'num_warmup must be >= 0, got {num_warmup}')
    if max_iter <= num_warmup:
        raise ValueError(f'max_iter ({max_iter}) must exceed num_warmup '
                         f'({num_warmup}), or no image is timed')
    if repeat_num < 1:
        raise ValueError(f'repeat_num must be >= 1, got {repeat_num}')
    config_path = cfg if isinstance(cfg, str) else cfg.filename
    if isinstance(cfg, str):
        cfg = Config.fromfile(cfg)
    else:
        cfg = copy.deepcopy(cfg)  # merge_from_dict must not touch the caller's
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if logger is None:
        logger = MMLogger.get_instance('mmembed', log_level='INFO')
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    dev = _resolve_device(device)

    model = _build_model(cfg, checkpoint, fuse_conv_bn, dev)
    dataloader = _build_dataloader(cfg)
    num_images = len(dataloader.dataset)
    if num_images <= num_warmup:
        raise ValueError(f'the test set has {num_images} images, not more '
                         f'than num_warmup={num_warmup}: nothing to time')

    rss_before = _current_rss_bytes()
    peak_rss_before = _peak_rss_bytes()
    if dev.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(dev)

    runs: List[Dict[str, float]] = []
    all_times: List[float] = []
    for run in range(repeat_num):
        times = _time_one_run(model, dataloader, dev, num_warmup, max_iter,
                              log_interval, logger)
        all_times += times
        runs.append(
            dict(
                num_images=len(times),
                fps=len(times) / sum(times),
                ms_per_img_mean=1000.0 * statistics.fmean(times),
                ms_per_img_median=1000.0 * statistics.median(times)))
        logger.info(f'run {run + 1}/{repeat_num}: {runs[-1]["fps"]:.2f} '
                    f'img/s, median {runs[-1]["ms_per_img_median"]:.1f} '
                    f'ms/img over {len(times)} images')

    peak_rss = _peak_rss_bytes()
    rss_after = _current_rss_bytes()
    import mmcv
    import mmdet
    import mmengine
    result: Dict[str, Any] = dict(
        config=config_path,
        checkpoint=checkpoint,
        device=str(dev),
        device_name=(torch.cuda.get_device_name(dev) if dev.type == 'cuda'
                     else _cpu_name()),
        torch_version=torch.__version__,
        mmcv_version=mmcv.__version__,
        mmengine_version=mmengine.__version__,
        mmdet_version=mmdet.__version__,
        mmembed_version=mmembed.__version__,
        torch_num_threads=torch.get_num_threads(),
        fuse_conv_bn=fuse_conv_bn,
        num_warmup=num_warmup,
        max_iter=max_iter,
        repeat_num=repeat_num,
        num_timed_images=len(all_times),
        fps=len(all_times) / sum(all_times),
        ms_per_img_mean=1000.0 * statistics.fmean(all_times),
        ms_per_img_median=1000.0 * statistics.median(all_times),
        runs=runs,
        # ru_maxrss is a high-water mark: the increase is how far the timed
        # loop pushed the peak beyond what building the model/data reached
        peak_rss_mb=peak_rss / _MB,
        peak_rss_increase_mb=(peak_rss - peak_rss_before) / _MB,
        rss_before_mb=None if rss_before is None else rss_before / _MB,
        rss_after_mb=None if rss_after is None else rss_after / _MB)
    if dev.type == 'cuda':
        cuda_peak = torch.cuda.max_memory_allocated(dev) / _MB
        result['cuda_max_memory_allocated_mb'] = cuda_peak
        result['peak_memory_mb'] = cuda_peak
        result['peak_memory_kind'] = 'cuda_max_memory_allocated'
    else:
        result['peak_memory_mb'] = result['peak_rss_mb']
        result['peak_memory_kind'] = 'cpu_peak_rss'
    return result


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Benchmark detector inference, one image per step')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--checkpoint', help='checkpoint file (default: '
                        'untrained weights)')
    parser.add_argument(
        '--device',
        choices=['cpu', 'cuda'],
        default='cuda' if torch.cuda.is_available() else 'cpu',
        help='device to run on (default: cuda if available, else cpu)')
    parser.add_argument(
        '--repeat-num',
        type=int,
        default=1,
        help='number of passes; fps and ms/img are over all of them')
    parser.add_argument(
        '--max-iter',
        type=int,
        default=2000,
        help='iterations per pass, warm-up included')
    parser.add_argument(
        '--log-interval', type=int, default=50, help='log every N images')
    parser.add_argument(
        '--num-warmup',
        type=int,
        default=5,
        help='untimed iterations at the start of each pass')
    parser.add_argument(
        '--fuse-conv-bn',
        action='store_true',
        help='fold BatchNorm into convolutions (slightly faster inference)')
    parser.add_argument(
        '--work-dir', help='directory for benchmark.log')
    parser.add_argument(
        '--out-json', help='write all numbers to this JSON file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, as key=value pairs merged into the '
        'config')
    add_allow_partial_load_arg(parser)
    args = parser.parse_args(argv)
    if not osp.isfile(args.config):
        parser.error(missing_file_message(args.config))
    if args.checkpoint is not None and '://' not in args.checkpoint and \
            not osp.isfile(args.checkpoint):
        parser.error(missing_file_message(args.checkpoint, 'checkpoint'))
    apply_allow_partial_load(args)
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: CUDA is not available')
    return args


def main(argv=None) -> Dict[str, Any]:
    args = parse_args(argv)
    log_file = None
    if args.work_dir:
        os.makedirs(args.work_dir, exist_ok=True)
        log_file = osp.join(args.work_dir, 'benchmark.log')
    logger = MMLogger.get_instance(
        'mmembed_benchmark', log_file=log_file, log_level='INFO')
    try:
        result = benchmark_inference(
            args.config,
            checkpoint=args.checkpoint,
            device=args.device,
            num_warmup=args.num_warmup,
            max_iter=args.max_iter,
            repeat_num=args.repeat_num,
            log_interval=args.log_interval,
            fuse_conv_bn=args.fuse_conv_bn,
            cfg_options=args.cfg_options,
            logger=logger)
    except ValueError as exc:
        sys.exit(f'benchmark.py: {exc}')
    logger.info(
        f'{result["fps"]:.2f} img/s; ms/img median '
        f'{result["ms_per_img_median"]:.1f}, mean '
        f'{result["ms_per_img_mean"]:.1f} over {result["num_timed_images"]} '
        f'images; peak memory {result["peak_memory_mb"]:.1f} MB '
        f'({result["peak_memory_kind"]}); peak RSS increase in the timed '
        f'loop {result["peak_rss_increase_mb"]:.1f} MB; device '
        f'{result["device"]}; torch {result["torch_version"]} '
        f'({result["torch_num_threads"]} threads), mmcv '
        f'{result["mmcv_version"]}, mmdet {result["mmdet_version"]}')
    if args.out_json:
        out_dir = osp.dirname(osp.abspath(args.out_json))
        os.makedirs(out_dir, exist_ok=True)
        with open(args.out_json, 'w') as f:
            json.dump(result, f, indent=2)
        logger.info(f'results written to {args.out_json}')
    return result


if __name__ == '__main__':
    run_main(main, 'benchmark.py')
