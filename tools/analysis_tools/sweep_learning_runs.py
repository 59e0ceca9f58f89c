# Copyright (c) mmembed authors. All rights reserved.
"""Re-evaluate the runs of a learning check under other test_cfg values.

Every (model, seed) checkpoint that ``learning_check.py`` left in its work
directory is evaluated on its config's test set (the held-out photos for
``--protocol finetune``) once per value of one ``model.test_cfg`` key, with
other keys optionally held fixed; the JSON gives, per model and value, the
segm AP of every seed, their mean and standard deviation. Training is not
repeated, so a test-time choice costs seconds per run.

Example (the EmbedMask mask paste, docs/embedmask.md)::

    python tools/analysis_tools/sweep_learning_runs.py --protocol finetune \\
        --models embedmask embedmask_maskw2 --seeds 0 1 \\
        --key mask_interp --values logprob logit \\
        --out benchmarks/results/embedmask_finetune_interp_sweep.json
"""
import argparse
import json
import os.path as osp
import statistics
import sys
from typing import Any, Dict, List

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from learning_check import FINETUNE_MODELS, MODELS  # noqa: E402
from test_cfg_sweep import parse_sets, parse_value, sweep  # noqa: E402

METRICS = ('segm_mAP', 'bbox_mAP')


def run_checkpoint(run_dir: str) -> str:
    """The checkpoint a learning-check run left (``last_checkpoint``)."""
    pointer = osp.join(run_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        raise FileNotFoundError(
            f'{run_dir} has no last_checkpoint: run the learning check for '
            'this model and seed first')
    with open(pointer) as f:
        path = f.read().strip()
    if not osp.isfile(path):
        raise FileNotFoundError(f'{pointer} names {path}, which is missing')
    return path


def summarise(values: List[float]) -> Dict[str, Any]:
    return dict(
        mean=round(statistics.mean(values), 4),
        std=round(statistics.stdev(values), 4) if len(values) > 1 else None,
        runs=[round(v, 4) for v in values])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--protocol', choices=('scratch', 'finetune'),
                        default='finetune')
    parser.add_argument('--models', nargs='+', required=True)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--work-dir', default=None,
                        help='the learning check\'s work directory')
    parser.add_argument('--key', required=True)
    parser.add_argument('--values', nargs='+', required=True,
                        type=parse_value)
    parser.add_argument('--set', nargs='+', default=[], metavar='KEY=VALUE')
    parser.add_argument(
        '--boundary-ap', action='store_true',
        help='evaluate with BoundaryCocoMetric (as learning_check.py '
        '--boundary-ap) and report boundary AP beside segm and bbox AP')
    parser.add_argument('--out', required=True)
    args = parser.parse_args(argv)
    configs = FINETUNE_MODELS if args.protocol == 'finetune' else MODELS
    unknown = [m for m in args.models if m not in configs]
    if unknown:
        parser.error(f'unknown {args.protocol} models {unknown}; known: '
                     f'{sorted(configs)}')
    fixed = parse_sets(parser, args.set)
    work_dir = args.work_dir or (
        'work_dirs/learning_check_finetune'
        if args.protocol == 'finetune' else 'work_dirs/learning_check')
    metric_names = METRICS + (('boundary_mAP', ) if args.boundary_ap else
                              ())
    rows = []
    for model in args.models:
        per_value: Dict[str, Dict[str, List[float]]] = {}
        for seed in args.seeds:
            checkpoint = run_checkpoint(
                osp.join(work_dir, model, f'seed{seed}'))
            results = sweep(
                configs[model], checkpoint, args.key, args.values, fixed,
                'BoundaryCocoMetric' if args.boundary_ap else None)
            for value, metrics in results.items():
                store = per_value.setdefault(value,
                                             {m: [] for m in metric_names})
                for metric in metric_names:
                    store[metric].append(metrics[f'coco/{metric}'])
        for value in args.values:
            store = per_value[str(value)]
            # a dot-free id for the docs' figure spans (dot = path step)
            row_id = f'{model}__{value}'.replace('.', 'p')
            rows.append(
                dict(id=row_id, model=model, value=value,
                     **{m: summarise(store[m]) for m in metric_names}))
    out = dict(
        description=f'{args.protocol} learning-check runs re-evaluated on '
        f'their test set with other test_cfg.{args.key} values '
        '(tools/analysis_tools/sweep_learning_runs.py)',
        key=args.key, fixed=fixed, seeds=args.seeds, work_dir=work_dir,
        rows=rows)
    with open(args.out, 'w') as f:
        json.dump(out, f, indent=2)
    for row in rows:
        print(f"{row['model']:24s} {args.key}={row['value']}: segm "
              f"{row['segm_mAP']['mean']:.3f} +- {row['segm_mAP']['std']}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
