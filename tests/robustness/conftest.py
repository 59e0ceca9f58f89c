# Copyright (c) mmembed authors. All rights reserved.
"""Per-model exemptions of the reliability suite.

A test that cannot apply to a model of ``MODEL_SPECS`` is named in that
spec's ``exempt`` with the reason; it is skipped for that model only, and
the skip says which model, which test and why (``pytest -rs`` lists them).
test_exemptions.py checks that every exemption names a test of the suite
and that its reason still holds.
"""
import pytest
from robustness_helpers import ModelSpec


@pytest.fixture(autouse=True)
def _model_exemption(request):
    callspec = getattr(request.node, 'callspec', None)
    spec = callspec.params.get('spec') if callspec is not None else None
    if not isinstance(spec, ModelSpec):
        return
    test = request.node.originalname
    reason = spec.exempt.get(test)
    if reason:
        pytest.skip(f'{spec.name} is exempt from {test}: {reason}')
