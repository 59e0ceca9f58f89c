# Copyright (c) mmembed authors. All rights reserved.
"""Train a detector: mmdet 3.x's ``tools/train.py`` interface, with mmembed.

Usage::

    python tools/train.py CONFIG [--work-dir DIR] [--amp] [--auto-scale-lr]
        [--resume [CHECKPOINT]] [--cfg-options KEY=VALUE ...]
        [--launcher {none,pytorch,slurm,mpi}]

The flags mean what they mean in mmdet's script. Differences:

* ``mmembed`` is imported before the config is read, so configs that name
  mmembed components work even without ``custom_imports``;
* ``--cfg-options data_root=...`` also moves the dataloaders' ``data_root``
  and the evaluators' ``ann_file`` (``mmembed.utils.config_utils``);
* with a launcher but no CUDA device, training runs distributed on the CPU
  (gloo backend, DDP without ``device_ids``; see ``tools/tool_utils.py``);
* a checkpoint refused by mmembed's safe loading (``--resume``,
  ``load_from``), a checkpoint of another model (``load_from``; allow it
  with ``--allow-partial-load``, e.g. to fine-tune from part of it), a
  misspelt config key or head argument, or a missing config file ends the
  run with the reason instead of a traceback.
"""
import argparse
import os

# Registers mmembed's components into mmdet's registries and installs the
# torch>=2.6-safe checkpoint loader before anything reads a config.
import mmembed  # noqa: F401  isort:skip
from mmdet.utils import setup_cache_size_limit_of_dynamo
from mmembed.utils.cli_utils import (add_allow_partial_load_arg,
                                     apply_allow_partial_load, run_main)
from mmengine.config import Config, DictAction

from tool_utils import (apply_common_options, build_runner, check_file_arg,
                        setup_cpu_distributed, teardown_distributed)


def parse_args(argv=None) -> argparse.Namespace:
    """Parse the command line (mmdet 3.3's flags)."""
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='path of the training config')
    parser.add_argument(
        '--work-dir', help='directory for logs and checkpoints')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='train with automatic mixed precision (AmpOptimWrapper with '
        'dynamic loss scaling); needs a GPU-like device')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by (total batch size / '
        'auto_scale_lr.base_batch_size)')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume training: from the given checkpoint, or, with no '
        'value, from the latest checkpoint in the work directory')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, as key=value pairs merged into the '
        'config, e.g. train_cfg.max_iters=4 or '
        'model.backbone.depth=18. Lists: key="[a,b]" or key=a,b; nested '
        'lists/tuples: key="[(a,b),(c,d)]" (quotes needed, no spaces).')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='how the processes were started (none: single process)')
    # torch.distributed.launch passes --local-rank (torch>=2.0) or
    # --local_rank (older); torchrun sets LOCAL_RANK instead.
    add_allow_partial_load_arg(parser)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    check_file_arg(parser, args.config, 'config file')
    apply_allow_partial_load(args)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def enable_amp(cfg: Config) -> None:
    """Switch the optimizer wrapper to AMP with dynamic loss scaling."""
    from mmengine.device import get_device
    if get_device() == 'cpu':
        # mmengine's AmpOptimWrapper asserts a CUDA/NPU/MLU/MUSA device;
        # say so before the runner is half built.
        raise SystemExit('--amp needs a GPU (or NPU/MLU/MUSA): mmengine\'s '
                         'AmpOptimWrapper does not run on the CPU')
    if 'optim_wrapper' not in cfg:
        raise SystemExit('--amp: the config has no optim_wrapper')
    if cfg.optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
        print('--amp: the config already uses AmpOptimWrapper')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'


def enable_auto_scale_lr(cfg: Config) -> None:
    """Turn on mmengine's LR scaling, which needs ``base_batch_size``."""
    auto_scale_lr = cfg.get('auto_scale_lr', None)
    if not auto_scale_lr or 'enable' not in auto_scale_lr or \
            'base_batch_size' not in auto_scale_lr:
        raise SystemExit(
            '--auto-scale-lr needs auto_scale_lr = dict(enable=False, '
            'base_batch_size=N) in the config, where N is the total batch '
            'size the learning rate was tuned for')
    cfg.auto_scale_lr.enable = True


def main(argv=None) -> None:
    args = parse_args(argv)
    # fewer torch.compile recompilations when a config enables compile
    setup_cache_size_limit_of_dynamo()

    cfg = Config.fromfile(args.config)
    cfg = apply_common_options(cfg, args)

    if args.amp:
        enable_amp(cfg)
    if args.auto_scale_lr:
        enable_auto_scale_lr(cfg)

    # an explicit checkpoint wins over auto-resume from the work dir
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        check_file_arg(argparse.ArgumentParser(prog='tools/train.py'),
                       args.resume, '--resume checkpoint')
        cfg.resume = True
        cfg.load_from = args.resume

    setup_cpu_distributed(cfg, args.launcher)
    runner = build_runner(cfg)
    runner.train()
    # the runner holds the DDP wrapper and through it the process group
    del runner
    teardown_distributed()


if __name__ == '__main__':
    run_main(main, 'tools/train.py')
