# Copyright (c) mmembed authors. All rights reserved.
"""A new user's mistakes, for every model of MODEL_SPECS (issue 21, item 4):

* a misspelt head argument names our head, the bad key and the closest
  valid keys (not mmdet's ``AnchorFreeHead`` at the end of a long traceback);
* a misspelt ``test_cfg`` key is refused, not read as its default;
* a checkpoint of another model is refused with how much of the model it
  fills, unless partial loads are allowed; the model's own checkpoint
  loads and says it filled everything.
"""
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from mmengine.runner import load_checkpoint
from robustness_helpers import MODEL_IDS, MODEL_SPECS, ModelSpec, model_cfg

from mmembed.utils import CheckpointMismatchError, allow_partial_load
from mmembed.utils.arg_checks import UnknownArgumentError, UnknownKeyError
from mmembed.utils.load_check import ENV_ALLOW

# (path of a head config in `model`, a valid argument of that head) per
# family; each argument is misspelt by dropping its last letter
HEAD_ARGS = {
    'fcos': [('bbox_head', 'feat_channels'), ('mask_head', 'in_channels')],
    'istr': [('rpn_head', 'num_proposals'), ('roi_head', 'num_stages'),
             ('roi_head.bbox_head', 'num_heads')],
    'proposal': [('deepmask_head', 'code_channels'),
                 ('refine_head', 'mask_channels')],
}
# (path of the test_cfg the heads read, a valid key, its misspelling)
TEST_CFG_TYPOS = {
    'fcos': ('test_cfg', 'mask_thr', 'mask_trh'),
    'istr': ('test_cfg.rcnn', 'mask_thr_binary', 'mask_thr_binay'),
    'proposal': ('test_cfg', 'mask_thr', 'mask_trh'),
}


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv(ENV_ALLOW, raising=False)


def _node(cfg: ConfigDict, path: str) -> ConfigDict:
    for part in path.split('.'):
        cfg = cfg[part]
    return cfg


@pytest.mark.parametrize('spec', MODEL_SPECS, ids=MODEL_IDS)
def test_misspelt_head_argument_names_head_key_and_fix(spec):
    for path, key in HEAD_ARGS[spec.family]:
        cfg = model_cfg(spec)
        head = _node(cfg, path)
        typo = key[:-1]
        head[typo] = head.pop(key, 2)  # 2: when the config left the default
        with pytest.raises(UnknownArgumentError) as exc:
            MODELS.build(cfg)
        text = str(exc.value)
        assert text.startswith(f'{head.type} got unknown argument'), text
        assert f"'{typo}' (did you mean '{key}'" in text, text
        # mmdet's base classes are not what the user wrote
        assert 'AnchorFreeHead' not in text and 'DIIHead' not in text


@pytest.mark.parametrize('spec', MODEL_SPECS, ids=MODEL_IDS)
def test_misspelt_test_cfg_key_is_refused(spec):
    path, key, typo = TEST_CFG_TYPOS[spec.family]
    cfg = model_cfg(spec)
    test_cfg = _node(cfg, path)
    assert key in test_cfg or spec.family == 'istr'
    test_cfg[typo] = 0.4
    with pytest.raises(UnknownKeyError) as exc:
        MODELS.build(cfg)
    text = str(exc.value)
    assert f"'{typo}' (did you mean '{key}'" in text, text


def _parts(spec: ModelSpec) -> tuple:
    model = model_cfg(spec)
    return tuple(
        (model.get(key) or {}).get('type')
        for key in ('neck', 'mask_head', 'roi_head'))


def _donor(spec: ModelSpec) -> ModelSpec:
    """The first spec of another architecture: another mask head or RoI
    head. A neck alone does not make one: an FPN checkpoint loads into its
    SharpMaskFPN twin by design (all but the mask path's keys: the
    two-stage recipe of docs/sharpmask.md)."""
    return next(other for other in MODEL_SPECS
                if _parts(other)[1:] != _parts(spec)[1:])


def _build(spec: ModelSpec, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return MODELS.build(model_cfg(spec))


@pytest.mark.parametrize('spec', MODEL_SPECS, ids=MODEL_IDS)
def test_checkpoint_of_another_model_is_refused(spec, tmp_path, capsys):
    donor = _donor(spec)
    path = tmp_path / f'{donor.name}.pth'
    torch.save({'state_dict': _build(donor, 0).state_dict()}, path)
    model = _build(spec, 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # the path of init_detector, DetInferencer and the Runner
    with pytest.raises(CheckpointMismatchError) as exc:
        load_checkpoint(model, str(path), map_location='cpu')
    text = str(exc.value)
    assert f'parameter tensors of {type(model).__name__} match' in text
    assert 'probably of a different model' in text
    assert '--allow-partial-load' in text
    for key, value in model.state_dict().items():  # nothing was copied
        torch.testing.assert_close(value, before[key], msg=key)

    capsys.readouterr()
    with allow_partial_load():
        load_checkpoint(model, str(path), map_location='cpu')
    assert f'parameter tensors of {type(model).__name__} match' in \
        capsys.readouterr().out


@pytest.mark.parametrize('spec', MODEL_SPECS, ids=MODEL_IDS)
def test_own_checkpoint_reports_a_full_load(spec, tmp_path, capsys):
    model = _build(spec, 0)
    path = tmp_path / 'own.pth'
    torch.save({'state_dict': model.state_dict()}, path)
    capsys.readouterr()
    load_checkpoint(_build(spec, 1), str(path), map_location='cpu')
    num = sum(1 for key in model.state_dict()
              if not key.endswith('num_batches_tracked'))
    assert f'{num} of {num} parameter tensors of {type(model).__name__} ' \
        'match (100.0%' in capsys.readouterr().out
