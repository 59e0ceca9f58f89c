# Copyright (c) mmembed authors. All rights reserved.
"""mmembed.utils.mim (the mmembed:: scope) and mmembed.cli, in-process."""
import os.path as osp

import mmengine.config.config as config_module
import pytest
from mmengine.config import Config
from mmengine.config import utils as config_utils
from packaging_helpers import REPO

import mmembed
from mmembed import cli
from mmembed.utils import mim


def test_import_registers_the_scope():
    assert config_utils.MODULE2PACKAGE['mmembed'] == 'mmembed'
    assert config_utils.PKG2PROJECT is config_utils.MODULE2PACKAGE
    mim.register_mim_package()  # idempotent
    assert config_utils.MODULE2PACKAGE['mmembed'] == 'mmembed'


def test_conflicting_registration_is_an_error(monkeypatch):
    monkeypatch.setitem(config_utils.MODULE2PACKAGE, 'mmembed', 'other-dist')
    with pytest.raises(RuntimeError, match='other-dist'):
        mim.register_mim_package()


def test_installed_path_is_the_imported_package():
    package_dir = osp.dirname(osp.abspath(mmembed.__file__))
    assert config_module.get_installed_path('mmembed') == package_dir
    # other packages are still answered by mmengine
    import mmdet
    assert osp.realpath(config_module.get_installed_path('mmdet')) == \
        osp.realpath(osp.dirname(mmdet.__file__))
    # routing twice does not stack wrappers
    before = config_module.get_installed_path
    mim._route_installed_path()
    assert config_module.get_installed_path is before


def test_scope_base_resolves_in_this_install(tmp_path):
    """The editable install links mmembed/.mim/configs to configs/."""
    try:
        mim.mim_dir()
    except FileNotFoundError as exc:
        pytest.skip(f'this mmembed install has no .mim: {exc}')
    cfg_file = tmp_path / 'user.py'
    cfg_file.write_text(
        "_base_ = 'mmembed::embedmask/embedmask_r50_fpn_v3_1x_coco.py'\n"
        'model = dict(bbox_head=dict(num_classes=7))\n')
    cfg = Config.fromfile(str(cfg_file))
    assert cfg.model.type == 'EmbedMask'
    assert cfg.model.bbox_head.num_classes == 7
    assert cfg.model.bbox_head.embed_dim == 16  # from the v3 keys base


def test_cli_usage_and_unknown_command(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([])
    assert exc.value.code == 2
    assert 'train' in capsys.readouterr().out
    with pytest.raises(SystemExit, match="unknown command 'trian'"):
        cli.main(['trian'])


@pytest.mark.parametrize('command', sorted(cli.COMMANDS))
def test_cli_commands_point_at_shipped_scripts(command):
    # setup.py ships tools/ and demo/ as mmembed/.mim/{tools,demo}
    assert osp.isfile(osp.join(REPO, cli.COMMANDS[command])), command
