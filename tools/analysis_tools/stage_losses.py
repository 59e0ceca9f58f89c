# Copyright (c) mmembed authors. All rights reserved.
"""Per-stage losses of query-based learning-check runs (ISTR, QueryInst).

A recurrent set predictor should refine: its later stages' class and box
losses fall below stage 0's. This reads the training scalars every
learning-check run leaves (``<work_dir>/<model>/seed<k>/<timestamp>/
vis_data/scalars.json``), takes the last logged iteration and reports, per
model, each stage's losses (mean over seeds) and the drop from stage 0 to
the last stage (docs/istr.md#small-data-keys).

Example::

    python tools/analysis_tools/stage_losses.py --protocol finetune \\
        --models istr istr_recommended queryinst --seeds 0 1 2 \\
        --out benchmarks/results/istr_finetune_stage_losses.json
"""
import argparse
import glob
import json
import os.path as osp
import re
import statistics
import sys
from typing import Dict, List

STAGE_KEY = re.compile(r'^s(?P<stage>\d+)\.(?P<name>loss_\w+|pos_acc)$')


def last_scalars(run_dir: str) -> Dict[str, float]:
    """The last logged training scalars of one run (the newest timestamp
    folder; lines without a loss are the evaluation's)."""
    files = sorted(glob.glob(osp.join(run_dir, '*', 'vis_data',
                                      'scalars.json')))
    if not files:
        raise FileNotFoundError(f'{run_dir} has no */vis_data/scalars.json:'
                                ' run the learning check first')
    last = None
    with open(files[-1]) as f:
        for line in f:
            record = json.loads(line)
            if 'loss' in record:
                last = record
    if last is None:
        raise ValueError(f'{files[-1]} logs no training loss')
    return last


def per_stage(scalars: Dict[str, float]) -> Dict[str, List[float]]:
    """``{name: [stage 0 value, stage 1 value, ...]}`` from ``s<k>.<name>``
    keys."""
    table: Dict[str, Dict[int, float]] = {}
    for key, value in scalars.items():
        match = STAGE_KEY.match(key)
        if match:
            table.setdefault(match['name'], {})[int(match['stage'])] = value
    return {
        name: [stages[i] for i in sorted(stages)]
        for name, stages in sorted(table.items())
    }


def summarise(runs: List[Dict[str, List[float]]]) -> dict:
    """Mean over runs of each stage's value, and last stage / stage 0."""
    out = {}
    for name in runs[0]:
        stages = [
            round(statistics.mean(run[name][i] for run in runs), 4)
            for i in range(len(runs[0][name]))
        ]
        out[name] = dict(
            stages=stages,
            last_over_first=round(stages[-1] / stages[0], 3)
            if stages[0] else None)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--protocol', choices=('scratch', 'finetune'),
                        default='finetune')
    parser.add_argument('--models', nargs='+', required=True)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--work-dir', default=None)
    parser.add_argument('--out', required=True)
    args = parser.parse_args(argv)
    work_dir = args.work_dir or (
        'work_dirs/learning_check_finetune'
        if args.protocol == 'finetune' else 'work_dirs/learning_check')
    report = dict(
        description='Per-stage training losses at the last logged '
        'iteration, mean over seeds (tools/analysis_tools/stage_losses.py)',
        protocol=args.protocol,
        seeds=args.seeds,
        models={})
    for model in args.models:
        runs = []
        for seed in args.seeds:
            scalars = last_scalars(osp.join(work_dir, model, f'seed{seed}'))
            runs.append(per_stage(scalars))
        report['models'][model] = summarise(runs)
        report['models'][model]['iteration'] = scalars.get('iter')
    with open(args.out, 'w') as f:
        json.dump(report, f, indent=2)
    print(json.dumps(report['models'], indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
