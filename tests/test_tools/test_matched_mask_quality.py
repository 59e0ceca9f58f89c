# Copyright (c) mmembed authors. All rights reserved.
"""The mask-defect measures of tools/analysis_tools/matched_mask_quality.py
on masks drawn here (the end-to-end run is in test_train_embedmask.py)."""
import importlib.util
import os.path as osp

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool():
    path = osp.join(REPO, 'tools/analysis_tools/matched_mask_quality.py')
    spec = importlib.util.spec_from_file_location('matched_mask_quality',
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_clean_mask_has_one_part_and_no_hole():
    mask = np.zeros((20, 30), bool)
    mask[3:15, 4:20] = True
    parts, hole, clean = load_tool().mask_defects(mask)
    assert parts == 1 and hole == 0.0
    assert np.array_equal(clean, mask)


def test_speck_and_hole_are_counted_and_cleaned():
    mask = np.zeros((20, 30), bool)
    mask[3:15, 4:20] = True          # 12 x 16 = 192 pixels
    mask[6:9, 8:10] = False          # a 3 x 2 hole
    mask[17:19, 25:27] = True        # a 2 x 2 speck, apart
    parts, hole, clean = load_tool().mask_defects(mask)
    assert parts == 2
    assert hole == 6 / mask.sum()
    want = np.zeros_like(mask)
    want[3:15, 4:20] = True          # speck dropped, hole filled
    assert np.array_equal(clean, want)


def test_background_open_to_the_border_is_not_a_hole():
    mask = np.zeros((10, 10), bool)
    mask[:, 2:8] = True
    mask[0:5, 4:6] = False           # a notch from the top edge
    parts, hole, _ = load_tool().mask_defects(mask)
    assert parts == 1 and hole == 0.0


def test_empty_mask():
    parts, hole, clean = load_tool().mask_defects(np.zeros((5, 5), bool))
    assert parts == 0 and hole == 0.0 and not clean.any()


def test_seed_means_average_per_base_name():
    models = {
        'fpn_seed0': dict(gts=45, found=1.0, mask_iou=0.8, config='a.py'),
        'fpn_seed1': dict(gts=45, found=0.5, mask_iou=None, config='a.py'),
        'other': dict(gts=45, found=0.2, mask_iou=0.1, config='b.py'),
    }
    means = load_tool().seed_means(models)
    assert set(means) == {'fpn'}
    assert means['fpn'] == dict(seeds=2, gts=45, found=0.75, mask_iou=0.8)
