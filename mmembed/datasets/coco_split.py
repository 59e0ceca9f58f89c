# Copyright (c) mmembed authors. All rights reserved.
"""Held-out splits of a COCO annotation file, written as annotation files.

A split must be its own annotation file, not a dataset's ``indices``:
mmdet 3.3's ``CocoMetric`` evaluates every image of its ``ann_file``, so a
subset chosen with ``indices`` counts the other images' objects as missed
(see :class:`mmembed.engine.hooks.EvalAnnFileCheckHook`, which refuses that).

The fruits_nuts split of the fine-tune learning check is fixed here, by
image id, so every run and every reader sees the same photos.
"""
import json
import os
import os.path as osp
from typing import Dict, Iterable, Sequence

# fruits_nuts (18 photos, image ids 0..17): every third image id is held out
# (45 objects of all three classes); the other 12 photos train.
FRUITS_NUTS_HELDOUT_IDS = (2, 5, 8, 11, 14, 17)
FRUITS_NUTS_SPLIT_DIR = 'data/fruits_nuts_split'


def coco_subset(coco: dict, img_ids: Iterable[int]) -> dict:
    """The images ``img_ids`` of a COCO dict with their annotations; every
    other top-level entry (categories, info, licenses) is kept. Raises
    ``KeyError`` naming ids the file does not have."""
    wanted = set(int(i) for i in img_ids)
    present = {img['id'] for img in coco['images']}
    missing = sorted(wanted - present)
    if missing:
        raise KeyError(f'image ids {missing} are not in the annotation file '
                       f'(it has {len(present)} images)')
    out = {k: v for k, v in coco.items() if k not in ('images', 'annotations')}
    out['images'] = [img for img in coco['images'] if img['id'] in wanted]
    out['annotations'] = [
        ann for ann in coco.get('annotations', []) if ann['image_id'] in wanted
    ]
    return out


def write_heldout_split(src_ann: str, heldout_ids: Sequence[int],
                        out_dir: str) -> Dict[str, str]:
    """Write ``train.json`` (every image not held out) and ``heldout.json``
    (the ``heldout_ids``) from ``src_ann`` into ``out_dir``; returns their
    paths. Files that already hold exactly the same content are left as they
    are (so concurrent runs do not race on a rewrite)."""
    with open(src_ann) as f:
        coco = json.load(f)
    all_ids = [img['id'] for img in coco['images']]
    heldout = set(int(i) for i in heldout_ids)
    parts = {
        'train': coco_subset(coco, [i for i in all_ids if i not in heldout]),
        'heldout': coco_subset(coco, sorted(heldout)),
    }
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    for name, part in parts.items():
        path = osp.join(out_dir, f'{name}.json')
        text = json.dumps(part)
        if not (osp.isfile(path) and open(path).read() == text):
            tmp = f'{path}.tmp{os.getpid()}'
            with open(tmp, 'w') as f:
                f.write(text)
            os.replace(tmp, path)
        paths[name] = path
    return paths
