# Copyright (c) mmembed authors. All rights reserved.
"""The measured half of the reliability suite (docs/reliability.md): the
runs too long for ``make test``.

    python tools/analysis_tools/reliability_check.py            # both parts
    python tools/analysis_tools/reliability_check.py --only amp
    python tools/analysis_tools/reliability_check.py --only load

``amp``: every small config of the reliability suite trains ``--amp-iters``
(default 50) iterations on the synthetic set (``data/synthetic``, made by
``tools/misc/make_synthetic_coco.py`` when missing) three times: float32
with seed 0, float32 with seed 1 and bfloat16 CPU autocast
(``CPUAutocastOptimWrapper``) with seed 0; each is evaluated on the
synthetic val split in float32. The bf16 run must have finite losses at
every iteration; its AP is compared with the seed-0 float32 run, and the
tolerance is the float32 seed-to-seed difference (at least 0.02 AP): bf16
is "the same" when it differs from float32 by no more than float32 differs
from itself.

``load``: a ``--load-images`` (default 1000) image synthetic set with up to
``--load-max-objects`` (default 100) instances an image trains one epoch of
the small EmbedMask config with ``tools/train.py``, once per ``--load-caps``
value of ``max_masks_to_train`` (default: no cap, and 32; the mask loss
takes at most that many GTs of an image, which bounds its memory whatever
the crowd), reporting the peak resident memory of each training process;
then ``tools/test.py`` runs inference over the same images with the last
checkpoint and the throughput is reported.

Each run is its own process (peak memory is its own). Results:
``benchmarks/results/reliability_cpu.json`` (``--out``).
"""
import argparse
import json
import math
import os
import os.path as osp
import platform
import resource
import subprocess
import sys
import time
from typing import Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HERE = osp.dirname(osp.abspath(__file__))
SYNTHETIC = 'data/synthetic'
SYNTHETIC_BASE = 'configs/_base_/datasets/synthetic_instance.py'
NUM_SYNTHETIC_CLASSES = 4

# The models of tests/robustness (MODEL_SPECS) at their real small sizes:
# name -> (config, dotted paths of num_classes). Configs written for
# fruits_nuts are moved onto the synthetic set.
AMP_MODELS: Dict[str, tuple] = {
    'embedmask_paper': ('configs/embedmask/embedmask_r18_fpn_synthetic.py',
                        ('bbox_head', )),
    'embedmask_v3': ('configs/embedmask/embedmask_r18_fpn_v3_fruits_nuts.py',
                     ('bbox_head', )),
    'blendmask': ('configs/blendmask/blendmask_r18_fpn_synthetic.py',
                  ('bbox_head', 'mask_head')),
    'embedmask_sharpmask':
    ('configs/sharpmask/embedmask_r18_sharpmask_fruits_nuts.py',
     ('bbox_head', )),
    'istr': ('configs/istr/istr_r18_fpn_synthetic.py',
             ('roi_head.bbox_head', )),
}
LOAD_CONFIG = 'configs/embedmask/embedmask_r18_fpn_synthetic.py'
AP_KEYS = ('bbox_mAP', 'segm_mAP')


def parse_args(argv=None) -> argparse.Namespace:
    from mmembed.utils.cli_utils import doc_summary
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument('--only', nargs='+', choices=('amp', 'load'),
                        default=('amp', 'load'))
    parser.add_argument('--models', nargs='+', default=list(AMP_MODELS),
                        choices=list(AMP_MODELS))
    parser.add_argument('--amp-iters', type=int, default=50)
    parser.add_argument('--load-images', type=int, default=1000)
    parser.add_argument('--load-max-objects', type=int, default=100)
    parser.add_argument('--load-img-size', type=int, default=512)
    parser.add_argument('--load-shape-scale', type=float, default=0.3)
    parser.add_argument('--load-caps', type=int, nargs='+', default=(-1, 32),
                        help='max_masks_to_train values to train with (-1: '
                        'no cap); the last run is tested')
    parser.add_argument('--work-dir', default='work_dirs/reliability')
    parser.add_argument('--synthetic-dir', default=SYNTHETIC,
                        help='the synthetic set of the amp part (made when '
                        'missing; the ISTR config fits its codec from '
                        f'{SYNTHETIC})')
    parser.add_argument('--out',
                        default='benchmarks/results/reliability_cpu.json')
    # internal: one training run in this process
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    parser.add_argument('--worker-args', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --------------------------------------------------------------------- #
# data
# --------------------------------------------------------------------- #
def make_synthetic(out_dir: str, extra: Optional[List[str]] = None) -> None:
    """``tools/misc/make_synthetic_coco.py`` into ``out_dir`` unless its
    annotations are there already."""
    if osp.isfile(osp.join(out_dir, 'annotations', 'train.json')):
        return
    cmd = [sys.executable, osp.join(REPO, 'tools/misc/make_synthetic_coco.py'),
           '--out-dir', out_dir, *(extra or [])]
    print(f'[reliability_check] {" ".join(cmd)}', flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def instance_stats(ann_file: str) -> dict:
    with open(ann_file) as f:
        data = json.load(f)
    counts: Dict[int, int] = {img['id']: 0 for img in data['images']}
    for ann in data['annotations']:
        counts[ann['image_id']] += 1
    values = sorted(counts.values())
    return dict(images=len(values), instances=sum(values),
                max_per_image=values[-1],
                mean_per_image=round(sum(values) / len(values), 1),
                median_per_image=values[len(values) // 2])


# --------------------------------------------------------------------- #
# amp: one run per process
# --------------------------------------------------------------------- #
def amp_config(name: str, iters: int, seed: int, precision: str,
               work_dir: str, synthetic: str = SYNTHETIC):
    """The model's small config on the synthetic set, ``iters`` iterations,
    no validation, float32 or bf16 autocast."""
    from mmengine.config import Config
    config, class_keys = AMP_MODELS[name]
    cfg = Config.fromfile(osp.join(REPO, config))
    data = Config.fromfile(osp.join(REPO, SYNTHETIC_BASE))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = data[key]
        loader.dataset.data_root = synthetic + '/'
        loader.num_workers = 0
        loader.persistent_workers = False
        cfg[key] = loader
    cfg.train_dataloader.batch_size = 2
    evaluator = dict(type='CocoMetric', metric=['bbox', 'segm'],
                     format_only=False,
                     ann_file=synthetic + '/annotations/val.json')
    cfg.val_evaluator = cfg.test_evaluator = evaluator
    for key in class_keys:
        node = cfg.model
        for part in key.split('.'):
            node = node[part]
        node.num_classes = NUM_SYNTHETIC_CLASSES
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters,
                         val_interval=iters + 1)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
             end=min(20, iters))
    ]
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=10)
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False, interval=iters)
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='StopOnNonFiniteLossHook')
    ]
    cfg.log_processor = dict(by_epoch=False, window_size=1)
    if precision == 'bf16':
        wrapper = dict(cfg.optim_wrapper)
        wrapper.update(type='CPUAutocastOptimWrapper', dtype='bfloat16')
        cfg.optim_wrapper = wrapper
    cfg.randomness = dict(seed=seed)
    cfg.work_dir = work_dir
    cfg.log_level = 'WARNING'
    return cfg


def amp_worker(args: dict) -> dict:
    import torch
    from mmengine.runner import Runner

    import mmembed  # noqa: F401
    from mmembed.engine import NonFiniteLossError
    cfg = amp_config(args['name'], args['iters'], args['seed'],
                     args['precision'], args['work_dir'], args['synthetic'])
    runner = Runner.from_cfg(cfg)
    result = dict(name=args['name'], precision=args['precision'],
                  seed=args['seed'], iterations=args['iters'])
    start = time.perf_counter()
    try:
        runner.train()
        result['stopped'] = None
    except NonFiniteLossError as err:
        result['stopped'] = str(err).splitlines()[0]
    result['train_seconds'] = round(time.perf_counter() - start, 1)
    losses = [float(v) for v in
              runner.message_hub.get_scalar('train/loss').data[0]]
    result['losses'] = [round(v, 5) for v in losses]
    result['losses_finite'] = bool(all(math.isfinite(v) for v in losses))
    result['weights_finite'] = bool(all(
        torch.isfinite(p).all() for p in runner.model.parameters()))
    if result['stopped'] is None:
        metrics = runner.test()
        result.update({k: metrics.get(f'coco/{k}') for k in AP_KEYS})
    return result


# --------------------------------------------------------------------- #
# load
# --------------------------------------------------------------------- #
LOAD_CONFIG_TEXT = '''
_base_ = {base!r}
data_root = {root!r}
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root))
# inference over the same 1000 crowded images
test_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file='annotations/train.json',
                 data_prefix=dict(img='train/')))
test_evaluator = dict(ann_file=data_root + 'annotations/train.json')
val_dataloader = None
val_cfg = None
val_evaluator = None
train_cfg = dict(max_epochs=1, val_interval=2)
default_hooks = dict(logger=dict(interval=50),
                     checkpoint=dict(interval=1, max_keep_ckpts=1))
custom_hooks = [dict(type='StopOnNonFiniteLossHook')]
'''


def _timed_child(cmd: List[str]) -> dict:
    """Run ``cmd``; its wall time and peak resident memory. Called once per
    ``--worker`` process, so ``RUSAGE_CHILDREN`` holds that one child."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f'{" ".join(cmd)} failed:\n'
                           f'{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return dict(seconds=round(seconds, 1), peak_rss_mib=round(peak, 1),
                stdout=proc.stdout, stderr=proc.stderr)


def load_worker(args: dict) -> dict:
    """One tool run (train or test) as a child of this worker process, so
    ``RUSAGE_CHILDREN`` holds that run only."""
    out = _timed_child(args['cmd'])
    return dict(seconds=out['seconds'], peak_rss_mib=out['peak_rss_mib'],
                log_tail=(out['stdout'] + out['stderr'])[-4000:])


def run_load(args: argparse.Namespace) -> dict:
    root = osp.join(args.work_dir, 'crowded')
    make_synthetic(root, [
        '--num-train', str(args.load_images), '--num-val', '1',
        '--max-objects', str(args.load_max_objects),
        '--img-size', str(args.load_img_size), '--seed', '1',
        '--shape-scale', str(args.load_shape_scale)
    ])
    stats = instance_stats(osp.join(root, 'annotations', 'train.json'))
    config = osp.join(args.work_dir, 'load_embedmask.py')
    with open(osp.join(REPO, config), 'w') as f:
        f.write(LOAD_CONFIG_TEXT.format(base=osp.join(REPO, LOAD_CONFIG),
                                        root=osp.abspath(
                                            osp.join(REPO, root)) + '/'))
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, config))
    iters = math.ceil(stats['images'] / cfg.train_dataloader.batch_size)
    trains = {}
    for cap in args.load_caps:
        work = osp.join(args.work_dir, f'load_run_cap{cap}')
        print(f'[reliability_check] load: one epoch, max_masks_to_train='
              f'{cap}', flush=True)
        run = spawn('load', dict(cmd=[
            sys.executable, 'tools/train.py', config, '--work-dir', work,
            '--cfg-options', f'model.mask_head.max_masks_to_train={cap}'
        ]))
        trains[str(cap)] = dict(
            epochs=1, iterations=iters, seconds=run['seconds'],
            seconds_per_iter=round(run['seconds'] / iters, 3),
            peak_rss_mib=run['peak_rss_mib'])
    with open(osp.join(REPO, work, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    print('[reliability_check] load: tools/test.py over the same images',
          flush=True)
    test = spawn('load', dict(cmd=[
        sys.executable, 'tools/test.py', config, checkpoint, '--work-dir',
        work
    ]))
    return dict(
        config=LOAD_CONFIG,
        data=dict(stats, img_size=args.load_img_size,
                  generator_max_objects=args.load_max_objects,
                  shape_scale=args.load_shape_scale),
        train_by_max_masks_to_train=trains,
        test=dict(images=stats['images'], checkpoint=checkpoint,
                  seconds=test['seconds'],
                  images_per_second=round(
                      stats['images'] / test['seconds'], 2),
                  peak_rss_mib=test['peak_rss_mib'],
                  metrics_tail=[
                      line.split(' - ')[-1]
                      for line in test['log_tail'].splitlines()
                      if 'coco/' in line
                  ][-1:]))


# --------------------------------------------------------------------- #
# driver
# --------------------------------------------------------------------- #
def spawn(kind: str, worker_args: dict) -> dict:
    """Run one worker in a fresh process; its JSON result."""
    out = osp.join(REPO, 'work_dirs', f'.reliability_{os.getpid()}.json')
    cmd = [sys.executable, osp.abspath(__file__), '--worker', kind,
           '--worker-args', json.dumps(dict(worker_args, result=out))]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f'worker {kind} {worker_args} failed:\n'
                           f'{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
    with open(out) as f:
        result = json.load(f)
    os.remove(out)
    return result


def summarize_amp(runs: List[dict]) -> dict:
    summary = {}
    for name in dict.fromkeys(r['name'] for r in runs):
        mine = {(r['precision'], r['seed']): r for r in runs
                if r['name'] == name}
        fp32, fp32_b, bf16 = (mine.get(('fp32', 0)), mine.get(('fp32', 1)),
                              mine.get(('bf16', 0)))
        row = dict(bf16_losses_finite=bf16['losses_finite'],
                   bf16_weights_finite=bf16['weights_finite'],
                   bf16_stopped=bf16['stopped'])
        for key in AP_KEYS:
            if None in (fp32.get(key), fp32_b.get(key), bf16.get(key)):
                continue
            spread = abs(fp32[key] - fp32_b[key])
            tolerance = max(0.02, spread)
            diff = bf16[key] - fp32[key]
            row[key] = dict(fp32_seed0=fp32[key], fp32_seed1=fp32_b[key],
                            bf16_seed0=bf16[key],
                            bf16_minus_fp32=round(diff, 4),
                            tolerance=round(tolerance, 4),
                            within_tolerance=abs(diff) <= tolerance)
        # loss curves: the last 10 iterations, bf16 vs fp32 (same seed)
        tail = 10
        a, b = fp32['losses'][-tail:], bf16['losses'][-tail:]
        if a and b and bf16['losses_finite']:
            row['last10_mean_loss_fp32'] = round(sum(a) / len(a), 4)
            row['last10_mean_loss_bf16'] = round(sum(b) / len(b), 4)
        summary[name] = row
    return summary


def machine() -> dict:
    import mmcv
    import mmdet
    import torch
    return dict(processor=platform.machine(), cpus=os.cpu_count(),
                python=platform.python_version(), torch=torch.__version__,
                mmcv=mmcv.__version__, mmdet=mmdet.__version__,
                torch_threads=torch.get_num_threads())


def main(argv=None) -> int:
    args = parse_args(argv)
    os.chdir(REPO)  # configs and data paths are relative to the repo
    if args.worker:
        worker_args = json.loads(args.worker_args)
        fn = {'amp': amp_worker, 'load': load_worker}[args.worker]
        result = fn(worker_args)
        with open(worker_args['result'], 'w') as f:
            json.dump(result, f)
        return 0
    os.makedirs(osp.join(REPO, args.work_dir), exist_ok=True)
    out_path = osp.join(REPO, args.out)
    report: dict = {}
    if osp.isfile(out_path):
        with open(out_path) as f:
            report = json.load(f)
    report['machine'] = machine()
    if 'amp' in args.only:
        make_synthetic(args.synthetic_dir)
        if 'istr' in args.models:
            sys.path.insert(0, HERE)
            from learning_check import ensure_codec
            ensure_codec(osp.join(REPO, AMP_MODELS['istr'][0]))
        runs = []
        for name in args.models:
            for precision, seed in (('fp32', 0), ('fp32', 1), ('bf16', 0)):
                work = osp.join(args.work_dir, 'amp', name,
                                f'{precision}_seed{seed}')
                print(f'[reliability_check] {name} {precision} seed {seed}',
                      flush=True)
                runs.append(spawn('amp', dict(
                    name=name, iters=args.amp_iters, seed=seed,
                    precision=precision, work_dir=work,
                    synthetic=args.synthetic_dir)))
        report['amp'] = dict(
            iterations=args.amp_iters, data=args.synthetic_dir,
            summary=summarize_amp(runs), runs=runs)
    if 'load' in args.only:
        print('[reliability_check] load', flush=True)
        report['load'] = run_load(args)
    os.makedirs(osp.dirname(out_path), exist_ok=True)
    with open(out_path, 'w') as f:
        json.dump(report, f, indent=1)
    print(json.dumps({k: v.get('summary', v) if isinstance(v, dict) else v
                      for k, v in report.items() if k != 'machine'},
                     indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
