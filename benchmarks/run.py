# Copyright (c) mmembed authors. All rights reserved.
"""mmembed benchmark suite: every figure of docs/benchmarks.md, one command.

    python benchmarks/run.py                 # CPU here; CUDA when available
    python benchmarks/run.py --device cuda   # on a GPU machine
    python benchmarks/run.py --only lovasz latency --quick

Every measurement runs in its own Python process (so peak memory and warm-up
are its own), and mmembed models are always measured next to their mmdet
peers in the same invocation. Results go to ``benchmarks/results/<device>.json``
(re-running overwrites it; results of other devices stay beside it), then
``benchmarks/render.py`` rewrites docs/benchmarks.md and its plots from every
JSON in ``benchmarks/results/``.
"""
import argparse
import json
import os
import os.path as osp
import platform
import subprocess
import sys
import time
from typing import Any, Dict, List

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(HERE)
sys.path.insert(0, HERE)

GROUPS = ('latency', 'scaling', 'train_step', 'lovasz', 'onnx', 'lite0',
          'proposals', 'interleaved')
LATENCY_MODELS = ('embedmask', 'embedmask_v3', 'embedmask_recommended',
                  'blendmask', 'fcos',
                  'condinst', 'mask_rcnn', 'yolact', 'istr', 'istr_v2',
                  'istr_v2_recommended', 'queryinst',
                  'queryinst_separable_roi', 'embedmask_sharpmask', 'mask_rcnn_sharpmask',
                  'embedmask_sharpmask_fpn', 'blendmask_sharpmask_fpn',
                  'mask_rcnn_sharpmask_fpn')
SCALING_MODELS = ('embedmask', 'blendmask', 'condinst', 'mask_rcnn')
# models timed in one process, round by round, against the first (the
# peer): the latency targets whose margin is below the run-to-run drift
INTERLEAVED_SETS = (('queryinst', 'istr', 'istr_v2', 'istr_v2_recommended',
                     'queryinst_separable_roi'),
                    ('blendmask', 'blendmask_sharpmask_fpn'))
TRAIN_MODELS = ('embedmask', 'embedmask_recommended', 'blendmask',
                'condinst', 'mask_rcnn', 'istr', 'istr_v2', 'queryinst')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default=None,
                        help='cpu or cuda (default: cuda if available)')
    parser.add_argument('--only', nargs='+', choices=GROUPS, default=GROUPS,
                        help='measurement groups to run')
    parser.add_argument('--quick', action='store_true',
                        help='fewer repeats and sizes (a smoke run)')
    parser.add_argument('--models', nargs='+', default=None,
                        help='only these models (a partial run; the peers '
                        'a ratio needs must be listed too)')
    parser.add_argument('--short-sides', type=int, nargs='+', default=None,
                        help='latency input sizes (default 800 512)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads per process (default: torch)')
    parser.add_argument('--out', default=None,
                        help='results JSON (default results/<device>.json)')
    parser.add_argument('--no-render', action='store_true',
                        help='do not rewrite docs/benchmarks.md')
    parser.add_argument(
        '--render-only', action='store_true',
        help='measure nothing: recompute the ratios of the existing '
        'results JSON and rewrite docs/benchmarks.md')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    parser.add_argument('--worker-args', help=argparse.SUPPRESS)
    parser.add_argument('--worker-out', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run_one(kind: str, kwargs: Dict[str, Any], threads, log) -> Dict:
    """One measurement in a fresh process."""
    out = osp.join(REPO, 'work_dirs', 'benchmarks', f'{time.time_ns()}.json')
    os.makedirs(osp.dirname(out), exist_ok=True)
    cmd = [sys.executable, __file__, '--worker', kind, '--worker-args',
           json.dumps(kwargs), '--worker-out', out]
    if threads:
        cmd += ['--threads', str(threads)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f'measurement {kind} {kwargs} failed:\n'
                           f'{proc.stderr[-4000:]}')
    with open(out) as f:
        result = json.load(f)
    os.remove(out)
    log(f'{kind:12s} {json.dumps(kwargs):70s} '
        f'{time.perf_counter() - start:6.1f} s')
    return result


def plan(args: argparse.Namespace, device: str) -> List[tuple]:
    from workers import scale_for
    quick = args.quick
    cuda = device.startswith('cuda')
    # CUDA: >= 30 repeats (batch-1 GPU timings are spread by the host); the
    # workers warm every image shape up before timing
    reps = 3 if quick else (30 if cuda else 10)
    scaling_reps = 2 if quick else (30 if cuda else 6)
    jobs = []
    def wanted(names):
        return [n for n in names if args.models is None or n in args.models]

    if 'latency' in args.only:
        sides = args.short_sides or ((800, 512) if not quick else (512, ))
        for short in sides:
            for name in wanted(LATENCY_MODELS):
                if name == 'yolact' and short != sides[0]:
                    continue  # YOLACT runs at its own 550 x 550 once
                jobs.append(('latency', 'inference',
                             dict(name=name, scale=scale_for(short),
                                  device=device, repeats=reps)))
            if wanted(['embedmask']):
                jobs.append(('latency', 'inference',
                             dict(name='embedmask', scale=scale_for(short),
                                  device=device, repeats=reps,
                                  box_only=True)))
    if 'interleaved' in args.only:
        for names in INTERLEAVED_SETS:
            peer, names = names[0], wanted(names)
            if peer in names and len(names) > 1:
                jobs.append(('interleaved', 'interleaved',
                             dict(names=names, peer=peer,
                                  scale=scale_for((args.short_sides
                                                   or (800, ))[0]),
                                  device=device,
                                  rounds=4 if quick else 15)))
    if 'scaling' in args.only:
        dets = (10, 100) if quick else (10, 50, 100, 300)
        sides = (512, ) if quick else (512, 800, 1333)
        for name in wanted(SCALING_MODELS):
            for num in dets:
                jobs.append(('scaling_n', 'mask_scaling',
                             dict(name=name, num_dets=num,
                                  short_side=sides[-1] if quick else 800,
                                  device=device, repeats=scaling_reps)))
            for side in sides:
                jobs.append(('scaling_size', 'mask_scaling',
                             dict(name=name, num_dets=100, short_side=side,
                                  device=device, repeats=scaling_reps)))
    if 'train_step' in args.only:
        for name in wanted(TRAIN_MODELS):
            jobs.append(('train_step', 'train_step',
                         dict(name=name,
                              scale=scale_for(512 if quick else 800),
                              device=device, warmup=1 if quick else 2,
                              repeats=2 if quick else 5)))
    if 'lovasz' in args.only:
        for num in (1, 8, 64):
            for height, width in ((128, 128), (200, 336)):
                if quick and height > 128:
                    continue
                jobs.append(('lovasz', 'lovasz',
                             dict(num_inst=num, height=height, width=width,
                                  device=device, repeats=2 if quick else 5)))
    if 'lite0' in args.only:
        # the Lite0 configs at their own 640-pixel input, next to their R-50
        # twins and the mmdet peers on Lite0 at the same size
        from workers import LITE0_PAIRS, LITE0_SHORT_SIDE
        names = []
        for lite, (twin, peer) in LITE0_PAIRS.items():
            names += [n for n in (lite, twin, peer) if n not in names]
        for name in wanted(names):
            jobs.append(('lite0', 'inference',
                         dict(name=name, scale=scale_for(LITE0_SHORT_SIDE),
                              device=device, repeats=reps)))
    if 'proposals' in args.only:
        # the segment-proposal model: SharpMask against plain DeepMask, the
        # same trunk and pyramid, full coco128 images as the configs test
        # them (no resize); quick: 2 images instead of 5
        from workers import PROPOSAL_MODELS
        for name in wanted(PROPOSAL_MODELS):
            jobs.append(('proposals', 'proposals',
                         dict(name=name, device=device, repeats=reps,
                              num_images=2 if quick else 5)))
    if 'onnx' in args.only and not cuda:
        # ONNX Runtime's CPU provider against PyTorch on the same CPU
        jobs.append(('onnx', 'onnx',
                     dict(config='configs/embedmask/embedmask_r50_fpn_1x_'
                          'coco.py', shape=[800, 1344],
                          repeats=2 if quick else 5)))
    return jobs


def machine_info(device: str, threads) -> Dict[str, Any]:
    import mmcv
    import mmdet
    import mmengine
    import torch

    import mmembed
    info = dict(
        device=device,
        processor=platform.processor() or platform.machine(),
        cpu_count=os.cpu_count(),
        platform=platform.platform(),
        python=platform.python_version(),
        torch=torch.__version__,
        mmcv=mmcv.__version__,
        mmengine=mmengine.__version__,
        mmdet=mmdet.__version__,
        mmembed=mmembed.__version__,
        torch_threads=threads or torch.get_num_threads())
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    info['cpu_model'] = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    if device.startswith('cuda'):
        info['gpu'] = torch.cuda.get_device_name(0)
        info['cuda'] = torch.version.cuda
    return info


def _query_ratios(find, short: int) -> Dict[str, float]:
    """ISTR v1 and v2 against their peer QueryInst (same queries, 6
    stages)."""
    row: Dict[str, float] = {}
    for peer_name in ('queryinst', 'queryinst_separable_roi'):
        peer = find(peer_name, short)
        for name in ('istr', 'istr_v2', 'istr_v2_recommended'):
            istr = find(name, short)
            if not (istr and peer):
                continue
            row[f'{name}_over_{peer_name}'] = (
                istr['median_ms'] / peer['median_ms'])
            ours = istr.get('mask_stage', {}).get('median_ms')
            theirs = peer.get('mask_stage', {}).get('median_ms')
            if ours and theirs:
                row[f'{name}_mask_stage_over_{peer_name}_mask_stage'] = \
                    ours / theirs
    return row


def _blendmask_ratios(find, short: int) -> Dict[str, float]:
    """BlendMask against CondInst, Mask R-CNN and FCOS."""
    row: Dict[str, float] = {}
    blend = find('blendmask', short)
    if not blend:
        return row
    for peer in ('condinst', 'mask_rcnn'):
        other = find(peer, short)
        if other:
            row[f'blendmask_over_{peer}'] = (blend['median_ms'] /
                                             other['median_ms'])
    blend_mask = blend.get('mask_stage', {}).get('median_ms')
    fcos = find('fcos', short)
    if blend_mask and fcos:
        row['blendmask_mask_stage_over_fcos'] = (blend_mask /
                                                 fcos['median_ms'])
    return row


def _neck_ratios(find, short: int) -> Dict[str, float]:
    """SharpMask against FPN in the same detector, latency and peak memory
    of the whole test_step: the neck that replaces FPN (``_sharpmask``)
    and SharpMaskFPN, FPN plus the mask-only path (``_sharpmask_fpn``)."""
    row: Dict[str, float] = {}
    pairs = (('embedmask', 'sharpmask'), ('mask_rcnn', 'sharpmask'),
             ('embedmask', 'sharpmask_fpn'), ('blendmask', 'sharpmask_fpn'),
             ('mask_rcnn', 'sharpmask_fpn'))
    for base, variant in pairs:
        neck, fpn = find(f'{base}_{variant}', short), find(base, short)
        if neck and fpn:
            row[f'{base}_{variant}_over_fpn'] = (neck['median_ms'] /
                                                 fpn['median_ms'])
            row[f'{base}_{variant}_over_fpn_memory'] = (
                neck['peak_memory_mib'] / fpn['peak_memory_mib'])
    return row


def _proposal_ratios(results: Dict[str, List[dict]]) -> Dict[str, float]:
    """SharpMask proposals against plain DeepMask (same trunk, pyramid and
    images): time per image, peak memory and the mask stage (SharpMask's
    refinement vs DeepMask's mask branch)."""
    rows = {r['model']: r for r in results.get('proposals', [])}
    sharp = rows.get('sharpmask_proposals')
    deep = rows.get('deepmask_proposals')
    if not (sharp and deep):
        return {}
    row = dict(
        sharpmask_over_deepmask=sharp['median_ms'] / deep['median_ms'],
        sharpmask_over_deepmask_memory=(sharp['peak_memory_mib'] /
                                        deep['peak_memory_mib']))
    ours = sharp.get('mask_stage', {}).get('median_ms')
    theirs = deep.get('mask_stage', {}).get('median_ms')
    if ours and theirs:
        row['sharpmask_mask_stage_over_deepmask_mask_stage'] = ours / theirs
    return row


def summarise(results: Dict[str, List[dict]]) -> Dict[str, Any]:
    """Ratios against the peers measured in the same run."""
    summary: Dict[str, Any] = {}
    latency = results.get('latency', [])

    def find(name, short, box_only=False):
        for r in latency:
            if (r['model'] == name and r['box_only'] == box_only
                    and (name == 'yolact' or r['scale'][1] == short)):
                return r
        return None

    for short in sorted({r['scale'][1] for r in latency
                         if r['model'] != 'yolact'}):
        row = _query_ratios(find, short)
        row.update(_blendmask_ratios(find, short))
        row.update(_neck_ratios(find, short))
        ours = find('embedmask', short)
        if ours is None:
            if row:
                summary[f'latency_{short}'] = row
            continue
        for peer in ('fcos', 'condinst', 'mask_rcnn', 'yolact'):
            other = find(peer, short)
            if other:
                row[f'embedmask_over_{peer}'] = (ours['median_ms'] /
                                                 other['median_ms'])
        box_only, fcos = find('embedmask', short, True), find('fcos', short)
        mask_ms = ours.get('mask_stage', {}).get('median_ms')
        if mask_ms:
            # timed inside the same test_step calls: free of the
            # process-to-process noise of the two differences below
            row['mask_stage_over_rest_same_process'] = mask_ms / (
                ours['median_ms'] - mask_ms)
            if fcos:
                row['mask_stage_over_fcos'] = mask_ms / fcos['median_ms']
        if box_only:
            row['mask_stage_overhead_vs_own_box_only'] = (
                ours['median_ms'] - box_only['median_ms']) / box_only[
                    'median_ms']
        if fcos:
            row['mask_stage_overhead_vs_fcos'] = (
                ours['median_ms'] - fcos['median_ms']) / fcos['median_ms']
        condinst = find('condinst', short)
        their_mask = (condinst or {}).get('mask_stage', {}).get('median_ms')
        if mask_ms and their_mask:
            row['mask_stage_over_condinst_mask_stage'] = mask_ms / their_mask
        paste_ms = ours.get('mask_paste', {}).get('median_ms')
        if paste_ms is not None:
            row['embedmask_mask_paste_ms'] = paste_ms
        if 'preprocess_share' in ours:
            row['embedmask_preprocess_share'] = ours['preprocess_share']
        v3 = find('embedmask_v3', short)
        if v3:
            row['embedmask_v3_over_embedmask'] = (v3['median_ms'] /
                                                  ours['median_ms'])
        recommended = find('embedmask_recommended', short)
        if recommended:
            row['embedmask_recommended_over_embedmask'] = (
                recommended['median_ms'] / ours['median_ms'])
            if condinst:
                row['embedmask_recommended_over_condinst'] = (
                    recommended['median_ms'] / condinst['median_ms'])
        summary[f'latency_{short}'] = row
    lite0 = {r['model']: r for r in results.get('lite0', [])}
    if lite0:
        from workers import LITE0_PAIRS
        row = {}
        for lite, (twin, peer) in LITE0_PAIRS.items():
            for other in (twin, peer):
                if lite in lite0 and other in lite0:
                    row[f'{lite}_over_{other}'] = (
                        lite0[lite]['median_ms'] / lite0[other]['median_ms'])
        summary['lite0_latency_640'] = row
    train = {r['model']: r for r in results.get('train_step', [])}
    for name in ('istr', 'istr_v2'):
        if name in train and 'queryinst' in train:
            summary[f'train_time_{name}_over_queryinst'] = (
                train[name]['median_s'] / train['queryinst']['median_s'])
            summary[f'train_memory_{name}_over_queryinst'] = (
                train[name]['peak_memory_mib'] /
                train['queryinst']['peak_memory_mib'])
    if 'blendmask' in train and 'condinst' in train:
        summary['train_time_blendmask_over_condinst'] = (
            train['blendmask']['median_s'] / train['condinst']['median_s'])
    if 'embedmask_recommended' in train:
        for peer in ('embedmask', 'condinst'):
            if peer in train:
                summary[f'train_time_embedmask_recommended_over_{peer}'] = (
                    train['embedmask_recommended']['median_s'] /
                    train[peer]['median_s'])
    if 'embedmask' in train:
        for peer in ('condinst', 'mask_rcnn'):
            if peer in train:
                summary[f'train_time_embedmask_over_{peer}'] = (
                    train['embedmask']['median_s'] / train[peer]['median_s'])
                summary[f'train_memory_embedmask_over_{peer}'] = (
                    train['embedmask']['peak_memory_mib'] /
                    train[peer]['peak_memory_mib'])
    proposals = _proposal_ratios(results)
    if proposals:
        summary['proposals'] = proposals
    for run in results.get('interleaved', []):
        # median over rounds of each round's time over the peer's
        summary.setdefault('interleaved', {}).update({
            f"{name}_over_{run['peer']}": row['over_peer']
            for name, row in run['models'].items() if name != run['peer']
        })
    for onnx in results.get('onnx', []):
        for graph, row in onnx.get('graphs', {}).items():
            summary[f'onnxruntime_over_pytorch_{graph}'] = row[
                'ratio_ort_over_pytorch']
    lovasz = results.get('lovasz', [])
    if lovasz:
        summary['lovasz_speedup'] = {
            f"{r['num_inst']}x{r['height']}x{r['width']}":
            r['speedup_forward_backward']
            for r in lovasz
        }
    return summary


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        from workers import run_worker
        result = run_worker(args.worker, json.loads(args.worker_args),
                            args.threads)
        with open(args.worker_out, 'w') as f:
            json.dump(result, f)
        return 0

    import torch
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise SystemExit('--device cuda asked for, but torch sees no GPU')
    tag = 'cpu' if device == 'cpu' else 'cuda-' + torch.cuda.get_device_name(
        0).replace(' ', '_')
    out = args.out or osp.join(HERE, 'results', f'{tag}.json')

    def log(msg):
        print(f'[bench] {msg}', flush=True)

    if args.render_only:
        with open(out) as f:
            report = json.load(f)
        report['summary'] = summarise(report['results'])
        with open(out, 'w') as f:
            json.dump(report, f, indent=1)
        from render import render
        render()
        log(f'recomputed ratios in {out}; rewrote docs/benchmarks.md')
        return 0
    jobs = plan(args, device)
    log(f'{len(jobs)} measurements on {device}')
    results: Dict[str, List[dict]] = {}
    start = time.perf_counter()
    for group, kind, kwargs in jobs:
        results.setdefault(group, []).append(
            run_one(kind, kwargs, args.threads, log))
    report = dict(
        machine=machine_info(device, args.threads),
        quick=args.quick,
        suite_seconds=round(time.perf_counter() - start, 1),
        results=results,
        summary=summarise(results))
    os.makedirs(osp.dirname(out), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(report, f, indent=1)
    log(f'wrote {out}')
    if not args.no_render:
        from render import render
        render()
        log('rewrote docs/benchmarks.md')
    return 0


if __name__ == '__main__':
    sys.exit(main())
