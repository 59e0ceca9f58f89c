# Copyright (c) mmembed authors. All rights reserved.
"""mmembed.utils.load_check: every mmengine checkpoint load reports how much
of the model it filled and refuses another model's checkpoint (issue 21,
item 4). The per-model cases are in tests/robustness/test_user_errors.py."""

import pytest
import torch
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import load_state_dict
from torch import nn

import mmembed  # noqa: F401  (installs the check)
from mmembed.utils.load_check import (ENV_ALLOW, CheckpointMismatchError,
                                      allow_partial_load, compare_state_dict)


class Detector(nn.Module):
    """backbone 8 x 8 conv (+ BN), head with a class conv."""

    def __init__(self, num_classes: int = 3, head: str = 'a') -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(8, 8, 3), nn.BatchNorm2d(8))
        self.bbox_head = nn.ModuleDict(
            dict(tower=nn.Conv2d(8, 8, 3), cls=nn.Conv2d(8, num_classes, 1)))
        if head == 'a':
            self.mask_head = nn.ModuleDict(
                dict(embed=nn.Conv2d(8, 4, 1), margin=nn.Conv2d(8, 1, 1)))
        else:
            self.mask_head = nn.ModuleDict(dict(bases=nn.Conv2d(8, 4, 1)))


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv(ENV_ALLOW, raising=False)


def test_report_counts_tensors_values_and_parts():
    report = compare_state_dict(Detector(), Detector(num_classes=5).state_dict())
    # 5 backbone tensors (conv w, b, BN w, b, mean, var: num_batches_tracked
    # is not counted), tower 2, cls 2 (other shape), mask head 4
    assert report.num_tensors == 14
    assert report.num_loaded == 12
    assert report.mismatched == ['bbox_head.cls.weight', 'bbox_head.cls.bias']
    assert report.parts['bbox_head'] == [2, 4]
    assert report.conflicting_parts() == []  # fine-tuning: class layer only
    assert '12 of 14 parameter tensors of Detector match' in report.summary()


def test_own_checkpoint_loads_and_says_so(tmp_path, capsys):
    path = tmp_path / 'own.pth'
    torch.save({'state_dict': Detector().state_dict()}, path)
    load_checkpoint(Detector(), str(path), map_location='cpu')
    assert '14 of 14 parameter tensors of Detector match (100.0%' in \
        capsys.readouterr().out


def test_other_models_checkpoint_is_refused_then_allowed(tmp_path):
    path = tmp_path / 'other.pth'
    torch.save({'state_dict': Detector(head='b').state_dict()}, path)
    model = Detector()
    before = model.mask_head['embed'].weight.clone()
    with pytest.raises(CheckpointMismatchError) as exc:
        load_checkpoint(model, str(path), map_location='cpu')
    text = str(exc.value)
    assert 'nothing for mask_head' in text
    assert 'Part mask_head would get fewer than half of its tensors' in text
    assert '--allow-partial-load' in text and ENV_ALLOW in text
    # refused before anything was copied
    torch.testing.assert_close(model.mask_head['embed'].weight, before)
    with allow_partial_load():
        load_checkpoint(model, str(path), map_location='cpu')
    assert ENV_ALLOW not in __import__('os').environ


def test_checkpoint_of_unrelated_keys_is_refused():
    state = {'conv1.weight': torch.zeros(8, 3, 7, 7)}  # an ImageNet backbone
    with pytest.raises(CheckpointMismatchError,
                       match='Fewer than 50% of the model'):
        load_state_dict(Detector(), state)


def test_a_new_part_without_leftover_weights_is_allowed():
    """Stage-wise training (DeepMask -> SharpMask): the checkpoint lacks a
    part of the model and has nothing the model cannot place."""
    state = Detector().state_dict()
    state = {k: v for k, v in state.items() if not k.startswith('mask_head')}
    load_state_dict(Detector(), state)
