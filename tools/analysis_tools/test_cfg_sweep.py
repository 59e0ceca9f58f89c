# Copyright (c) mmembed authors. All rights reserved.
"""Evaluate one trained checkpoint under several ``test_cfg`` values
without retraining: the test-time part of an ablation (EmbedMask's
``mask_thr`` and ``mask_box_expand``, any head's score threshold...).

    python tools/analysis_tools/test_cfg_sweep.py CONFIG CKPT \
        --key mask_thr --values 0.3 0.4 0.5 0.6 --out sweep.json

The model and the data are loaded once; for each value the config's
``model.test_cfg.<key>`` is set and the test set evaluated with the
config's ``test_evaluator``. The JSON holds every metric per value.
"""
import argparse
import ast
import json
import sys
from typing import Any, Dict, List, Optional


def parse_value(text: str) -> Any:
    """'0.4' -> 0.4, '2' -> 2, 'none' -> None, 'true' / 'false' -> a bool,
    '(2,3,4,5)' / '[1,2]' -> a tuple, anything else as text."""
    if text.lower() == 'none':
        return None
    if text.lower() in ('true', 'false'):
        return text.lower() == 'true'
    if text[:1] in '([' and text[-1:] in ')]':
        try:
            return tuple(ast.literal_eval(text))
        except (ValueError, SyntaxError, TypeError):
            pass
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_sets(parser: argparse.ArgumentParser,
               items: List[str]) -> Dict[str, Any]:
    """``['mask_interp=logit']`` -> ``{'mask_interp': 'logit'}``; a usage
    error (exit 2) names an item without ``=``."""
    fixed = {}
    for item in items:
        name, sep, text = item.partition('=')
        if not sep or not name:
            parser.error(f'--set takes KEY=VALUE, got {item!r}')
        fixed[name] = parse_value(text)
    return fixed


def sweep(config: str, checkpoint: str, key: str, values: List[Any],
          fixed: Optional[Dict[str, Any]] = None,
          evaluator_type: Optional[str] = None
          ) -> Dict[str, Dict[str, float]]:
    """``{str(value): metrics}`` of ``checkpoint`` with
    ``model.test_cfg[key] = value`` for each value (and the ``fixed``
    test_cfg values throughout). ``evaluator_type`` replaces the type of
    the config's ``test_evaluator`` (e.g. ``'BoundaryCocoMetric'``, same
    arguments).

    A key may be absent from the config when a head of the model declares
    it (``TEST_CFG_KEYS``), e.g. an optional key with a default.
    """
    from mmengine.config import Config
    from mmengine.runner import Runner

    import mmembed  # noqa: F401
    cfg = Config.fromfile(config)
    cfg.work_dir = '/tmp/test_cfg_sweep'
    cfg.log_level = 'WARNING'
    cfg.load_from = checkpoint
    if evaluator_type is not None:
        cfg.test_evaluator = dict(cfg.test_evaluator, type=evaluator_type)
    fixed = dict(fixed or {})
    runner = Runner.from_cfg(cfg)
    model = runner.model

    def readers(name: str) -> list:
        cfgs = [
            m.test_cfg for m in model.modules()
            if getattr(m, 'test_cfg', None) is not None and (
                name in m.test_cfg or name in getattr(m, 'TEST_CFG_KEYS', ()))
        ]
        if not cfgs:
            raise KeyError(
                f'{name!r} is not a key of model.test_cfg in {config} (keys: '
                f'{sorted(cfg.model.test_cfg)}) and no head of the built '
                'model declares it')
        return cfgs

    for name, value in fixed.items():
        for test_cfg in readers(name):
            test_cfg[name] = value
    head_cfgs = readers(key)
    results = {}
    for value in values:
        for test_cfg in head_cfgs:
            test_cfg[key] = value
        # the runner keeps its test loop (data, evaluator) between calls
        metrics = runner.test()
        results[str(value)] = {k: float(v) for k, v in metrics.items()}
        print(f'[sweep] {key}={value}: ' + ', '.join(
            f'{k}={v:.3f}' for k, v in metrics.items()
            if k.endswith('mAP')), flush=True)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description='Evaluate a checkpoint under several values of one '
        'model.test_cfg key (loaded once).')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--key', required=True,
                        help='a key of model.test_cfg, e.g. mask_thr')
    parser.add_argument('--values', nargs='+', required=True,
                        type=parse_value)
    parser.add_argument(
        '--set', nargs='+', default=[], metavar='KEY=VALUE',
        help='test_cfg values held fixed during the sweep, e.g. '
        'mask_interp=logit')
    parser.add_argument('--out', help='JSON with the metrics per value')
    args = parser.parse_args(argv)
    fixed = parse_sets(parser, args.set)
    results = sweep(args.config, args.checkpoint, args.key, args.values,
                    fixed)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(config=args.config, checkpoint=args.checkpoint,
                           key=args.key, fixed=fixed, results=results), f,
                      indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
