# Copyright (c) mmembed authors. All rights reserved.
"""tools/analysis_tools/sweep_learning_runs.py: finding the runs and
summarising them (the evaluation itself is test_cfg_sweep's, tested in
test_train_embedmask.py)."""
import importlib.util
import os.path as osp

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool():
    path = osp.join(REPO, 'tools/analysis_tools/sweep_learning_runs.py')
    spec = importlib.util.spec_from_file_location('sweep_learning_runs',
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run_checkpoint_follows_last_checkpoint(tmp_path):
    tool = load_tool()
    run = tmp_path / 'embedmask' / 'seed0'
    run.mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match='has no last_checkpoint'):
        tool.run_checkpoint(str(run))
    (run / 'last_checkpoint').write_text(str(run / 'epoch_40.pth'))
    with pytest.raises(FileNotFoundError, match='which is missing'):
        tool.run_checkpoint(str(run))
    (run / 'epoch_40.pth').write_bytes(b'')
    assert tool.run_checkpoint(str(run)) == str(run / 'epoch_40.pth')


def test_summarise_gives_mean_std_and_every_run():
    tool = load_tool()
    assert tool.summarise([0.5, 0.7]) == dict(
        mean=0.6, std=0.1414, runs=[0.5, 0.7])
    assert tool.summarise([0.61234])['std'] is None


def test_unknown_model_and_bad_set_are_usage_errors(capsys):
    tool = load_tool()
    with pytest.raises(SystemExit):
        tool.main(['--models', 'embedmask_typo', '--key', 'mask_thr',
                   '--values', '0.5', '--out', 'x.json'])
    assert "unknown finetune models ['embedmask_typo']" in \
        capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.main(['--models', 'embedmask', '--key', 'mask_thr', '--values',
                   '0.5', '--set', 'mask_interp', '--out', 'x.json'])
    assert '--set takes KEY=VALUE' in capsys.readouterr().err


def test_values_parse_to_numbers_none_and_tuples():
    """Sweep values from the command line: numbers, None, and stage tuples
    (ISTR's ``cls_score_stages``)."""
    import sys
    sys.path.insert(0, osp.join(REPO, 'tools/analysis_tools'))
    from test_cfg_sweep import parse_value
    assert parse_value('0.45') == 0.45 and parse_value('2') == 2
    assert parse_value('None') is None
    assert parse_value('(2,3,4,5)') == (2, 3, 4, 5)
    assert parse_value('[5]') == (5, )
    assert parse_value('logit') == 'logit'
    assert parse_value('(oops') == '(oops'
    # booleans (mask_clean): True / False, not the truthy text 'false'
    assert parse_value('true') is True and parse_value('False') is False


def test_boundary_ap_evaluates_with_the_boundary_metric(tmp_path,
                                                       monkeypatch):
    """--boundary-ap: every checkpoint is evaluated with
    BoundaryCocoMetric and boundary AP joins the summary."""
    tool = load_tool()
    for seed in (0, 1):
        run = tmp_path / 'embedmask' / f'seed{seed}'
        run.mkdir(parents=True)
        (run / 'epoch_40.pth').write_bytes(b'')
        (run / 'last_checkpoint').write_text(str(run / 'epoch_40.pth'))
    calls = []

    def fake_sweep(config, checkpoint, key, values, fixed, evaluator_type):
        calls.append(evaluator_type)
        return {str(v): {'coco/segm_mAP': 0.5, 'coco/bbox_mAP': 0.4,
                         'coco/boundary_mAP': 0.3 + 0.1 * len(calls)}
                for v in values}

    monkeypatch.setattr(tool, 'sweep', fake_sweep)
    out = tmp_path / 'sweep.json'
    assert tool.main([
        '--models', 'embedmask', '--seeds', '0', '1', '--work-dir',
        str(tmp_path), '--key', 'mask_clean', '--values', 'false', 'true',
        '--boundary-ap', '--out', str(out)
    ]) == 0
    assert calls == ['BoundaryCocoMetric'] * 2
    import json
    rows = json.load(open(out))['rows']
    assert [r['id'] for r in rows] == ['embedmask__False', 'embedmask__True']
    assert rows[0]['boundary_mAP']['runs'] == [0.4, 0.5]
