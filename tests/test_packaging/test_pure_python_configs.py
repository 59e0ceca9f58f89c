# Copyright (c) mmembed authors. All rights reserved.
"""The pure-Python configs in mmembed/configs resolve to the same settings
as their classic twins in configs/, and mmdet's own tools/train.py trains
one (from an installed wheel, outside the checkout) for 2 iterations."""
import glob
import json
import os.path as osp

import mmdet
import pytest
from mmengine.config import Config
from packaging_helpers import REPO, explain, run

# (classic config, its pure-Python twin); module names cannot hold '-'
PAIRS = [
    ('embedmask/embedmask_r50_fpn_1x_coco', ) * 2,
    ('embedmask/embedmask_r50_fpn_v3_1x_coco', ) * 2,
    ('embedmask/embedmask_r50_fpn_ms-3x_coco',
     'embedmask/embedmask_r50_fpn_ms_3x_coco'),
    ('embedmask/embedmask_r101_3x', ) * 2,
    ('embedmask/embedmask_r18_fpn_synthetic', ) * 2,
]
# keys only the classic configs have: custom_imports is how a classic config
# imports mmembed; a pure-Python config imports it through its `type`s
CLASSIC_ONLY = {'custom_imports'}
MMDET_TOOLS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools')


def normalize(value):
    """Classes (pure-Python `type=Cls`) and registry strings ('Cls',
    'mmdet.Cls') both become 'Cls'; tuples become lists; mmengine's
    internal `_scope_` keys are dropped."""
    if isinstance(value, dict):
        return {
            key: normalize(item)
            for key, item in value.items() if key != '_scope_'
        }
    if isinstance(value, (list, tuple)):
        return [normalize(item) for item in value]
    if isinstance(value, type):
        return value.__name__
    if isinstance(value, str) and value.startswith('mmdet.'):
        return value[len('mmdet.'):]
    return value


@pytest.mark.parametrize('name,pure_name', PAIRS, ids=[p[0] for p in PAIRS])
def test_pure_python_config_equals_classic(name, pure_name):
    classic = Config.fromfile(osp.join(REPO, 'configs', f'{name}.py'))
    pure = Config.fromfile(
        osp.join(REPO, 'mmembed', 'configs', f'{pure_name}.py'))
    keys = set(classic.keys()) - CLASSIC_ONLY
    missing = sorted(keys - set(pure.keys()))
    assert not missing, f'{name}: the pure-Python config lacks {missing}'
    assert 'model' in keys and 'train_dataloader' in keys
    for key in sorted(keys):
        assert normalize(pure[key]) == normalize(classic[key]), \
            f'{name}: {key} differs between the classic and pure configs'


def test_comparison_sees_a_difference():
    """The check above would notice a drift (it is not vacuous)."""
    classic = Config.fromfile(
        osp.join(REPO, 'configs', f'{PAIRS[0][0]}.py'))
    pure = Config.fromfile(
        osp.join(REPO, 'mmembed', 'configs', f'{PAIRS[0][1]}.py'))
    assert normalize(pure.model) == normalize(classic.model)
    pure.model.mask_head.loss_mask.loss_weight = 0.25
    assert normalize(pure.model) != normalize(classic.model)
    # every pure-Python config under mmembed/configs/embedmask has a twin
    shipped = {
        f'embedmask/{osp.splitext(osp.basename(f))[0]}'
        for f in glob.glob(
            osp.join(REPO, 'mmembed', 'configs', 'embedmask', '*.py'))
    } - {'embedmask/__init__'}
    assert shipped == {pure_name for _, pure_name in PAIRS}


PURE_USER_CONFIG = '''\
from mmengine.config import read_base
from mmengine.dataset import InfiniteSampler
from mmengine.optim import ConstantLR
from mmengine.runner import IterBasedTrainLoop

with read_base():
    from mmembed.configs.embedmask.embedmask_r18_fpn_synthetic import *

data_root = '{DATA}'
train_dataloader.update(
    dict(batch_size=2, num_workers=0, persistent_workers=False,
         sampler=dict(type=InfiniteSampler, shuffle=True),
         dataset=dict(data_root=data_root)))
val_dataloader.update(
    dict(batch_size=2, num_workers=0, persistent_workers=False,
         dataset=dict(data_root=data_root)))
test_dataloader = val_dataloader
val_evaluator.update(dict(ann_file=data_root + 'annotations/val.json'))
test_evaluator = val_evaluator
train_cfg = dict(type=IterBasedTrainLoop, max_iters=2, val_interval=1000)
param_scheduler = [
    dict(type=ConstantLR, factor=1.0, by_epoch=False, begin=0, end=2)]
default_hooks.update(
    dict(logger=dict(interval=1),
         checkpoint=dict(by_epoch=False, interval=2)))
log_processor.update(dict(by_epoch=False))
'''


@pytest.mark.slow
def test_mmdet_train_runs_a_pure_python_config(site_dir, synthetic_root,
                                               tmp_path):
    """No custom_imports and no pre-import: the read_base import finds the
    installed mmembed, and the `type`s import it when the model is built."""
    train_py = osp.join(MMDET_TOOLS, 'train.py')
    if not osp.isfile(train_py):
        pytest.skip(f'mmdet ships no tools/train.py at {train_py}')
    user_cfg = tmp_path / 'my_pure_embedmask.py'
    user_cfg.write_text(PURE_USER_CONFIG.format(DATA=synthetic_root))
    proc = run([train_py, str(user_cfg), '--work-dir', 'work'],
               cwd=str(tmp_path),
               pythonpath=[site_dir])
    assert proc.returncode == 0, explain(proc)
    assert osp.isfile(tmp_path / 'work' / 'iter_2.pth')
    scalars = glob.glob(str(tmp_path / 'work' / '*' / 'vis_data' /
                            'scalars.json'))
    with open(scalars[0]) as f:
        logs = [json.loads(line) for line in f if '"loss"' in line]
    assert [log['iter'] for log in logs] == [1, 2]
    assert all(log['loss_mask'] > 0 for log in logs)
    # the model code came from the installed wheel, not the checkout
    check = run([
        '-c', 'import mmembed.configs, mmembed; print(mmembed.__file__)'
    ],
                cwd=str(tmp_path),
                pythonpath=[site_dir])
    assert check.stdout.strip().startswith(site_dir), explain(check)
