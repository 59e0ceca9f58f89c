# Copyright (c) mmembed authors. All rights reserved.
"""tools/misc/print_config.py prints every config in configs/ and
mmembed/configs/, both styles (issue 21, item 3: the pure-Python ones failed
with "SyntaxError: Failed to format the config file")."""
import glob
import importlib.util
import os.path as osp

import pytest
from tool_test_helpers import REPO_ROOT

CONFIGS = sorted(
    osp.relpath(path, REPO_ROOT)
    for root in ('configs', osp.join('mmembed', 'configs'))
    for path in glob.glob(osp.join(REPO_ROOT, root, '**', '*.py'),
                          recursive=True)
    if osp.basename(path) != '__init__.py')


def _print_config_module():
    spec = importlib.util.spec_from_file_location(
        'print_config', osp.join(REPO_ROOT, 'tools/misc/print_config.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PRINT_CONFIG = _print_config_module()


def test_both_config_styles_are_found():
    assert 'mmembed/configs/embedmask/embedmask_r50_fpn_1x_coco.py' in CONFIGS
    assert 'configs/embedmask/embedmask_r50_fpn_1x_coco.py' in CONFIGS


@pytest.mark.parametrize('config', CONFIGS)
def test_print_config(config, capsys, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    PRINT_CONFIG.main([config])
    out = capsys.readouterr().out
    assert out.startswith('Config:\n'), out[:500]
    # what is printed is a config again: valid Python, no '<class ...>'
    compile(out[len('Config:\n'):], config, 'exec')
    assert '<class ' not in out


def test_pure_python_config_saves_as_py_json_and_yaml(tmp_path, capsys,
                                                      monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    config = 'mmembed/configs/embedmask/embedmask_r50_fpn_1x_coco.py'
    for ext in ('py', 'json', 'yml'):
        PRINT_CONFIG.main([
            config, '--save-path', str(tmp_path / f'full.{ext}'),
            '--cfg-options', 'model.bbox_head.num_classes=3'
        ])
        assert (tmp_path / f'full.{ext}').is_file()
    assert 'num_classes=3' in capsys.readouterr().out


def test_missing_config_says_where_relative_paths_resolve(capsys,
                                                          monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    with pytest.raises(SystemExit) as exc:
        PRINT_CONFIG.main(['configs/embedmask/embedmask_r50_fpn_1x_cooc.py'])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert 'does not exist (relative paths are resolved from' in err
    assert "did you mean 'configs/embedmask/embedmask_r50_fpn_1x_coco.py'" \
        in err
