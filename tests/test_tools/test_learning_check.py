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


def test_istr_is_compared_with_queryinst(tmp_path, monkeypatch):
    tool = load_tool()
    fitted = []
    monkeypatch.setattr(tool, 'ensure_codec', fitted.append)

    def stub(cmd, *args, **kwargs):
        config = cmd[cmd.index('--worker') + 1]
        seed = int(cmd[cmd.index('--seed') + 1])
        base = 0.3 if 'istr' in config else 0.7
        with open(cmd[cmd.index('--result-json') + 1], 'w') as f:
            json.dump(fake_run(base + 0.01 * seed), f)

    monkeypatch.setattr(tool.subprocess, 'run', stub)
    out = tmp_path / 'learning.json'
    assert tool.main([
        '--models', 'istr', 'queryinst', '--seeds', '0', '1', '--work-dir',
        str(tmp_path / 'work'), '--out', str(out), '--figure', '',
        '--istr-figure', ''
    ]) == 0
    assert fitted == [tool.MODELS['istr'], tool.MODELS['queryinst']]
    report = json.loads(out.read_text())
    verdict = report['istr_vs_queryinst']
    assert verdict['segm_mAP_diff'] == pytest.approx(-0.4)
    assert verdict['segm_mAP_diff_is_real'] is True
    assert not any(key.endswith('_vs_condinst') for key in report)


@pytest.mark.skipif(
    not osp.isdir(osp.join(get_repo_root(), '..', 'shared', 'data',
                           'fruits_nuts')),
    reason='needs ../shared/data/fruits_nuts')
def test_missing_istr_codec_is_fitted_from_the_training_json(tmp_path):
    tool = load_tool()
    codec_file = tmp_path / 'codec.npz'
    config = tmp_path / 'istr.py'
    base = osp.join(get_repo_root(), tool.MODELS['istr'])
    config.write_text(f'_base_ = {base!r}\n'
                      'model = dict(roi_head=dict(mask_codec=dict('
                      f'codec_file={str(codec_file)!r}, code_dim=8)))\n')
    tool.ensure_codec(str(config))
    import numpy as np
    with np.load(codec_file) as data:
        assert data['components'].shape == (8, 28 * 28)
    # present: nothing is refitted
    stamp = codec_file.stat().st_mtime_ns
    tool.ensure_codec(str(config))
    assert codec_file.stat().st_mtime_ns == stamp


def test_merge_into_keeps_earlier_models_and_recomputes(tmp_path,
                                                         monkeypatch):
    tool = load_tool()
    monkeypatch.setattr(tool, 'ensure_codec', lambda config: None)

    def stub(segm):
        def run(cmd, *args, **kwargs):
            seed = int(cmd[cmd.index('--seed') + 1])
            with open(cmd[cmd.index('--result-json') + 1], 'w') as f:
                json.dump(fake_run(segm + 0.01 * seed), f)
        return run

    common = ['--seeds', '0', '1', '--work-dir', str(tmp_path / 'w'),
              '--figure', '']
    first = tmp_path / 'first.json'
    monkeypatch.setattr(tool.subprocess, 'run', stub(0.6))
    assert tool.main(['--models', 'condinst', 'embedmask', '--out',
                      str(first)] + common) == 0
    merged = tmp_path / 'merged.json'
    monkeypatch.setattr(tool.subprocess, 'run', stub(0.8))
    assert tool.main(['--models', 'embedmask_v3', 'embedmask', '--out',
                      str(merged), '--merge-into', str(first)] + common) == 0
    report = json.loads(merged.read_text())
    assert set(report['models']) == {'condinst', 'embedmask', 'embedmask_v3'}
    # retrained: the new runs replace the earlier entry
    assert report['models']['embedmask']['segm_mAP'] == pytest.approx(0.805)
    assert report['models']['condinst']['segm_mAP'] == pytest.approx(0.605)
    assert report['embedmask_v3_vs_condinst']['segm_mAP_diff'] == \
        pytest.approx(0.2)
    assert report['merged_from'] == str(first)
    with pytest.raises(SystemExit, match='same seeds'):
        tool.main(['--models', 'embedmask_v3', '--seeds', '0', '--out',
                   str(merged), '--merge-into', str(first), '--figure', ''])


def test_add_seeds_extends_the_earlier_runs(tmp_path, monkeypatch):
    """--add-seeds: a seed trained now joins the earlier runs of the same
    model; a model not trained now keeps its seeds, and the report lists
    each model's seeds."""
    tool = load_tool()
    monkeypatch.setattr(tool, 'ensure_codec', lambda config: None)

    def stub(cmd, *args, **kwargs):
        seed = int(cmd[cmd.index('--seed') + 1])
        with open(cmd[cmd.index('--result-json') + 1], 'w') as f:
            json.dump(fake_run(0.6 + 0.1 * seed), f)

    monkeypatch.setattr(tool.subprocess, 'run', stub)
    first = tmp_path / 'first.json'
    assert tool.main([
        '--models', 'condinst', 'embedmask', '--seeds', '0', '1',
        '--work-dir', str(tmp_path / 'w'), '--out', str(first),
        '--figure', ''
    ]) == 0
    grown = tmp_path / 'grown.json'
    add = ['--seeds', '2', '--work-dir', str(tmp_path / 'w2'), '--figure',
           '', '--merge-into', str(first), '--add-seeds', '--out', str(grown)]
    assert tool.main(['--models', 'condinst', 'embedmask'] + add) == 0
    report = json.loads(grown.read_text())
    assert report['seeds'] == [0, 1, 2]
    entry = report['models']['embedmask']
    assert [run['seed'] for run in entry['runs']] == [0, 1, 2]
    assert entry['segm_mAP'] == pytest.approx(0.7)
    assert entry['std']['segm_mAP'] == pytest.approx(0.1)
    assert report['seeds_added']['seeds'] == [2]
    assert report['embedmask_vs_condinst']['segm_mAP_diff'] == \
        pytest.approx(0.0)
    assert 'seeds_per_model' not in report
    # only one of the two models gets seed 2
    assert tool.main(['--models', 'embedmask'] + add) == 0
    report = json.loads(grown.read_text())
    assert report['seeds'] == [0, 1, 2]
    assert report['seeds_per_model'] == {'condinst': [0, 1],
                                         'embedmask': [0, 1, 2]}
    assert report['models']['condinst']['segm_mAP'] == pytest.approx(0.65)
    with pytest.raises(SystemExit, match='needs --merge-into'):
        tool.main(['--models', 'embedmask', '--seeds', '2', '--add-seeds',
                   '--figure', '', '--out', str(grown)])


def test_boundary_pair_passes_the_flag_compares_boundary_ap_and_reuses(
        tmp_path, monkeypatch):
    """--boundary-ap reaches every worker; the neck pair is compared on
    boundary AP too; --reuse-runs reads a finished run instead of training
    it again."""
    tool = load_tool()
    calls = []
    real_run = tool.subprocess.run

    def stub(cmd, *args, **kwargs):
        if '--worker' not in cmd:
            return real_run(cmd, *args, **kwargs)
        assert '--boundary-ap' in cmd
        config = cmd[cmd.index('--worker') + 1]
        seed = int(cmd[cmd.index('--seed') + 1])
        calls.append((osp.basename(config), seed))
        run = fake_run(0.8)
        run['boundary_mAP'] = 0.7 if 'sharpmask' in config else 0.6
        run['boundary_mAP'] += 0.01 * seed
        with open(cmd[cmd.index('--result-json') + 1], 'w') as f:
            json.dump(run, f)

    monkeypatch.setattr(tool.subprocess, 'run', stub)
    work = tmp_path / 'work'
    # embedmask seed 0 finished in an earlier, interrupted check
    done = work / 'embedmask' / 'seed0'
    done.mkdir(parents=True)
    earlier = dict(fake_run(0.8), boundary_mAP=0.6)
    (done / 'result.json').write_text(json.dumps(earlier))
    out = tmp_path / 'boundary.json'
    assert tool.main([
        '--models', 'embedmask', 'embedmask_sharpmask', '--boundary-ap',
        '--seeds', '0', '1', '--reuse-runs', '--work-dir', str(work),
        '--out', str(out), '--figure', '', '--sharpmask-figure', ''
    ]) == 0
    assert ('embedmask_r18_fpn_fruits_nuts.py', 0) not in calls
    assert len(calls) == 3
    report = json.loads(out.read_text())
    verdict = report['embedmask_sharpmask_vs_embedmask']
    assert verdict['boundary_mAP_diff'] == pytest.approx(0.1)
    assert verdict['boundary_mAP_diff_is_real'] is True
    assert report['models']['embedmask']['std']['boundary_mAP'] > 0


def test_finetune_protocol_uses_the_lite0_configs_and_the_split(
        tmp_path, monkeypatch):
    """--protocol finetune: the fine-tune configs, boundary AP for every
    model, the fixed split written as annotation files, the held-out and
    training-photo keys summarised, and the protocol in the report."""
    tool = load_tool()
    monkeypatch.setattr(tool, 'ensure_codec', lambda config: None)
    written = []
    import mmembed.datasets.coco_split as coco_split
    monkeypatch.setattr(
        coco_split, 'write_heldout_split',
        lambda src, ids, out: written.append((src, tuple(ids), out)) or {})
    calls = []

    def stub(cmd, *args, **kwargs):
        assert cmd[cmd.index('--protocol') + 1] == 'finetune'
        assert '--boundary-ap' in cmd
        config = cmd[cmd.index('--worker') + 1]
        seed = int(cmd[cmd.index('--seed') + 1])
        calls.append(config)
        run = fake_run(0.7 if 'condinst' in config else 0.6)
        run.update(train_segm_mAP=0.8 + 0.01 * seed, boundary_mAP=0.5,
                   loss_curve=[[6, 2.0], [240, 0.5]])
        with open(cmd[cmd.index('--result-json') + 1], 'w') as f:
            json.dump(run, f)

    monkeypatch.setattr(tool.subprocess, 'run', stub)
    out = tmp_path / 'ft.json'
    assert tool.main([
        '--protocol', 'finetune', '--models', 'embedmask', 'condinst',
        '--seeds', '0', '1', '--work-dir', str(tmp_path / 'w'), '--out',
        str(out), '--figure', ''
    ]) == 0
    assert written == [(tool.FRUITS_NUTS_ANN, (2, 5, 8, 11, 14, 17),
                        'data/fruits_nuts_split')]
    assert {osp.basename(c) for c in calls} == {
        'embedmask_lite0_fpn_fruits_nuts_finetune.py',
        'condinst_lite0_fpn_fruits_nuts_finetune.py'}
    report = json.loads(out.read_text())
    assert report['protocol'] == 'finetune'
    assert report['split']['heldout_image_ids'] == [2, 5, 8, 11, 14, 17]
    assert len(report['split']['train_image_ids']) == 12
    emb = report['models']['embedmask']
    assert emb['train_segm_mAP'] == pytest.approx(0.805)
    assert emb['std']['train_segm_mAP'] > 0
    assert report['embedmask_vs_condinst']['segm_mAP_diff'] == \
        pytest.approx(-0.1)
    # defaults per protocol
    args = tool.parse_args(['--protocol', 'finetune'])
    assert args.models == list(tool.FINETUNE_DEFAULT_MODELS)
    assert args.out.endswith('learning_fruits_nuts_finetune.json')
    assert tool.parse_args([]).out.endswith('learning_fruits_nuts.json')
    with pytest.raises(SystemExit):
        tool.parse_args(['--protocol', 'finetune', '--models',
                         'istr_det_match'])


def test_every_finetune_config_shares_the_protocol():
    """Same backbone, split, schedule and detection budget for every model
    of the fine-tune protocol."""
    from mmengine.config import Config
    tool = load_tool()
    budgets = set()
    for name, path in tool.FINETUNE_MODELS.items():
        cfg = Config.fromfile(osp.join(get_repo_root(), path))
        assert cfg.model.backbone.type == 'EfficientNetLite', name
        assert cfg.model.backbone.init_cfg.checkpoint == 'effnet-lite0'
        assert cfg.model.backbone.frozen_stages == 1
        assert cfg.model.backbone.norm_eval
        assert cfg.train_dataloader.dataset.ann_file.endswith(
            'fruits_nuts_split/train.json'), name
        assert cfg.test_evaluator.ann_file.endswith(
            'fruits_nuts_split/heldout.json'), name
        assert cfg.train_cfg.max_epochs == 40
        budgets.add(tool.max_detections(cfg))
    assert budgets == {100}
    # the scratch pair keeps the same budget too
    for name in ('istr', 'queryinst'):
        cfg = Config.fromfile(osp.join(get_repo_root(), tool.MODELS[name]))
        assert tool.max_detections(cfg) == 100


def test_loss_curve_is_read_from_the_scalars(tmp_path):
    tool = load_tool()
    vis = tmp_path / '20261206_000000' / 'vis_data'
    vis.mkdir(parents=True)
    (vis / 'scalars.json').write_text(
        '{"lr": 0.001, "loss": 3.25, "iter": 6}\n'
        '{"coco/segm_mAP": 0.5, "step": 240}\n'
        '{"lr": 0.0001, "loss": 0.5, "iter": 240}\n')
    assert tool.read_loss_curve(str(tmp_path)) == [[6, 3.25], [240, 0.5]]
    assert tool.read_loss_curve(str(tmp_path / 'none')) == []


def test_last_quarter_share_says_whether_the_loss_flattened():
    tool = load_tool()
    flat = [[i, 3.0 if i == 0 else 1.0 + 0.01 * (8 - i)] for i in range(9)]
    falling = [[i, 9.0 - i] for i in range(9)]
    assert tool.last_quarter_share(flat) < 0.05
    assert tool.last_quarter_share(falling) == pytest.approx(0.25)
    assert tool.last_quarter_share([[0, 1.0], [1, 2.0], [2, 3.0],
                                    [3, 4.0]]) is None
    summary = tool.summarize_runs(
        [dict(fake_run(0.6), loss_curve=flat),
         dict(fake_run(0.6), loss_curve=falling)], [0, 1])
    assert summary['loss_last_quarter_share'] == pytest.approx(
        (tool.last_quarter_share(flat) + 0.25) / 2, abs=1e-3)
    assert 'loss_curve' not in summary
    assert summary['runs'][1]['loss_curve'] == falling
