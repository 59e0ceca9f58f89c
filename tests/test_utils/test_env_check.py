# Copyright (c) mmembed authors. All rights reserved.
"""`import mmembed` explains a broken OpenMMLab stack instead of failing deep
inside mmdet."""
from importlib import metadata

import pytest

from mmembed.utils import env_check


def fake_versions(monkeypatch, **versions):
    real = metadata.version

    def version(dist):
        if dist in versions:
            if versions[dist] is None:
                raise metadata.PackageNotFoundError(dist)
            return versions[dist]
        return real(dist)

    monkeypatch.setattr(env_check.metadata, 'version', version)


def test_current_environment_has_no_problem():
    assert env_check.find_dependency_problems() == []
    env_check.check_dependencies()


def test_mmcv_22_is_reported_with_the_fix(monkeypatch):
    fake_versions(monkeypatch, mmcv='2.2.0')
    problems = env_check.find_dependency_problems()
    assert len(problems) == 1
    assert 'mmcv==2.2.0 is installed but mmembed needs mmcv>=2.0.0rc4,<2.2.0' \
        in problems[0]
    assert 'MMCV_WITH_OPS=1' in problems[0]
    with pytest.raises(ImportError, match='mmembed cannot be imported'):
        env_check.check_dependencies()


def test_missing_and_old_packages_are_all_listed(monkeypatch):
    fake_versions(monkeypatch, mmdet=None, torch='2.0.1+cpu',
                  mmengine='0.9.0')
    problems = env_check.find_dependency_problems()
    assert any(p.startswith('mmdet is not installed') for p in problems)
    assert any(p.startswith('torch==2.0.1+cpu is installed') for p in problems)
    assert any(p.startswith('mmengine==0.9.0') for p in problems)


def test_mmcv_without_compiled_ops_is_reported(monkeypatch):
    from mmcv.utils import ext_loader

    def no_ext(name, funcs):
        raise ModuleNotFoundError("No module named 'mmcv._ext'")

    monkeypatch.setattr(ext_loader, 'load_ext', no_ext)
    problems = env_check.find_dependency_problems()
    assert len(problems) == 1
    assert 'without its compiled ops' in problems[0]
    assert '--no-build-isolation' in problems[0]
