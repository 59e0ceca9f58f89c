# Copyright (c) mmembed authors. All rights reserved.
"""Helpers shared by ``tools/train.py`` and ``tools/test.py``.

The scripts in ``tools/`` are run as files (``python tools/train.py``, or by
torchrun/srun through ``tools/dist_*.sh`` / ``tools/slurm_*.sh``), so Python
puts ``tools/`` on ``sys.path`` and they can ``import tool_utils``.

The main job here is distributed runs on machines without CUDA. mmengine
0.10.7 handles ``--launcher pytorch|slurm|mpi`` assuming a GPU per process:

* ``mmengine.dist.init_dist`` always calls ``torch.cuda.set_device`` before
  creating the process group (a CPU-only torch build fails with
  ``AttributeError: module 'torch._C' has no attribute '_cuda_setDevice'``)
  and defaults to the NCCL backend, which needs CUDA. No config key avoids
  the ``set_device`` call, but ``Runner.setup_env`` only calls ``init_dist``
  when no process group exists yet, so on CPU we create the (gloo) group
  ourselves before the Runner is built.
* ``Runner.wrap_model`` passes ``device_ids=[LOCAL_RANK]`` to
  ``MMDistributedDataParallel``; torch's DDP rejects ``device_ids`` for a
  module on the CPU. mmengine only adds it as a *default* argument when
  ``model_wrapper_cfg`` is set, so an explicit ``device_ids=None`` in
  ``model_wrapper_cfg`` is the config route that makes CPU DDP work.
"""
import datetime
import os
import os.path as osp
import subprocess
from typing import Any, Dict, Optional

import torch.distributed as torch_dist
from mmengine.config import Config

# backends that only run on GPUs; anything else (gloo, mpi) also runs on CPU
_GPU_ONLY_BACKENDS = ('nccl', 'cncl', 'hccl', 'mccl')


def apply_common_options(cfg: Config, args: Any) -> Config:
    """Apply ``--launcher``, ``--cfg-options`` and ``--work-dir`` to ``cfg``.

    ``work_dir`` is chosen as in mmdet: the command line wins, then a
    ``work_dir`` set in the config, then ``./work_dirs/<config file stem>``.
    When ``--cfg-options`` sets ``data_root``, the dataset roots and the
    evaluators' annotation files that were derived from the old root are
    rewritten as well (a bare ``data_root=`` override would only change the
    top-level variable, which the dataloaders copied at load time).
    """
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
        if 'data_root' in args.cfg_options:
            # imported lazily: only runs that move the data need it
            from mmembed.utils.config_utils import update_data_root
            cfg = update_data_root(cfg, cfg.data_root)

    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        stem = osp.splitext(osp.basename(args.config))[0]
        cfg.work_dir = osp.join('./work_dirs', stem)
    return cfg


def check_file_arg(parser: Any, path: str, what: str) -> None:
    """``parser.error`` (exit 2 with usage) if a local ``path`` is missing.

    Paths with a scheme (``http://``, ``s3://`` ...) are left to mmengine's
    file backends.
    """
    if '://' in path:
        return
    if not osp.isfile(path):
        # imported lazily: the module is imported before mmembed
        from mmembed.utils.config_utils import missing_file_message
        parser.error(missing_file_message(path, what))


def _needs_cpu_distributed(launcher: str) -> bool:
    if launcher == 'none':
        return False
    # mmengine's own code path is right for CUDA and for the other
    # accelerators it knows (NPU, MLU, MUSA); get_device() says 'cpu' only
    # when none of them is present.
    from mmengine.device import get_device
    return get_device() == 'cpu'


def _require_env(launcher: str, names: tuple, hint: str) -> Dict[str, str]:
    missing = [name for name in names if name not in os.environ]
    if missing:
        raise RuntimeError(
            f'--launcher {launcher} needs the environment variables '
            f'{", ".join(missing)}, which are not set. {hint}')
    return {name: os.environ[name] for name in names}


def _export_slurm_env(port: Optional[int]) -> None:
    """Derive torch's env:// variables from SLURM's, as mmengine does."""
    env = _require_env(
        'slurm', ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'),
        'Start the job with srun (see tools/slurm_train.sh).')
    if 'MASTER_ADDR' not in os.environ:
        # the first host of the allocation hosts the rendezvous
        hosts = subprocess.run(
            ['scontrol', 'show', 'hostname', env['SLURM_NODELIST']],
            check=True,
            capture_output=True,
            text=True).stdout.split()
        if not hosts:
            raise RuntimeError('scontrol returned no host for SLURM_NODELIST='
                               f'{env["SLURM_NODELIST"]!r}')
        os.environ['MASTER_ADDR'] = hosts[0]
    if 'MASTER_PORT' not in os.environ:
        os.environ['MASTER_PORT'] = str(port if port is not None else 29500)
    os.environ['WORLD_SIZE'] = env['SLURM_NTASKS']
    os.environ['RANK'] = env['SLURM_PROCID']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')


def _export_mpi_env() -> None:
    """Derive torch's env:// variables from Open MPI's."""
    env = _require_env(
        'mpi', ('OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE'),
        'Start the job with mpirun (Open MPI).')
    _require_env('mpi', ('MASTER_ADDR', ),
                 'Export MASTER_ADDR (the host of rank 0) for mpirun.')
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ['RANK'] = env['OMPI_COMM_WORLD_RANK']
    os.environ['WORLD_SIZE'] = env['OMPI_COMM_WORLD_SIZE']
    os.environ['LOCAL_RANK'] = os.environ.get('OMPI_COMM_WORLD_LOCAL_RANK',
                                              '0')


def _cpu_model_wrapper_cfg(cfg: Config) -> None:
    """Make the DDP wrapper that ``Runner.wrap_model`` builds CPU-capable."""
    from mmdet.registry import MODEL_WRAPPERS
    from torch.nn.parallel import DistributedDataParallel

    wrapper_cfg = cfg.get('model_wrapper_cfg', None)
    if wrapper_cfg is None:
        # what mmengine builds without model_wrapper_cfg, minus device_ids
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False),
            device_ids=None)
        return
    wrapper_type = wrapper_cfg.get('type', 'MMDistributedDataParallel')
    wrapper_cls = MODEL_WRAPPERS.get(wrapper_type) if isinstance(
        wrapper_type, str) else wrapper_type
    if wrapper_cls is None:
        raise KeyError(f'model_wrapper_cfg.type={wrapper_type!r} is not a '
                       'registered model wrapper')
    # non-DDP wrappers (e.g. FSDP) do not get device_ids from mmengine
    if isinstance(wrapper_cls, type) and issubclass(wrapper_cls,
                                                    DistributedDataParallel):
        if wrapper_cfg.get('device_ids', None) is not None:
            print('mmembed: ignoring model_wrapper_cfg.device_ids='
                  f'{wrapper_cfg["device_ids"]}: DDP on CPU takes none.')
        wrapper_cfg['device_ids'] = None


def teardown_distributed() -> None:
    """Free the finished runner's process group before the interpreter does.

    Call it after the last reference to the runner is gone (``del runner``).
    The DDP wrapper's reducer keeps the gloo process group alive; when that
    reference cycle is only broken during interpreter shutdown, the group's
    worker threads are destroyed after the modules they need, and a rank
    aborts ("terminate called without an active exception", exit -6) after
    a run that finished. Seen in about 1 run in 4 of ``dist_train.sh`` on a
    2-core machine; collecting the cycle first and destroying the group
    explicitly gave 0 failures in 28 runs.
    """
    import gc
    gc.collect()
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def setup_cpu_distributed(cfg: Config, launcher: str) -> bool:
    """Prepare ``cfg`` (and the process group) for a distributed CPU run.

    Does nothing and returns False when no launcher is used or an
    accelerator is present (mmengine's own set-up is right there). Otherwise
    switches ``env_cfg.dist_cfg.backend`` from a GPU-only backend to
    ``gloo``, sets ``model_wrapper_cfg.device_ids=None`` and initialises the
    process group, then returns True. See the module docstring for why the
    process group cannot be left to mmengine.
    """
    if not _needs_cpu_distributed(launcher):
        return False
    if cfg.get('env_cfg', None) is None:
        cfg.env_cfg = dict()
    if cfg.env_cfg.get('dist_cfg', None) is None:
        cfg.env_cfg.dist_cfg = dict()
    dist_cfg = cfg.env_cfg.dist_cfg
    backend = dist_cfg.get('backend', 'nccl')
    if backend in _GPU_ONLY_BACKENDS:
        dist_cfg['backend'] = backend = 'gloo'
    _cpu_model_wrapper_cfg(cfg)

    if not torch_dist.is_available():
        raise RuntimeError('this torch build has no torch.distributed; '
                           'run without --launcher')
    if torch_dist.is_initialized():
        return True
    init_backend = dist_cfg.get('init_backend', 'torch')
    if init_backend != 'torch':
        raise RuntimeError(
            f"env_cfg.dist_cfg.init_backend={init_backend!r} is not supported "
            "for CPU runs; only 'torch' is")
    if launcher == 'pytorch':
        _require_env(
            'pytorch', ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'),
            'Start the processes with torchrun (see tools/dist_train.sh).')
    elif launcher == 'slurm':
        _export_slurm_env(dist_cfg.get('port', None))
    elif launcher == 'mpi':
        _export_mpi_env()
    else:
        raise ValueError(f'unknown launcher {launcher!r}')

    kwargs: Dict[str, Any] = {}
    timeout = dist_cfg.get('timeout', None)
    if timeout is not None:
        # mmengine's dist_cfg gives the timeout in seconds
        kwargs['timeout'] = datetime.timedelta(seconds=timeout)
    torch_dist.init_process_group(
        backend=backend,
        init_method='env://',
        rank=int(os.environ['RANK']),
        world_size=int(os.environ['WORLD_SIZE']),
        **kwargs)
    print(f'mmembed: no CUDA device, distributed {launcher} run on CPU with '
          f'the {backend} backend: rank {torch_dist.get_rank()} of world '
          f'size {torch_dist.get_world_size()}',
          flush=True)
    return True


def build_runner(cfg: Config) -> Any:
    """Build the Runner: ``RUNNERS.build`` when ``runner_type`` is set, as in
    mmdet, else ``Runner.from_cfg``."""
    if 'runner_type' in cfg:
        from mmdet.registry import RUNNERS
        return RUNNERS.build(cfg)
    from mmengine.runner import Runner
    return Runner.from_cfg(cfg)
