# Copyright (c) mmembed authors. All rights reserved.
"""Faults during training, for every model in MODEL_SPECS: a loss that
becomes NaN, a run SIGKILLed mid-run and resumed, checkpoints written
atomically, truncated checkpoints.

(Checkpoints with unexpected pickled objects are refused with
``UnsafeCheckpointError``: tests/test_tools/test_train_test_resume.py::
test_test_refuses_unsafe_checkpoint, not repeated here.)
"""
import glob
import json
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from mmengine.config import Config
from robustness_helpers import (CLASSES, MODEL_IDS, MODEL_SPECS, image,
                                loss_to_poison, model_train_pipeline,
                                write_coco)

from mmembed.engine import atomic_write_bytes
from mmembed.engine.hooks import NonFiniteLossError, StopOnNonFiniteLossHook
from mmembed.testing import get_config_root, get_repo_root
from mmembed.utils import CorruptCheckpointError, safe_torch_load

HERE = osp.dirname(osp.abspath(__file__))
_VENV_PYTHON = osp.join(get_repo_root(), '.venv', 'bin', 'python')
PYTHON = _VENV_PYTHON if osp.isfile(_VENV_PYTHON) else sys.executable


@pytest.fixture(params=MODEL_SPECS, ids=MODEL_IDS)
def spec(request):
    return request.param


def _tiny_set(root: str) -> None:
    images = [image(i) for i in range(1, 5)]
    anns = []
    for i in range(1, 5):
        anns.append(dict(image_id=i, category_id=1, bbox=[6, 8, 24, 20]))
        anns.append(dict(image_id=i, category_id=2, bbox=[30, 30, 26, 28]))
    write_coco(root, images, anns)


PLAIN_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs'),
]


def train_pipeline(spec) -> list:
    """What the written configs train on: the images as they are, or the
    model's own patch pipeline (the proposal model) with the sampler's
    draws made irrelevant. The loop loads the first batch after a resume
    before any hook can re-seed (IterationSeedHook's stated limit), so a
    random crop would change that batch, not the resumed state this file
    tests: no scale jitter, shift or flip, and only the larger object of
    each image (728 px, the other 480) eligible."""
    pipeline = model_train_pipeline(spec)
    if pipeline is None:
        return PLAIN_PIPELINE
    for step in pipeline:
        if step['type'] == 'DeepMaskPatchSampler':
            step.update(scale_jitter=0., shift=0., flip_prob=0.,
                        min_area=600.)
    return pipeline


def write_train_config(tmp_path, spec, max_iters: int = 6,
                       ckpt_interval: int = 2) -> str:
    """A config file: ``spec``'s small config on a 4-image 64x64 set, an
    iteration loop, a checkpoint every ``ckpt_interval`` iterations, fixed
    seed and deterministic algorithms, no validation."""
    data_root = str(tmp_path / 'data')
    _tiny_set(data_root)
    base = osp.join(get_config_root(), spec.config)
    text = f'''
_base_ = {base!r}
custom_imports = dict(imports=['mmembed', 'hang_hook'],
                      allow_failed_imports=False)
train_dataloader = dict(
    _delete_=True, batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='CocoDataset', data_root={data_root + '/'!r},
        ann_file='annotations/train.json', data_prefix=dict(img='train/'),
        metainfo=dict(classes={CLASSES!r}), filter_cfg=None,
        pipeline={train_pipeline(spec)!r}))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop',
                 max_iters={max_iters})
param_scheduler = [dict(type='LinearLR', start_factor=0.5, by_epoch=False,
                        begin=0, end={max_iters})]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', by_epoch=False,
                    interval={ckpt_interval}, max_keep_ckpts=-1))
custom_hooks = [dict(type='HangAfterCheckpointHook'),
                dict(type='StopOnNonFiniteLossHook'),
                dict(type='IterationSeedHook')]
log_processor = dict(by_epoch=False, window_size=1)
randomness = dict(seed=0, deterministic=True)
'''
    text += spec.model_update_text(len(CLASSES)) + spec.config_text
    path = tmp_path / f'{spec.name}_faults.py'
    path.write_text(text)
    return str(path)


def _env(extra=None):
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [HERE, env.get('PYTHONPATH', '')]).rstrip(os.pathsep)
    env['OMP_NUM_THREADS'] = '1'
    env.update(extra or {})
    return env


def _train_cmd(cfg: str, work_dir: str, *extra: str) -> list:
    return [PYTHON, 'tools/train.py', cfg, '--work-dir', work_dir, *extra]


def _losses_by_iter(work_dir: str) -> dict:
    """iteration -> logged total loss, from every run in ``work_dir``."""
    losses = {}
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if 'loss' in record and 'iter' in record:
                    losses[record['iter']] = record['loss']
    return losses


def _run(cmd, env, timeout=240) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=get_repo_root(), env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (proc.args, proc.stdout[-2000:],
                                  proc.stderr[-4000:])
    return proc


# --------------------------------------------------------------------- #
# SIGKILL mid-run, then --resume
# --------------------------------------------------------------------- #
@pytest.mark.slow
def test_sigkill_and_resume_reproduce_the_loss_curve(tmp_path, spec):
    """6 iterations, a checkpoint every 2. Run A: uninterrupted. Run B:
    SIGKILLed right after iter_4.pth is saved (a hook writes a marker and
    waits), then ``--resume``. B's losses at iterations 5 and 6 equal A's
    (relative tolerance 1e-5: the same ops in the same order), and every
    checkpoint B left loads."""
    cfg = write_train_config(tmp_path, spec)
    full_dir = str(tmp_path / 'full')
    # run A beside run B (one thread each): the two runs are independent
    # and the test takes two process lifetimes instead of three
    full_log = open(tmp_path / 'full.log', 'w')
    full = subprocess.Popen(_train_cmd(cfg, full_dir), cwd=get_repo_root(),
                            env=_env(), stdout=full_log,
                            stderr=subprocess.STDOUT)
    try:
        _kill_and_resume(tmp_path, cfg)
        full.wait(timeout=240)
    finally:
        if full.poll() is None:
            full.kill()
            full.wait()
        full_log.close()
    assert full.returncode == 0, (tmp_path / 'full.log').read_text()[-4000:]
    want = _losses_by_iter(full_dir)
    assert sorted(want) == list(range(1, 7)), want
    got = _losses_by_iter(str(tmp_path / 'killed'))
    assert sorted(got) == list(range(1, 7)), got
    for it in range(1, 7):
        assert got[it] == pytest.approx(want[it], rel=1e-5, abs=1e-7), (
            it, got, want)


def _kill_and_resume(tmp_path, cfg: str) -> None:
    """Run B: SIGKILL after iter_4.pth is saved, check the checkpoints,
    ``--resume``."""
    killed_dir = str(tmp_path / 'killed')
    marker = tmp_path / 'hang_marker'
    proc = subprocess.Popen(
        _train_cmd(cfg, killed_dir), cwd=get_repo_root(),
        env=_env({'MMEMBED_HANG_AT_ITER': '4',
                  'MMEMBED_HANG_MARKER': str(marker)}),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(f'run ended before the kill point: '
                            f'{proc.stderr.read()[-4000:]}')
            if time.monotonic() > deadline:
                pytest.fail('no checkpoint at iteration 4 within 240 s')
            time.sleep(0.2)  # polling only; the kill point is the marker
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    for step in (2, 4):
        ckpt = safe_torch_load(osp.join(killed_dir, f'iter_{step}.pth'))
        assert ckpt['meta']['iter'] == step
    assert not glob.glob(osp.join(killed_dir, '.*.tmp'))

    resumed = _run(_train_cmd(cfg, killed_dir, '--resume'), _env())
    assert 'resumed epoch: 0, iter: 4' in resumed.stdout + resumed.stderr


@pytest.mark.slow
def test_sigkill_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path):
    """A real training process is SIGKILLed inside the write of
    iter_4.pth (temporary file complete and fsynced, rename not done:
    tests/robustness/kill_in_write.py). iter_2.pth and last_checkpoint are
    intact, no iter_4.pth exists (neither a truncated one), and --resume
    continues from iteration 2 with the uninterrupted run's losses. The
    writer is the same for every model: one model is enough."""
    spec = MODEL_SPECS[0]
    cfg = write_train_config(tmp_path, spec)
    text = open(cfg).read().replace("'hang_hook']", "'hang_hook', "
                                    "'kill_in_write']")
    open(cfg, 'w').write(text)
    full_dir = str(tmp_path / 'full')
    _run(_train_cmd(cfg, full_dir), _env())
    want = _losses_by_iter(full_dir)

    killed_dir = str(tmp_path / 'killed')
    proc = subprocess.run(
        _train_cmd(cfg, killed_dir), cwd=get_repo_root(),
        env=_env({'MMEMBED_KILL_IN_WRITE': 'iter_4.pth'}),
        capture_output=True, text=True, timeout=240)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert not osp.exists(osp.join(killed_dir, 'iter_4.pth'))
    leftovers = glob.glob(osp.join(killed_dir, '.iter_4.pth.*.tmp'))
    assert len(leftovers) == 1  # never read; the next save makes another
    ckpt = safe_torch_load(osp.join(killed_dir, 'iter_2.pth'))
    assert ckpt['meta']['iter'] == 2
    with open(osp.join(killed_dir, 'last_checkpoint')) as f:
        assert f.read().strip().endswith('iter_2.pth')

    resumed = _run(_train_cmd(cfg, killed_dir, '--resume'), _env())
    assert 'resumed epoch: 0, iter: 2' in resumed.stdout + resumed.stderr
    got = _losses_by_iter(killed_dir)
    for it in range(1, 7):
        assert got[it] == pytest.approx(want[it], rel=1e-5, abs=1e-7), (
            it, got, want)
    assert safe_torch_load(osp.join(killed_dir, 'iter_4.pth'))['meta'][
        'iter'] == 4


# --------------------------------------------------------------------- #
# a loss that becomes NaN
# --------------------------------------------------------------------- #
class _FakeRunner:
    iter = 4
    epoch = 0


def test_non_finite_loss_hook_names_iteration_and_term():
    hook = StopOnNonFiniteLossHook()
    outputs = dict(loss=torch.tensor(float('nan')),
                   loss_cls=torch.tensor(0.5),
                   loss_mask=torch.tensor(float('inf')),
                   acc=torch.tensor(float('nan')))  # not a loss: ignored
    with pytest.raises(NonFiniteLossError) as info:
        hook.after_train_iter(_FakeRunner(), 3, None, outputs)
    message = str(info.value)
    assert 'iteration 5' in message and 'loss_mask=inf' in message
    assert 'loss_cls' not in message and 'acc' not in message
    # finite losses pass
    hook.after_train_iter(_FakeRunner(), 3, None,
                          dict(loss=torch.tensor(1.0)))


def test_nan_loss_stops_training_at_that_iteration(tmp_path, spec):
    """A real loss term (the box head's centerness; ISTR: the last stage's
    mask-code loss) turns NaN at iteration 2 of a real
    run: the runner stops there, naming the iteration and the term, and no
    checkpoint holds the poisoned weights."""
    from mmengine.runner import Runner
    cfg = Config.fromfile(write_train_config(tmp_path, spec, max_iters=4,
                                             ckpt_interval=1))
    cfg.custom_hooks = [dict(type='StopOnNonFiniteLossHook')]
    cfg.work_dir = str(tmp_path / 'work')
    runner = Runner.from_cfg(cfg)
    head, method, key = loss_to_poison(runner.model, spec)
    loss_fn = getattr(head, method)

    def poisoned(*args, **kwargs):
        losses = loss_fn(*args, **kwargs)
        assert key in losses, sorted(losses)
        if runner.iter == 1:  # the second iteration
            losses[key] = losses[key] * float('nan')
        return losses

    setattr(head, method, poisoned)
    with pytest.raises(NonFiniteLossError,
                       match=rf'iteration 2 .*{re.escape(key)}=nan'):
        runner.train()
    saved = sorted(os.listdir(cfg.work_dir))
    assert 'iter_1.pth' in saved and 'iter_2.pth' not in saved, saved


# --------------------------------------------------------------------- #
# checkpoint files
# --------------------------------------------------------------------- #
def test_atomic_write_keeps_old_file_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / 'iter_2.pth'
    atomic_write_bytes(b'old complete checkpoint', target)

    def crash(fd):
        raise KeyboardInterrupt  # the process dies mid-write

    monkeypatch.setattr(os, 'fsync', crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(b'new' * 1000, target)
    assert target.read_bytes() == b'old complete checkpoint'
    assert os.listdir(tmp_path) == ['iter_2.pth']  # temp file removed


def test_mmengine_checkpoints_are_written_atomically(tmp_path, monkeypatch):
    """mmengine's save_checkpoint goes through the atomic writer (mmembed
    patches LocalBackend.put on import)."""
    from mmengine.runner.checkpoint import save_checkpoint
    calls = []
    original = os.replace
    monkeypatch.setattr(os, 'replace',
                        lambda a, b: (calls.append((a, b)), original(a, b)))
    path = str(tmp_path / 'iter_1.pth')
    save_checkpoint({'state_dict': {'w': torch.ones(2)}}, path)
    assert len(calls) == 1 and calls[0][1] == path
    assert osp.basename(calls[0][0]).startswith('.iter_1.pth.')
    assert oct(os.stat(path).st_mode & 0o777) != oct(0o600)
    assert torch.equal(safe_torch_load(path)['state_dict']['w'],
                       torch.ones(2))


@pytest.mark.parametrize('keep', [0.0, 0.001, 0.5, 0.999])
def test_truncated_checkpoint_gives_clear_error(tmp_path, keep):
    from mmengine.runner import CheckpointLoader
    path = tmp_path / 'iter_4.pth'
    torch.save({'state_dict': {'w': torch.randn(64, 64)},
                'meta': {'iter': 4}}, path)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(CorruptCheckpointError,
                       match=r"iter_4\.pth'.*(empty|truncated)"):
        safe_torch_load(str(path))
    # the path mmengine's runner (load_from / --resume) and init_detector use
    with pytest.raises(CorruptCheckpointError):
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
