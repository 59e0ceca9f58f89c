# Copyright (c) mmembed authors. All rights reserved.
"""Helpers that edit parsed mmengine configs, and read what a config
names (files, the test dataset's classes)."""
import copy
import difflib
import os
import os.path as osp
import warnings
from typing import Any, Iterator, List, Optional

from mmengine.config import Config

_DATALOADER_KEYS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
_EVALUATOR_KEYS = ('val_evaluator', 'test_evaluator')


def _iter_datasets(dataset: Any) -> Iterator[dict]:
    """Yield a dataset config and, recursively, every dataset it wraps.

    Wrappers such as ``RepeatDataset``/``ClassBalancedDataset`` hold one
    ``dataset``; ``ConcatDataset`` holds a list in ``datasets``.
    """
    if not isinstance(dataset, dict):
        return
    yield dataset
    yield from _iter_datasets(dataset.get('dataset'))
    inner = dataset.get('datasets')
    if isinstance(inner, (list, tuple)):
        for item in inner:
            yield from _iter_datasets(item)


def _iter_metrics(evaluator: Any) -> Iterator[dict]:
    """Yield every metric config of an evaluator entry (a dict, a list of
    dicts, or an ``Evaluator`` dict with a ``metrics`` list)."""
    if isinstance(evaluator, (list, tuple)):
        for item in evaluator:
            yield from _iter_metrics(item)
    elif isinstance(evaluator, dict):
        yield evaluator
        if 'metrics' in evaluator:
            yield from _iter_metrics(evaluator['metrics'])


def _strip_root(path: str, root: str) -> Optional[str]:
    """Return ``path`` relative to ``root`` if it lies under it, else None.

    Only whole path components match: root ``data/coco`` does not claim
    ``data/coco2/x.json``.
    """
    if root.endswith('/'):
        return path[len(root):] if path.startswith(root) else None
    if path == root:
        return ''
    if path.startswith(root + '/'):
        return path[len(root) + 1:]
    return None


def _join(root: str, rest: str) -> str:
    """``root`` + ``rest`` with exactly one separator between them."""
    if not rest:
        return root
    return root + rest if root.endswith('/') else f'{root}/{rest}'


def update_data_root(cfg: Config, new_root: str) -> Config:
    """Move every dataset path of ``cfg`` from its data root to ``new_root``.

    The dataset base configs compute their paths from the ``data_root``
    variable when the file is parsed (e.g. ``ann_file=data_root +
    'annotations/val.json'`` in the evaluator), so ``--cfg-options
    data_root=/other/path/`` alone changes nothing. This function rewrites,
    in ``train/val/test_dataloader`` (including datasets wrapped by
    ``RepeatDataset``, ``ConcatDataset``, ... through ``dataset`` and
    ``datasets``):

    * every ``data_root`` value -> ``new_root``;
    * every ``ann_file`` of ``val_evaluator``/``test_evaluator`` (a dict or a
      list of dicts) that starts with one of the old roots: that prefix is
      replaced by ``new_root``. Other ``ann_file`` values are left alone.

    The old roots are the ``data_root`` values found in the dataloaders'
    datasets. The top-level ``data_root`` variable, if present, is set to
    ``new_root`` too so that the dumped config stays consistent. Paths
    relative to ``data_root`` (``ann_file``, ``data_prefix`` of datasets) need
    no change.

    Args:
        cfg: parsed config; it is not modified.
        new_root: the new data root, e.g. ``'/datasets/coco/'``.

    Returns:
        A modified deep copy of ``cfg``.

    Raises:
        ValueError: ``new_root`` is empty or not a string, or no dataloader
            dataset of ``cfg`` has a ``data_root``.
    """
    if not isinstance(new_root, str) or not new_root:
        raise ValueError(
            f'new_root must be a non-empty string, got {new_root!r}')
    cfg = copy.deepcopy(cfg)

    datasets: List[dict] = []
    for key in _DATALOADER_KEYS:
        loader = cfg.get(key)
        if isinstance(loader, dict):
            datasets.extend(_iter_datasets(loader.get('dataset')))
    old_roots = {
        d['data_root']
        for d in datasets if isinstance(d.get('data_root'), str)
        and d['data_root']
    }
    if not old_roots:
        raise ValueError(
            'cannot update the data root: none of '
            f'{", ".join(_DATALOADER_KEYS)} has a dataset (or wrapped '
            'dataset) with a data_root')

    for dataset in datasets:
        if isinstance(dataset.get('data_root'), str) and dataset['data_root']:
            dataset['data_root'] = new_root

    # Longest root first, so nested roots ('data/' and 'data/coco/') map the
    # most specific prefix.
    roots = sorted(old_roots, key=len, reverse=True)
    # val and test evaluators are often the same object; rewrite it once,
    # otherwise a new root that extends an old one would be applied twice.
    seen = set()
    for key in _EVALUATOR_KEYS:
        for metric in _iter_metrics(cfg.get(key)):
            if id(metric) in seen:
                continue
            seen.add(id(metric))
            ann_file = metric.get('ann_file')
            if not isinstance(ann_file, str):
                continue
            for root in roots:
                rest = _strip_root(ann_file, root)
                if rest is not None:
                    metric['ann_file'] = _join(new_root, rest)
                    break

    if 'data_root' in cfg:
        cfg['data_root'] = new_root
    return cfg


def missing_file_message(path: str, what: str = 'config file') -> str:
    """Why ``path`` cannot be read: that it does not exist, where relative
    paths resolve from, and files with a similar name."""
    text = (f'{what} {path!r} does not exist (relative paths are resolved '
            f'from {os.getcwd()!r})')
    folder, name = osp.split(osp.expanduser(path))
    suggestions: List[str] = []
    if osp.isdir(folder or '.'):
        names = [n for n in os.listdir(folder or '.')
                 if osp.splitext(n)[1] == osp.splitext(name)[1]]
        suggestions = [
            osp.join(folder, n)
            for n in difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        ]
    elif folder:
        text += f'; the folder {folder!r} does not exist either'
    # 'embedmask/x.py' typed from the repository root means configs/...
    for root in ('configs', osp.join('mmembed', 'configs')):
        if osp.isfile(osp.join(root, path)):
            suggestions.append(osp.join(root, path))
    if suggestions:
        text += f'; did you mean {" or ".join(map(repr, suggestions))}?'
    return text


def config_test_metainfo(cfg: Config) -> dict:
    """``metainfo`` (classes, palette) of ``cfg``'s test dataset, built
    lazily (no annotation file is read); ``{}`` when it cannot be built.

    mmdet's ``init_detector`` / ``DetInferencer`` fall back to the 80 COCO
    names when a checkpoint (or no checkpoint) carries no class names; this
    is where the config's own names come from instead.
    """
    from mmdet.registry import DATASETS
    try:
        dataset_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
        dataset_cfg['lazy_init'] = True  # metainfo only, no annotations
        return dict(DATASETS.build(dataset_cfg).metainfo)
    except Exception as exc:  # wrappers without lazy_init, missing keys ...
        warnings.warn(f'could not read class names from the config ({exc})')
        return {}
