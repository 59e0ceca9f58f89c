# Copyright (c) mmembed authors. All rights reserved.
"""Smoke tests of the smaller tools: shell syntax, print_config,
browse_dataset, benchmark and the image demo."""
import glob
import json
import os
import os.path as osp

import pytest
import torch
from tool_test_helpers import (REPO_ROOT, SAMPLE_IMAGE, TINY_CONFIG, explain,
                               requires_fruits_nuts, run_tool)

SHELL_SCRIPTS = sorted(
    osp.relpath(path, REPO_ROOT)
    for path in glob.glob(osp.join(REPO_ROOT, 'tools', '**', '*.sh'),
                          recursive=True))


def test_shell_scripts_found():
    for name in ('dist_train.sh', 'dist_test.sh', 'slurm_train.sh',
                 'slurm_test.sh'):
        assert osp.join('tools', name) in SHELL_SCRIPTS


@pytest.mark.parametrize('script', SHELL_SCRIPTS)
def test_shell_script_syntax(script):
    proc = run_tool(['bash', '-n', script])
    assert proc.returncode == 0, explain(proc)


@pytest.mark.parametrize('script,num_args', [('tools/dist_train.sh', 1),
                                             ('tools/dist_test.sh', 2),
                                             ('tools/slurm_train.sh', 3),
                                             ('tools/slurm_test.sh', 3)])
def test_shell_scripts_print_usage(script, num_args):
    proc = run_tool(['bash', script] + ['x'] * num_args)
    assert proc.returncode == 2, explain(proc)
    assert 'usage:' in proc.stderr


def test_print_config(tmp_path):
    save_path = tmp_path / 'full.py'
    proc = run_tool([
        'tools/misc/print_config.py', TINY_CONFIG, '--cfg-options',
        'model.neck.out_channels=48', '--save-path',
        str(save_path)
    ])
    assert proc.returncode == 0, explain(proc)
    assert "type='FCOS'" in proc.stdout
    assert 'out_channels=48' in proc.stdout
    assert save_path.is_file()


@pytest.mark.slow
@requires_fruits_nuts
def test_browse_dataset_writes_images(tmp_path):
    proc = run_tool([
        'tools/analysis_tools/browse_dataset.py', TINY_CONFIG, '--not-show',
        '--output-dir',
        str(tmp_path)
    ])
    assert proc.returncode == 0, explain(proc)
    written = sorted(os.listdir(tmp_path))
    assert len(written) == 18 and '0.jpg' in written, written
    import mmcv
    # drawn on the pipeline's output: resized to 160x120
    assert mmcv.imread(str(tmp_path / '0.jpg')).shape == (120, 160, 3)


@pytest.mark.slow
@requires_fruits_nuts
def test_benchmark_writes_json(tmp_path):
    out_json = tmp_path / 'b.json'
    proc = run_tool([
        'tools/analysis_tools/benchmark.py', TINY_CONFIG, '--device', 'cpu',
        '--max-iter', '3', '--num-warmup', '1', '--out-json',
        str(out_json), '--work-dir',
        str(tmp_path / 'work')
    ])
    assert proc.returncode == 0, explain(proc)
    with open(out_json) as f:
        result = json.load(f)
    assert result['device'] == 'cpu'
    assert result['num_timed_images'] == 2  # 3 iterations - 1 warm-up
    assert result['fps'] > 0
    assert result['ms_per_img_median'] > 0 and result['ms_per_img_mean'] > 0
    assert result['peak_memory_kind'] == 'cpu_peak_rss'
    assert result['peak_rss_mb'] > 0 and result['peak_memory_mb'] > 0
    assert result['peak_rss_increase_mb'] >= 0
    assert result['torch_num_threads'] >= 1
    for key in ('torch_version', 'mmcv_version', 'mmdet_version'):
        assert result[key]
    assert osp.isfile(tmp_path / 'work' / 'benchmark.log')


def test_benchmark_rejects_nothing_to_time(tmp_path):
    proc = run_tool([
        'tools/analysis_tools/benchmark.py', TINY_CONFIG, '--device', 'cpu',
        '--max-iter', '2', '--num-warmup', '2'
    ])
    assert proc.returncode != 0
    assert 'must exceed num_warmup' in proc.stderr, explain(proc)


@pytest.mark.slow
@requires_fruits_nuts
def test_image_demo_random_weights(tmp_path):
    proc = run_tool([
        'demo/image_demo.py', SAMPLE_IMAGE, TINY_CONFIG, '--device', 'cpu',
        '--out-dir',
        str(tmp_path)
    ])
    assert proc.returncode == 0, explain(proc)
    assert (tmp_path / 'vis' / '0.jpg').is_file()
    with open(tmp_path / 'preds' / '0.json') as f:
        preds = json.load(f)
    assert {'labels', 'scores', 'bboxes'} <= set(preds)
    assert len(preds['labels']) == len(preds['bboxes'])


def test_train_reports_missing_config():
    proc = run_tool(['tools/train.py', 'no/such/config.py'])
    assert proc.returncode == 2
    assert "config file 'no/such/config.py' does not exist" in proc.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only behaviour')
def test_train_amp_needs_gpu():
    proc = run_tool(['tools/train.py', TINY_CONFIG, '--amp'])
    assert proc.returncode == 1, explain(proc)
    assert '--amp needs a GPU' in proc.stderr


def test_train_auto_scale_lr_needs_config_entry():
    proc = run_tool([
        'tools/train.py', TINY_CONFIG, '--auto-scale-lr', '--cfg-options',
        'auto_scale_lr=None'
    ])
    assert proc.returncode == 1, explain(proc)
    assert '--auto-scale-lr needs auto_scale_lr' in proc.stderr


@pytest.mark.slow
@requires_fruits_nuts
def test_benchmark_inference_is_importable(monkeypatch):
    """The timing core can be reused in-process by a benchmark suite."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'mmembed_benchmark_tool',
        osp.join(REPO_ROOT, 'tools', 'analysis_tools', 'benchmark.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.chdir(REPO_ROOT)  # the config's data_root is repo-relative
    result = module.benchmark_inference(
        TINY_CONFIG,
        device='cpu',
        num_warmup=1,
        max_iter=3,
        repeat_num=2,
        log_interval=0,
        cfg_options={'model.test_cfg.max_per_img': 5})
    assert result['num_timed_images'] == 4  # 2 runs x (3 - 1 warm-up)
    assert len(result['runs']) == 2
    assert result['fps'] > 0
    with pytest.raises(ValueError, match='must exceed num_warmup'):
        module.benchmark_inference(TINY_CONFIG, num_warmup=3, max_iter=3)
