# Copyright (c) mmembed authors. All rights reserved.
"""Test (and evaluate) a detector: mmdet 3.x's ``tools/test.py`` interface.

Usage::

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out RES.pkl]
        [--show] [--show-dir DIR] [--wait-time SECONDS] [--tta]
        [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch,slurm,mpi}]

As in mmdet, ``--out`` adds mmdet's ``DumpDetResults`` metric, which pickles
the predictions for offline evaluation, and ``--show``/``--show-dir`` turn on
the ``visualization`` hook of ``default_hooks``. Like ``tools/train.py``, it
imports mmembed first, rewrites dataset roots for ``--cfg-options
data_root=...`` and runs distributed on the CPU (gloo) without CUDA.

Checkpoints are read with ``torch.load(weights_only=True)`` (mmembed's safe
loading); a checkpoint holding other pickled objects is refused with
``UnsafeCheckpointError``, and a checkpoint of another model (most of the
model, or a whole head, finds no weights in it) with
``CheckpointMismatchError`` unless ``--allow-partial-load``; the run stops
with that message. The log says how many of the model's parameter tensors
the checkpoint filled.
"""
import argparse
import copy
import os
import warnings

# Registers mmembed's components and the safe checkpoint loader first.
import mmembed  # noqa: F401  isort:skip
from mmdet.engine.hooks.utils import trigger_visualization_hook
from mmdet.evaluation import DumpDetResults
from mmdet.utils import setup_cache_size_limit_of_dynamo
from mmembed.utils.cli_utils import (add_allow_partial_load_arg,
                                     apply_allow_partial_load, run_main)
from mmengine.config import Config, ConfigDict, DictAction

from tool_utils import (apply_common_options, build_runner, check_file_arg,
                        setup_cpu_distributed, teardown_distributed)


def parse_args(argv=None) -> argparse.Namespace:
    """Parse the command line (mmdet 3.3's flags)."""
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a detector')
    parser.add_argument('config', help='path of the test config')
    parser.add_argument('checkpoint', help='checkpoint file to test')
    parser.add_argument(
        '--work-dir', help='directory for the log and the metrics file')
    parser.add_argument(
        '--out',
        type=str,
        help='also dump the predictions to this pickle file (.pkl or '
        '.pickle) for offline evaluation')
    parser.add_argument(
        '--show', action='store_true', help='display the predictions')
    parser.add_argument(
        '--show-dir',
        help='save images with drawn predictions in this directory '
        '(relative paths end up under work_dir/<timestamp>/)')
    parser.add_argument(
        '--wait-time',
        type=float,
        default=2,
        help='seconds each image is displayed with --show')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, as key=value pairs merged into the '
        'config. Lists: key="[a,b]" or key=a,b; nested lists/tuples: '
        'key="[(a,b),(c,d)]" (quotes needed, no spaces).')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='how the processes were started (none: single process)')
    parser.add_argument(
        '--tta',
        action='store_true',
        help='test-time augmentation: wrap the model in the config\'s '
        'tta_model and use its tta_pipeline (default: horizontal flip)')
    add_allow_partial_load_arg(parser)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    check_file_arg(parser, args.config, 'config file')
    check_file_arg(parser, args.checkpoint, 'checkpoint')
    apply_allow_partial_load(args)
    # fail before the model is built, not after the whole test pass
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        parser.error(f'--out must name a .pkl or .pickle file, got '
                     f'{args.out!r}')
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def _innermost_dataset(dataset_cfg: ConfigDict) -> ConfigDict:
    """The dataset that owns the pipeline, below wrappers such as
    ``ClassBalancedDataset(dataset=...)``."""
    while 'dataset' in dataset_cfg:
        dataset_cfg = dataset_cfg['dataset']
    return dataset_cfg


def enable_tta(cfg: Config) -> None:
    """Wrap ``cfg.model`` for test-time augmentation.

    Uses ``tta_model`` / ``tta_pipeline`` from the config; when missing,
    falls back to mmdet's ``DetTTAModel`` merging a flipped and an unflipped
    pass with NMS, built from the test pipeline.
    """
    if 'tta_model' not in cfg:
        warnings.warn('--tta: the config has no tta_model; using DetTTAModel '
                      'with NMS (IoU 0.5, 100 boxes per image)')
        cfg.tta_model = dict(
            type='DetTTAModel',
            tta_cfg=dict(
                nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
    if 'tta_pipeline' not in cfg:
        warnings.warn('--tta: the config has no tta_pipeline; using the test '
                      'pipeline with and without a horizontal flip')
        test_dataset = _innermost_dataset(cfg.test_dataloader.dataset)
        pipeline = copy.deepcopy(test_dataset.pipeline)
        # the last transform packs the inputs; TestTimeAug must pack each
        # augmented copy itself, keeping the flip meta keys for the merge
        pipeline[-1] = dict(
            type='TestTimeAug',
            transforms=[
                [
                    dict(type='RandomFlip', prob=1.),
                    dict(type='RandomFlip', prob=0.)
                ],
                [
                    dict(
                        type='PackDetInputs',
                        meta_keys=('img_id', 'img_path', 'ori_shape',
                                   'img_shape', 'scale_factor', 'flip',
                                   'flip_direction'))
                ],
            ])
        cfg.tta_pipeline = pipeline
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    _innermost_dataset(cfg.test_dataloader.dataset).pipeline = \
        cfg.tta_pipeline


def main(argv=None) -> None:
    args = parse_args(argv)
    setup_cache_size_limit_of_dynamo()

    cfg = Config.fromfile(args.config)
    cfg = apply_common_options(cfg, args)
    cfg.load_from = args.checkpoint

    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.tta:
        enable_tta(cfg)

    setup_cpu_distributed(cfg, args.launcher)
    runner = build_runner(cfg)

    if args.out is not None:
        # a metric that only pickles the predictions, next to the real ones
        runner.test_evaluator.metrics.append(
            DumpDetResults(out_file_path=args.out))

    runner.test()
    # the runner holds the DDP wrapper and through it the process group
    del runner
    teardown_distributed()


if __name__ == '__main__':
    run_main(main, 'tools/test.py')
