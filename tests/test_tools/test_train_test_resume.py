# Copyright (c) mmembed authors. All rights reserved.
"""tools/train.py -> tools/test.py -> tools/train.py --resume, end to end.

One tiny FCOS is trained for 2 iterations (module fixture); its checkpoint is
then tested, training is resumed to 4 iterations, and checkpoints carrying
arbitrary pickled objects must be refused without running their payload.
"""
import glob
import os
import os.path as osp
import pickle

import pytest
import torch
from tool_test_helpers import (DATA_ROOT, TINY_CONFIG, explain,
                               requires_fruits_nuts, run_tool)

pytestmark = [pytest.mark.slow, requires_fruits_nuts]


@pytest.fixture(scope='module')
def trained_dir(tmp_path_factory) -> str:
    """Work dir of a 2-iteration training run of the tiny config."""
    work_dir = str(tmp_path_factory.mktemp('train'))
    proc = run_tool(['tools/train.py', TINY_CONFIG, '--work-dir', work_dir])
    assert proc.returncode == 0, explain(proc)
    return work_dir


def _load_checkpoint(path: str) -> dict:
    # the same safe loader the tools use (weights_only + mmengine allowlist)
    from mmembed.utils import safe_torch_load
    return safe_torch_load(path, map_location='cpu')


def test_train_writes_checkpoint(trained_dir):
    ckpt = osp.join(trained_dir, 'iter_2.pth')
    assert osp.isfile(ckpt), os.listdir(trained_dir)
    with open(osp.join(trained_dir, 'last_checkpoint')) as f:
        assert f.read().strip().endswith('iter_2.pth')
    checkpoint = _load_checkpoint(ckpt)
    assert checkpoint['meta']['iter'] == 2
    # the message hub (HistoryBuffer objects) is what needs the allowlist
    assert 'message_hub' in checkpoint
    assert checkpoint['meta']['dataset_meta']['classes'] == ('date', 'fig',
                                                             'hazelnut')


def test_test_loads_checkpoint_and_dumps_results(trained_dir, tmp_path):
    out = tmp_path / 'res.pkl'
    proc = run_tool([
        'tools/test.py', TINY_CONFIG,
        osp.join(trained_dir, 'iter_2.pth'), '--work-dir',
        str(tmp_path), '--out',
        str(out)
    ])
    assert proc.returncode == 0, explain(proc)
    # CocoMetric ran on the predictions
    assert 'Average Precision' in proc.stdout, explain(proc)
    with open(out, 'rb') as f:
        results = pickle.load(f)
    assert len(results) == 18  # every fruits_nuts image
    assert {'pred_instances', 'img_id'} <= set(results[0])
    assert results[0]['pred_instances']['bboxes'].shape[-1] == 4


def test_test_tta_and_show_dir(trained_dir, tmp_path):
    """--tta falls back to DetTTAModel + flip TTA; --show-dir draws."""
    proc = run_tool([
        'tools/test.py', TINY_CONFIG,
        osp.join(trained_dir, 'iter_2.pth'), '--work-dir',
        str(tmp_path), '--tta', '--show-dir', 'vis', '--cfg-options',
        'test_dataloader.dataset.indices=3',
        # 3 of the 18 images: the checked metric refuses to score a subset
        # of its ann_file unless told to (then it warns)
        'test_evaluator.on_uncovered=warn'
    ])
    assert proc.returncode == 0, explain(proc)
    assert 'the config has no tta_model' in proc.stderr, explain(proc)
    assert 'only 3 of them were evaluated' in proc.stderr, explain(proc)
    drawn = glob.glob(str(tmp_path / '*' / 'vis' / '*.jpg'))
    assert len(drawn) == 3, drawn


def test_test_moves_data_root(trained_dir, tmp_path):
    """``--cfg-options data_root=...`` also moves the dataloaders' roots and
    the evaluator's ann_file (mmembed.utils.config_utils.update_data_root)."""
    moved = tmp_path / 'moved'
    moved.symlink_to(DATA_ROOT, target_is_directory=True)
    new_root = f'{moved}/'
    work_dir = tmp_path / 'work'
    proc = run_tool([
        'tools/test.py', TINY_CONFIG,
        osp.join(trained_dir, 'iter_2.pth'), '--work-dir',
        str(work_dir), '--cfg-options', f'data_root={new_root}'
    ])
    assert proc.returncode == 0, explain(proc)
    # the runner dumps the config it ran with into the work dir
    from mmengine.config import Config
    dumped = Config.fromfile(str(work_dir / 'tiny_fcos_fruits.py'))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert dumped[key].dataset.data_root == new_root, key
    for key in ('val_evaluator', 'test_evaluator'):
        assert dumped[key].ann_file == f'{new_root}trainval.json', key


def test_test_rejects_non_pickle_out(trained_dir, tmp_path):
    proc = run_tool([
        'tools/test.py', TINY_CONFIG,
        osp.join(trained_dir, 'iter_2.pth'), '--out',
        str(tmp_path / 'res.json')
    ])
    assert proc.returncode == 2, explain(proc)
    assert '--out must name a .pkl or .pickle file' in proc.stderr


def test_resume_continues_from_iteration_2(trained_dir):
    proc = run_tool([
        'tools/train.py', TINY_CONFIG, '--work-dir', trained_dir, '--resume',
        '--cfg-options', 'train_cfg.max_iters=4', 'log_level=INFO'
    ])
    assert proc.returncode == 0, explain(proc)
    output = proc.stdout + proc.stderr
    assert 'Auto resumed from the latest checkpoint' in output, explain(proc)
    assert 'resumed epoch: 0, iter: 2' in output, explain(proc)
    # only iterations 3 and 4 ran
    assert 'Iter(train) [3/4]' in output and 'Iter(train) [1/4]' not in output
    checkpoint = _load_checkpoint(osp.join(trained_dir, 'iter_4.pth'))
    assert checkpoint['meta']['iter'] == 4


class _RunsShellCommand:
    """Unpickling this calls ``os.system(command)``."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command, ))


class _CustomObject:
    """A plain user class: pickled as a reference to this module."""

    def __init__(self) -> None:
        self.value = 42


@pytest.mark.parametrize('payload', ['os_system', 'custom_class'])
def test_test_refuses_unsafe_checkpoint(trained_dir, tmp_path, payload):
    marker = tmp_path / 'pwned'
    if payload == 'os_system':
        # control: plain unpickling does run the payload, so the marker
        # check below means something
        control = tmp_path / 'control'
        pickle.loads(pickle.dumps(_RunsShellCommand(f'touch {control}')))
        assert control.exists()
    # a real checkpoint with one extra, unsafe object in it
    checkpoint = _load_checkpoint(osp.join(trained_dir, 'iter_2.pth'))
    checkpoint['meta']['extra'] = (
        _RunsShellCommand(f'touch {marker}')
        if payload == 'os_system' else _CustomObject())
    evil = tmp_path / 'evil.pth'
    torch.save(checkpoint, str(evil))

    proc = run_tool([
        'tools/test.py', TINY_CONFIG,
        str(evil), '--work-dir',
        str(tmp_path / 'work')
    ])
    assert proc.returncode != 0, explain(proc)
    assert 'Refusing to load checkpoint' in proc.stderr, explain(proc)
    refused = 'posix.system' if payload == 'os_system' else '_CustomObject'
    assert refused in proc.stderr, explain(proc)
    assert 'Traceback' not in proc.stderr, explain(proc)
    assert not marker.exists(), 'the checkpoint payload was executed'
