# Copyright (c) mmembed authors. All rights reserved.
"""tools/analysis_tools/stage_losses.py on scalars files written here."""
import importlib.util
import json
import os.path as osp

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool():
    path = osp.join(REPO, 'tools/analysis_tools/stage_losses.py')
    spec = importlib.util.spec_from_file_location('stage_losses', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_run(root, model, seed, cls_losses, extra_eval=True):
    vis = root / model / f'seed{seed}' / '20261206_000000' / 'vis_data'
    vis.mkdir(parents=True)
    lines = [dict(loss=9.0, iter=6, **{'s0.loss_cls': 5.0, 's1.loss_cls':
                                       5.0})]
    last = dict(loss=3.0, iter=12)
    for stage, value in enumerate(cls_losses):
        last[f's{stage}.loss_cls'] = value
        last[f's{stage}.pos_acc'] = 50.0 + stage
    lines.append(last)
    if extra_eval:  # the evaluation line has no loss
        lines.append({'coco/segm_mAP': 0.3, 'step': 40})
    (vis / 'scalars.json').write_text('\n'.join(json.dumps(x)
                                                for x in lines))


def test_last_iteration_per_stage_mean_over_seeds(tmp_path):
    tool = load_tool()
    write_run(tmp_path, 'istr', 0, [0.8, 0.8, 0.8])
    write_run(tmp_path, 'istr', 1, [1.0, 0.9, 0.6])
    out = tmp_path / 'out.json'
    assert tool.main(['--models', 'istr', '--seeds', '0', '1', '--work-dir',
                      str(tmp_path), '--out', str(out)]) == 0
    got = json.loads(out.read_text())['models']['istr']
    assert got['loss_cls']['stages'] == [0.9, 0.85, 0.7]
    assert got['loss_cls']['last_over_first'] == pytest.approx(0.778)
    assert got['pos_acc']['stages'] == [50.0, 51.0, 52.0]
    assert got['iteration'] == 12


def test_a_missing_run_is_named(tmp_path):
    tool = load_tool()
    with pytest.raises(FileNotFoundError, match='seed3 has no'):
        tool.main(['--models', 'istr', '--seeds', '3', '--work-dir',
                   str(tmp_path), '--out', str(tmp_path / 'o.json')])
