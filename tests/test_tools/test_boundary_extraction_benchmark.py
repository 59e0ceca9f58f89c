# Copyright (c) mmembed authors. All rights reserved.
"""The boundary extraction benchmark on a few masks of a tiny annotation
file: it checks both methods agree before timing and writes its JSON."""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest

from mmembed.testing import get_repo_root


def load_tool():
    path = osp.join(get_repo_root(), 'tools', 'analysis_tools',
                    'boundary_extraction_benchmark.py')
    spec = importlib.util.spec_from_file_location(
        'boundary_extraction_benchmark', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def ann_file(tmp_path):
    """Two images, three polygons (one cut by the image border)."""
    polygons = [(1, [5, 5, 40, 8, 30, 35, 8, 28]),
                (1, [50, 0, 79, 0, 79, 30, 60, 20]),
                (2, [10, 10, 50, 12, 45, 50])]
    coco = dict(
        images=[dict(id=i, file_name=f'{i}.jpg', height=60, width=80)
                for i in (1, 2)],
        categories=[dict(id=1, name='thing')],
        annotations=[
            dict(id=k + 1, image_id=img, category_id=1, segmentation=[poly],
                 iscrowd=0, area=100.0, bbox=[0, 0, 10, 10])
            for k, (img, poly) in enumerate(polygons)
        ])
    path = tmp_path / 'ann.json'
    path.write_text(json.dumps(coco))
    return str(path)


def test_benchmark_times_both_methods_and_writes_json(ann_file, tmp_path):
    tool = load_tool()
    out = tmp_path / 'results' / 'boundary.json'
    assert tool.main(['--ann-file', ann_file, '--num-masks', '2',
                      '--repeats', '2', '--out', str(out)]) == 0
    report = json.loads(out.read_text())
    # the first two masks: both from image 1
    assert (report['num_images'], report['num_masks']) == (1, 2)
    assert report['identical'] is True
    assert report['dilation_px'] == [2]  # round(0.02 * 100)
    for layout in ('row_major', 'as_decoded'):
        row = report[layout]
        assert all(len(v) == 2 for v in row['round_seconds'].values())
        assert row['official_ms_per_mask'] > 0
        assert row['mmembed_ms_per_mask'] > 0
        assert row['speedup'] == pytest.approx(
            row['official_ms_per_mask'] / row['mmembed_ms_per_mask'],
            rel=0.02)
    images = tool.load_masks(ann_file)
    assert [m.shape for m in images] == [(2, 60, 80), (1, 60, 80)]
    # as pycocotools decodes: column-major masks
    assert images[0][0].flags.f_contiguous


def test_benchmark_refuses_to_time_methods_that_disagree(
        ann_file, monkeypatch):
    tool = load_tool()
    images = tool.load_masks(ann_file)
    tool.check_identical(images, 0.02)
    # a method giving other bands is caught before any timing
    monkeypatch.setattr(
        tool, 'official_mask_to_boundary',
        lambda mask, ratio: np.zeros_like(mask))
    with pytest.raises(AssertionError, match='image 0, mask 0'):
        tool.check_identical(images, 0.02)
