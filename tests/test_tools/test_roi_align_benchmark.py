# Copyright (c) mmembed authors. All rights reserved.
"""The RoIAlign benchmark on a few narrow RoIs: it checks both extractors
agree (features and gradients) before timing and writes its JSON."""
import importlib.util
import json
import os.path as osp

import pytest

from mmembed.testing import get_repo_root


def load_tool():
    path = osp.join(get_repo_root(), 'tools', 'analysis_tools',
                    'roi_align_benchmark.py')
    spec = importlib.util.spec_from_file_location('roi_align_benchmark', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_writes_both_timings_after_checking_they_agree(tmp_path):
    tool = load_tool()
    out = tmp_path / 'roi.json'
    tool.main([
        '--rounds', '1', '--num-rois', '6', '--channels', '2', '--out',
        str(out)
    ])
    report = json.loads(out.read_text())
    cases = report['cases']
    assert [(c['output_size'], c['backward']) for c in cases
            ] == [(s, b) for b in (False, True) for s in tool.SIZES]
    for case in cases:
        assert case['max_abs_diff'] < 1e-4
        assert case['separable_over_mmcv'] == pytest.approx(
            case['median_ms']['separable'] / case['median_ms']['mmcv'])
    with pytest.raises(SystemExit):
        tool.main(['--rounds', '0', '--out', str(out)])
