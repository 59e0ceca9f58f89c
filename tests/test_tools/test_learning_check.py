# Copyright (c) mmembed authors. All rights reserved.
"""The learning check's multi-seed report, with the training worker
replaced by a stub (the real check trains for an hour)."""
import importlib.util
import json
import os.path as osp
import statistics

import pytest

from mmembed.testing import get_repo_root


def load_tool():
    path = osp.join(get_repo_root(), 'tools', 'analysis_tools',
                    'learning_check.py')
    spec = importlib.util.spec_from_file_location('learning_check', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_run(segm, bbox=0.9, seconds=100.0):
    run = {k: 0.5 for k in load_tool().AP_KEYS}
    run.update(config='c.py', epochs=80, iterations=720, segm_mAP=segm,
               bbox_mAP=bbox, train_seconds=seconds, seconds_per_iter=0.1,
               test_seconds=2.0, peak_rss_mib=1000.0, torch_threads=2,
               checkpoint='seed0.pth')
    return run


def test_summary_has_mean_std_and_every_run():
    tool = load_tool()
    runs = [fake_run(0.535), fake_run(0.685), fake_run(0.6)]
    summary = tool.summarize_runs(runs, [0, 1, 2])
    assert summary['segm_mAP'] == pytest.approx(0.6067, abs=1e-4)
    assert summary['std']['segm_mAP'] == pytest.approx(
        statistics.stdev([0.535, 0.685, 0.6]), abs=1e-4)
    assert [r['seed'] for r in summary['runs']] == [0, 1, 2]
    assert [r['segm_mAP'] for r in summary['runs']] == [0.535, 0.685, 0.6]
    assert summary['checkpoint'] == 'seed0.pth'  # the first seed's
    single = tool.summarize_runs([fake_run(0.7)], [5])
    assert single['segm_mAP'] == 0.7 and single['std']['segm_mAP'] == 0
    with pytest.raises(ValueError, match='one run per seed'):
        tool.summarize_runs(runs, [0, 1])


def test_a_difference_is_real_only_beyond_the_spread():
    tool = load_tool()
    noisy = tool.summarize_runs(
        [fake_run(0.535), fake_run(0.685)], [0, 1])
    close = tool.summarize_runs([fake_run(0.64), fake_run(0.66)], [0, 1])
    far = tool.summarize_runs([fake_run(0.90), fake_run(0.91)], [0, 1])
    assert tool.compare_models(close, noisy)['segm_mAP_diff_is_real'] is \
        False
    report = tool.compare_models(far, close)
    assert report['segm_mAP_diff_is_real'] is True
    assert report['segm_mAP_diff'] == pytest.approx(0.255, abs=1e-3)
    one = tool.summarize_runs([fake_run(0.9)], [0])
    assert tool.compare_models(one, one)['segm_mAP_diff_is_real'] is None


def test_main_trains_every_model_once_per_seed(tmp_path, monkeypatch):
    tool = load_tool()
    calls = []
    real_run = tool.subprocess.run

    def stub(cmd, *args, **kwargs):
        if '--worker' not in cmd:  # e.g. platform's `uname -p`
            return real_run(cmd, *args, **kwargs)
        config = cmd[cmd.index('--worker') + 1]
        seed = int(cmd[cmd.index('--seed') + 1])
        calls.append((osp.basename(config), seed))
        base = 0.9 if 'blendmask' in config else 0.6
        with open(cmd[cmd.index('--result-json') + 1], 'w') as f:
            json.dump(fake_run(base + 0.01 * seed), f)

    monkeypatch.setattr(tool.subprocess, 'run', stub)
    out = tmp_path / 'learning.json'
    assert tool.main([
        '--models', 'blendmask', 'condinst', '--seeds', '0', '1', '2',
        '--work-dir', str(tmp_path / 'work'), '--out', str(out),
        '--figure', ''
    ]) == 0
    assert len(calls) == 6 and {s for _, s in calls} == {0, 1, 2}
    report = json.loads(out.read_text())
    assert report['seeds'] == [0, 1, 2]
    assert len(report['models']['blendmask']['runs']) == 3
    assert report['models']['blendmask']['segm_mAP'] == pytest.approx(0.91)
    verdict = report['blendmask_vs_condinst']
    assert verdict['segm_mAP_diff'] == pytest.approx(0.3)
    assert verdict['segm_mAP_diff_is_real'] is True
