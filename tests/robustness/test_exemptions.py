# Copyright (c) mmembed authors. All rights reserved.
"""The per-model exemptions of the reliability suite (``ModelSpec.exempt``,
skipped with their reason by conftest.py): each names a test of the suite
that runs per model, says why, and its reason is checked here, so an
exemption that no longer holds fails instead of hiding a test.
"""
import ast
import glob
import os.path as osp
from typing import Callable, Dict, List, Tuple

import numpy as np
import pytest
from mmdet.registry import TRANSFORMS
from mmdet.structures.mask import BitmapMasks
from robustness_helpers import MODEL_SPECS, ModelSpec, model_train_pipeline

from mmembed.testing import get_config_root

HERE = osp.dirname(osp.abspath(__file__))


def per_model_tests() -> set:
    """Names of the suite's test functions that take a model (``spec``)."""
    names = set()
    for path in glob.glob(osp.join(HERE, 'test_*.py')):
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and \
                    node.name.startswith('test_') and \
                    'spec' in [a.arg for a in node.args.args]:
                names.add(node.name)
    return names


def _no_amp_twin(spec: ModelSpec) -> None:
    amp = osp.join(get_config_root(), spec.config.replace('.py', '_amp.py'))
    assert not osp.isfile(amp), f'{amp} exists: drop the exemption'


def _no_patch_without_an_object(spec: ModelSpec) -> None:
    """The model trains on patches of its sampler, which samples masks
    only (hfreq 0) and cuts nothing from an image whose every GT is
    crowd."""
    pipeline = model_train_pipeline(spec)
    assert pipeline is not None, 'the model trains on whole images'
    step, = [s for s in pipeline if s['type'] == 'DeepMaskPatchSampler']
    assert step['hfreq'] == 0
    sampler = TRANSFORMS.build(step)
    masks = np.zeros((2, 96, 96), np.uint8)
    masks[0, 10:50, 10:60] = masks[1, 40:90, 30:80] = 1
    np.random.seed(0)
    for crowd in ((True, True), (False, True)):
        out = sampler.transform(dict(
            img=np.zeros((96, 96, 3), np.uint8),
            gt_bboxes=np.array([[10, 10, 60, 50], [30, 40, 80, 90]],
                               np.float32),
            gt_masks=BitmapMasks(masks, 96, 96),
            gt_ignore_flags=np.array(crowd)))
        if all(crowd):
            assert out is None
        else:  # one non-crowd object: one patch with one label mask
            assert out['patch_has_mask'] and len(out['gt_masks']) == 1


# exemption (test name) -> the check that its reason holds for a spec
CHECKS: Dict[str, Callable[[ModelSpec], None]] = {
    'test_amp_config_exists_and_uses_amp_optim_wrapper': _no_amp_twin,
    'test_train_step_every_gt_crowd': _no_patch_without_an_object,
}
EXEMPTIONS: List[Tuple[ModelSpec, str]] = [
    (spec, test) for spec in MODEL_SPECS for test in spec.exempt
]


def test_every_exemption_names_a_per_model_test_and_says_why():
    tests = per_model_tests()
    assert 'test_train_step_every_gt_crowd' in tests  # the parser works
    for spec in MODEL_SPECS:
        for test, reason in spec.exempt.items():
            assert test in tests, (spec.name, test)
            assert len(reason.split()) >= 10, (spec.name, test, reason)
        # an exemption is the exception: most of the suite runs
        assert len(spec.exempt) < len(tests) / 4, spec.name


@pytest.mark.parametrize('spec_test', EXEMPTIONS,
                         ids=[f'{s.name}-{t}' for s, t in EXEMPTIONS])
def test_exemption_reason_still_holds(spec_test):
    spec, test = spec_test
    assert test in CHECKS, f'add a check of why {spec.name} skips {test}'
    CHECKS[test](spec)
