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
