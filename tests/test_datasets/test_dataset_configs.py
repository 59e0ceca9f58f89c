# Copyright (c) mmembed authors. All rights reserved.
"""Tests for the dataset base configs and ``update_data_root``."""
import os.path as osp
from pathlib import Path

import pytest
from mmengine.config import Config

from mmembed.utils import update_data_root

REPO_ROOT = Path(__file__).resolve().parents[2]
DATASET_CFG_DIR = REPO_ROOT / 'configs' / '_base_' / 'datasets'
SHARED_DATA = REPO_ROOT.parent / 'shared' / 'data'
BASES = ('coco_instance', 'synthetic_instance', 'fruits_nuts_instance',
         'coco128_instance')


def _load(name: str) -> Config:
    return Config.fromfile(str(DATASET_CFG_DIR / f'{name}.py'))


def _resolved(cfg: Config) -> Config:
    """The config with its (repo-relative) data root made absolute, so the
    test does not depend on the working directory; skips if the shared data
    folder is missing."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f'shared data not found at {SHARED_DATA}')
    root = osp.normpath(osp.join(str(REPO_ROOT), cfg.data_root)) + '/'
    if not osp.isdir(root):
        pytest.skip(f'dataset not found at {root}')
    return update_data_root(cfg, root)


def _build(dataset_cfg: dict):
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules
    register_all_modules()
    return DATASETS.build(dataset_cfg)


def _check_sample(dataset, index: int = 0) -> None:
    gt = dataset[index]['data_samples'].gt_instances
    assert len(gt.masks) > 0
    assert len(gt.masks) == len(gt.bboxes) == len(gt.labels)
    # The masks are bitmaps of the (resized) image.
    img_h, img_w = dataset[index]['inputs'].shape[-2:]
    assert (gt.masks.height, gt.masks.width) == (img_h, img_w)


@pytest.mark.parametrize('name', BASES)
def test_base_config_parses(name: str) -> None:
    cfg = _load(name)
    assert cfg.dataset_type == 'CheckedCocoDataset'
    assert cfg.backend_args is None
    assert cfg.data_root.endswith('/')
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[key].dataset
        assert dataset.type == cfg.dataset_type
        assert dataset.data_root == cfg.data_root
        # Relative paths, so that data_root alone decides where data is.
        assert not osp.isabs(dataset.ann_file)
        assert not osp.isabs(dataset.data_prefix.img)
    assert cfg.val_dataloader.dataset.test_mode
    for key in ('val_evaluator', 'test_evaluator'):
        evaluator = cfg[key]
        assert evaluator.type == 'CheckedCocoMetric'
        assert list(evaluator.metric) == ['bbox', 'segm']
        assert evaluator.ann_file.startswith(cfg.data_root)
    pipeline_types = [t.type for t in cfg.train_dataloader.dataset.pipeline]
    assert pipeline_types[:2] == ['LoadImageFromFile', 'LoadAnnotations']
    assert 'RandomFlip' in pipeline_types
    assert pipeline_types[-1] == 'PackDetInputs'
    test_pipeline = cfg.test_dataloader.dataset.pipeline
    assert 'scale_factor' in test_pipeline[-1].meta_keys


def test_synthetic_classes_match_generator() -> None:
    cfg = _load('synthetic_instance')
    assert cfg.metainfo.classes == ('disc', 'square', 'triangle', 'ring')
    assert len(cfg.metainfo.palette) == 4
    assert cfg.val_evaluator.ann_file == cfg.data_root + \
        'annotations/val.json'
    assert cfg.train_dataloader.dataset.metainfo == cfg.metainfo


def test_fruits_nuts_builds() -> None:
    cfg = _resolved(_load('fruits_nuts_instance'))
    train = _build(cfg.train_dataloader.dataset)
    assert len(train) == 18
    assert train.metainfo['classes'] == ('date', 'fig', 'hazelnut')
    _check_sample(train)
    # Resize to (400, 300) keep_ratio: 800x600 -> 400x300.
    assert tuple(train[0]['inputs'].shape[-2:]) == (300, 400)
    val = _build(cfg.val_dataloader.dataset)
    assert len(val) == 18
    assert osp.isfile(cfg.val_evaluator.ann_file)


def test_coco128_builds() -> None:
    cfg = _resolved(_load('coco128_instance'))
    train = _build(cfg.train_dataloader.dataset)
    # filter_empty_gt drops the two images without annotations.
    assert len(train) == 126
    assert len(train.metainfo['classes']) == 80
    _check_sample(train)
    val = _build(cfg.val_dataloader.dataset)
    assert len(val) == 128
    assert osp.isfile(cfg.val_evaluator.ann_file)


def test_update_data_root_rewrites_wrapped_datasets_and_evaluators() -> None:
    cfg = _load('synthetic_instance')
    old = cfg.data_root
    cfg.train_dataloader.dataset = dict(
        type='RepeatDataset', times=3, dataset=cfg.train_dataloader.dataset)
    cfg.test_dataloader.dataset = dict(
        type='ConcatDataset',
        datasets=[cfg.val_dataloader.dataset,
                  dict(cfg.val_dataloader.dataset, ann_file='extra.json')])
    cfg.val_evaluator = [
        cfg.val_evaluator,
        dict(type='CocoMetric', ann_file='/elsewhere/val.json'),
        # Shares only a string prefix with the root, not a path component.
        dict(type='CocoMetric', ann_file=old.rstrip('/') + '2/val.json'),
    ]

    new = update_data_root(cfg, '/mnt/shapes/')

    assert new.data_root == '/mnt/shapes/'
    assert new.train_dataloader.dataset.type == 'RepeatDataset'
    assert new.train_dataloader.dataset.dataset.data_root == '/mnt/shapes/'
    assert new.val_dataloader.dataset.data_root == '/mnt/shapes/'
    assert [d.data_root for d in new.test_dataloader.dataset.datasets] == \
        ['/mnt/shapes/'] * 2
    # Dataset-relative paths are unchanged.
    assert new.test_dataloader.dataset.datasets[1].ann_file == 'extra.json'
    assert [m.ann_file for m in new.val_evaluator] == [
        '/mnt/shapes/annotations/val.json', '/elsewhere/val.json',
        'data/synthetic2/val.json'
    ]
    assert new.test_evaluator.ann_file == '/mnt/shapes/annotations/val.json'
    # The input config is left untouched.
    assert cfg.data_root == old
    assert cfg.train_dataloader.dataset.dataset.data_root == old
    assert cfg.val_evaluator[0].ann_file == old + 'annotations/val.json'


def test_update_data_root_separator_handling() -> None:
    cfg = _load('synthetic_instance')
    new = update_data_root(cfg, '/mnt/shapes')
    assert new.val_evaluator.ann_file == '/mnt/shapes/annotations/val.json'
    # A new root that extends the old one is applied once, even though val
    # and test evaluators are rewritten in the same call.
    nested = update_data_root(cfg, cfg.data_root + 'v2/')
    assert nested.test_evaluator.ann_file == \
        'data/synthetic/v2/annotations/val.json'
    assert nested.val_evaluator.ann_file == \
        'data/synthetic/v2/annotations/val.json'


def test_update_data_root_errors() -> None:
    with pytest.raises(ValueError, match='data_root'):
        update_data_root(Config(dict(model=dict(type='Foo'))), '/x/')
    no_root = Config(
        dict(train_dataloader=dict(dataset=dict(type='CocoDataset')),
             val_evaluator=dict(type='CocoMetric', ann_file='a.json')))
    with pytest.raises(ValueError, match='data_root'):
        update_data_root(no_root, '/x/')
    with pytest.raises(ValueError, match='new_root'):
        update_data_root(_load('synthetic_instance'), '')
