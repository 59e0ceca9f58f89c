# Copyright (c) mmembed authors. All rights reserved.
"""tools/analysis_tools/reliability_check.py: a smoke run of both parts on
tiny settings (2 iterations, 4 crowded images), and its bf16-vs-fp32
verdict on crafted runs."""
import importlib.util
import json
import os.path as osp
import subprocess
import sys

from mmembed.testing import get_repo_root

REPO = get_repo_root()
TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'reliability_check.py')


def _load_tool():
    spec = importlib.util.spec_from_file_location('reliability_check', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_run_writes_both_parts(tmp_path):
    synthetic = tmp_path / 'synthetic'
    subprocess.run([
        sys.executable, 'tools/misc/make_synthetic_coco.py', '--out-dir',
        str(synthetic), '--num-train', '4', '--num-val', '2', '--img-size',
        '128'
    ], cwd=REPO, check=True, capture_output=True)
    out = tmp_path / 'reliability.json'
    proc = subprocess.run([
        sys.executable, TOOL, '--models', 'embedmask_paper', '--amp-iters',
        '2', '--synthetic-dir', str(synthetic), '--load-images', '4',
        '--load-max-objects', '40', '--load-img-size', '256',
        '--load-caps', '8', '--work-dir', str(tmp_path / 'work'), '--out',
        str(out)
    ], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    runs = report['amp']['runs']
    assert [(r['precision'], r['seed']) for r in runs] == [
        ('fp32', 0), ('fp32', 1), ('bf16', 0)]
    for run in runs:
        assert len(run['losses']) == 2 and run['losses_finite']
        assert 0 <= run['segm_mAP'] <= 1
    summary = report['amp']['summary']['embedmask_paper']
    assert summary['bf16_losses_finite'] and summary['bf16_weights_finite']
    load = report['load']
    assert load['data']['images'] == 4
    assert 1 <= load['data']['max_per_image'] <= 40
    train = load['train_by_max_masks_to_train']['8']
    assert train['iterations'] == 2 and train['peak_rss_mib'] > 100
    assert load['test']['images_per_second'] > 0


def test_bf16_verdict_uses_the_fp32_seed_spread():
    tool = _load_tool()

    def run(precision, seed, ap):
        return dict(name='m', precision=precision, seed=seed,
                    losses=[1.0] * 10, losses_finite=True,
                    weights_finite=True, stopped=None, bbox_mAP=ap,
                    segm_mAP=ap)

    close = tool.summarize_amp(
        [run('fp32', 0, 0.30), run('fp32', 1, 0.24), run('bf16', 0, 0.25)])
    row = close['m']['segm_mAP']
    assert row['tolerance'] == 0.06 and row['within_tolerance']
    far = tool.summarize_amp(
        [run('fp32', 0, 0.30), run('fp32', 1, 0.30), run('bf16', 0, 0.20)])
    assert far['m']['segm_mAP']['tolerance'] == 0.02
    assert not far['m']['segm_mAP']['within_tolerance']
