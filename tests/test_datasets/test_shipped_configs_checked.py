# Copyright (c) mmembed authors. All rights reserved.
"""Every shipped config reads its data through CheckedCocoDataset (which
reports the annotations mmdet drops silently) and scores with a metric that
refuses an ann_file with images it was not shown (CheckedCocoMetric or
BoundaryCocoMetric)."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from mmembed.testing import get_repo_root

REPO = get_repo_root()
CONFIGS = sorted(
    osp.relpath(p, REPO) for p in glob.glob(
        osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p)
CHECKED_METRICS = ('CheckedCocoMetric', 'BoundaryCocoMetric')


def _datasets(node):
    """Every dict with a dataset ``type`` in a dataloader config (wrappers
    such as RepeatDataset included)."""
    while isinstance(node, dict):
        yield node
        node = node.get('dataset')


def _type_name(value):
    return value if isinstance(value, str) else getattr(
        value, '__name__', str(value))


@pytest.mark.parametrize('config', CONFIGS)
def test_config_uses_the_checked_dataset_and_metric(config):
    cfg = Config.fromfile(osp.join(REPO, config))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if key not in cfg:
            continue
        types = [_type_name(d.get('type')) for d in _datasets(
            cfg[key].get('dataset'))]
        assert 'CocoDataset' not in types, (
            f'{config}: {key} builds a plain CocoDataset; use '
            'CheckedCocoDataset (configs/_base_/datasets)')
    for key in ('val_evaluator', 'test_evaluator'):
        if key not in cfg:
            continue
        evaluators = cfg[key] if isinstance(cfg[key], list) else [cfg[key]]
        for evaluator in evaluators:
            name = _type_name(evaluator.get('type'))
            if 'Coco' in name:
                assert name in CHECKED_METRICS, (
                    f'{config}: {key} is {name}, which scores every image '
                    'of its ann_file silently; use CheckedCocoMetric')


def test_the_walk_sees_every_dataset_kind():
    names = ' '.join(CONFIGS)
    for kind in ('coco.py', 'fruits_nuts', 'coco128', 'synthetic',
                 'finetune'):
        assert kind in names, kind
