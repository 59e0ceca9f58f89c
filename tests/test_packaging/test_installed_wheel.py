# Copyright (c) mmembed authors. All rights reserved.
"""mmembed used from another folder, as an installed wheel.

Everything runs in a temporary folder outside the checkout, with
``PYTHONPATH`` = the wheel's install target only, and checks that the
imported mmembed is the installed one:

* the wheel carries ``mmembed/.mim/{configs,tools,demo,model-index.yml}``
  and the pure-Python configs;
* a user config with ``_base_ = 'mmembed::embedmask/...'`` is trained for
  2 iterations with the installed ``.mim/tools/train.py`` (what
  ``mim train mmembed`` runs) and tested with ``python -m mmembed.cli
  test``;
* mmdet's own ``tools/train.py`` cannot read that config (documented in
  docs/use_in_your_project.md; this test notices when that changes).
"""
import glob
import json
import os.path as osp
import zipfile

import mmdet
import pytest
from packaging_helpers import SHORT_RUN, explain, run

pytestmark = pytest.mark.slow

BASE = 'mmembed::embedmask/embedmask_r18_fpn_synthetic.py'
MMDET_TOOLS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools')


def write_user_config(folder, data_root: str) -> str:
    path = osp.join(str(folder), 'my_embedmask.py')
    with open(path, 'w') as f:
        f.write(f"_base_ = '{BASE}'\n"
                "model = dict(bbox_head=dict(num_classes=4))\n" +
                SHORT_RUN.format(DATA=data_root))
    return path


def test_wheel_contents(wheel_file):
    names = set(zipfile.ZipFile(wheel_file).namelist())
    for expected in [
            'mmembed/.mim/model-index.yml',
            'mmembed/.mim/configs/embedmask/embedmask_r50_fpn_1x_coco.py',
            'mmembed/.mim/configs/embedmask/metafile.yml',
            'mmembed/.mim/configs/_base_/models/embedmask_r50_fpn.py',
            'mmembed/.mim/tools/train.py',
            'mmembed/.mim/tools/tool_utils.py',
            'mmembed/.mim/tools/deployment/export_onnx.py',
            'mmembed/.mim/demo/image_demo.py',
            'mmembed/configs/embedmask/embedmask_r50_fpn_1x_coco.py',
            'mmembed/deployment/export.py',
            'mmembed/cli.py',
    ]:
        assert expected in names, expected
    assert not any(n.startswith(('tests/', 'configs/', 'tools/'))
                   for n in names)
    assert not any('__pycache__' in n for n in names)
    entry_points = [n for n in names if n.endswith('entry_points.txt')]
    assert entry_points
    text = zipfile.ZipFile(wheel_file).read(entry_points[0]).decode()
    assert 'mmembed = mmembed.cli:main' in text


def test_scope_resolves_to_the_installed_configs(site_dir, synthetic_root,
                                                 tmp_path):
    user_cfg = write_user_config(tmp_path, synthetic_root)
    coco_cfg = tmp_path / 'my_coco.py'
    coco_cfg.write_text(
        "_base_ = 'mmembed::embedmask/embedmask_r50_fpn_1x_coco.py'\n")
    code = ('import mmembed, json\n'
            'from mmengine.config import Config\n'
            'from mmengine.config.utils import MODULE2PACKAGE\n'
            f'cfg = Config.fromfile({user_cfg!r})\n'
            f'coco = Config.fromfile({str(coco_cfg)!r})\n'
            'print(json.dumps(dict(file=mmembed.__file__, '
            'table=MODULE2PACKAGE.get("mmembed"), type=cfg.model.type, '
            'classes=cfg.model.bbox_head.num_classes, '
            'scope=cfg.default_scope, depth=coco.model.backbone.depth, '
            'coco_classes=coco.model.bbox_head.num_classes, '
            'lr=coco.optim_wrapper.optimizer.lr)))\n')
    proc = run(['-c', code], cwd=str(tmp_path), pythonpath=[site_dir])
    assert proc.returncode == 0, explain(proc)
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info['file'].startswith(site_dir), info
    assert info['table'] == 'mmembed'
    assert (info['type'], info['classes'], info['scope']) == ('EmbedMask', 4,
                                                             'mmdet')
    assert (info['depth'], info['coco_classes'], info['lr']) == (50, 80,
                                                                 0.01)


@pytest.fixture(scope='module')
def trained(site_dir, synthetic_root, tmp_path_factory):
    """2 iterations with the installed tools/train.py (mim-style)."""
    folder = tmp_path_factory.mktemp('user_project')
    user_cfg = write_user_config(folder, synthetic_root)
    train_py = osp.join(site_dir, 'mmembed', '.mim', 'tools', 'train.py')
    proc = run([train_py, user_cfg, '--work-dir', 'work'],
               cwd=str(folder),
               pythonpath=[site_dir])
    assert proc.returncode == 0, explain(proc)
    return str(folder), user_cfg, proc


def test_train_with_installed_tools(trained, site_dir):
    folder, _, proc = trained
    assert osp.isfile(osp.join(folder, 'work', 'iter_2.pth'))
    scalars = glob.glob(
        osp.join(folder, 'work', '*', 'vis_data', 'scalars.json'))
    assert len(scalars) == 1, scalars
    with open(scalars[0]) as f:
        logs = [json.loads(line) for line in f if '"loss"' in line]
    assert [log['iter'] for log in logs] == [1, 2]
    assert all(log['loss_mask'] > 0 for log in logs)
    # the dumped config is the user's, resolved through the installed base
    with open(osp.join(folder, 'work', 'my_embedmask.py')) as f:
        assert "type='EmbedMask'" in f.read()


def test_test_with_cli_module(trained, site_dir, tmp_path):
    folder, user_cfg, _ = trained
    out = tmp_path / 'results.pkl'
    proc = run([
        '-m', 'mmembed.cli', 'test', user_cfg,
        osp.join(folder, 'work', 'iter_2.pth'), '--work-dir',
        str(tmp_path), '--out',
        str(out)
    ],
               cwd=folder,
               pythonpath=[site_dir])
    assert proc.returncode == 0, explain(proc)
    assert out.is_file()
    assert 'coco/segm_mAP' in proc.stdout + proc.stderr, explain(proc)


def test_python_api_on_the_user_config(trained, site_dir, synthetic_root):
    """init_detector / inference_detector / DetInferencer on a config with
    an mmembed:: base, after `import mmembed` (dicts inherited through the
    base carry _scope_='mmembed')."""
    folder, user_cfg, _ = trained
    image = osp.join(synthetic_root, 'val', '000000.png')
    code = ('import mmembed, json\n'
            'from mmdet.apis import (DetInferencer, inference_detector, '
            'init_detector)\n'
            f'model = init_detector({user_cfg!r}, "work/iter_2.pth", '
            'device="cpu")\n'
            f'pred = inference_detector(model, {image!r}).pred_instances\n'
            f'out = DetInferencer({user_cfg!r}, weights="work/iter_2.pth", '
            f'device="cpu")({image!r}, return_vis=False)\n'
            'print(json.dumps(dict(file=mmembed.__file__, '
            'masks=list(pred.masks.shape), dtype=str(pred.masks.dtype), '
            'classes=list(model.dataset_meta["classes"]), '
            'n=len(out["predictions"]))))\n')
    proc = run(['-c', code], cwd=folder, pythonpath=[site_dir])
    assert proc.returncode == 0, explain(proc)
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info['file'].startswith(site_dir), info
    assert info['masks'][1:] == [256, 256] and info['dtype'] == 'torch.bool'
    assert info['classes'] == ['disc', 'square', 'triangle', 'ring']
    assert info['n'] == 1


def test_export_onnx_of_the_trained_checkpoint(trained, site_dir):
    """`mmembed export-onnx CONFIG CHECKPOINT` from the installed wheel, on
    the user's config and the checkpoint it trained."""
    pytest.importorskip('onnxruntime')
    folder, user_cfg, _ = trained
    proc = run([
        '-m', 'mmembed.cli', 'export-onnx', user_cfg, 'work/iter_2.pth',
        '--out', 'work/model.onnx', '--with-postprocess', '--max-per-img',
        '10', '--verify'
    ],
               cwd=folder,
               pythonpath=[site_dir])
    assert proc.returncode == 0, explain(proc)
    with open(osp.join(folder, 'work', 'model.onnx.json')) as f:
        meta = json.load(f)
    assert meta['input_shape'] == [1, 3, 256, 256]  # the test Resize scale
    assert meta['classes'] == ['disc', 'square', 'triangle', 'ring']
    assert meta['checkpoint'] == 'work/iter_2.pth'
    assert float(proc.stdout.split('largest difference')[-1]) < 1e-3


def test_mmdet_train_cannot_parse_mmembed_scope(site_dir, synthetic_root,
                                                tmp_path):
    """mmdet's tools/train.py parses _base_ before custom_imports runs, so
    the mmembed:: scope is unknown to it (docs/use_in_your_project.md says
    so and what to do instead)."""
    train_py = osp.join(MMDET_TOOLS, 'train.py')
    if not osp.isfile(train_py):
        pytest.skip(f'mmdet ships no tools/train.py at {train_py}')
    user_cfg = write_user_config(tmp_path, synthetic_root)
    with open(user_cfg, 'a') as f:
        f.write("custom_imports = dict(imports=['mmembed'])\n")
    proc = run([train_py, user_cfg, '--work-dir', 'work'],
               cwd=str(tmp_path),
               pythonpath=[site_dir])
    assert proc.returncode != 0
    assert 'mmengine does not support to load mmembed config' in \
        proc.stderr, explain(proc)


def test_mmdet_train_after_importing_mmembed(site_dir, synthetic_root,
                                             tmp_path):
    """The documented workaround: run mmdet's train.py with mmembed
    imported first (docs/use_in_your_project.md)."""
    train_py = osp.join(MMDET_TOOLS, 'train.py')
    if not osp.isfile(train_py):
        pytest.skip(f'mmdet ships no tools/train.py at {train_py}')
    user_cfg = write_user_config(tmp_path, synthetic_root)
    launcher = ('import mmembed, runpy, sys; sys.argv = sys.argv[1:]; '
                "runpy.run_path(sys.argv[0], run_name='__main__')")
    proc = run(['-c', launcher, train_py, user_cfg, '--work-dir', 'work'],
               cwd=str(tmp_path),
               pythonpath=[site_dir])
    assert proc.returncode == 0, explain(proc)
    assert osp.isfile(tmp_path / 'work' / 'iter_2.pth')


def test_console_script(site_dir, tmp_path):
    script = osp.join(site_dir, 'bin', 'mmembed')
    assert osp.isfile(script), 'pip installed no mmembed command'
    proc = run([script, '--help'], cwd=str(tmp_path), pythonpath=[site_dir])
    assert proc.returncode == 0, explain(proc)
    assert 'train' in proc.stdout and 'export-onnx' in proc.stdout


def test_sdist_carries_what_a_wheel_build_needs(tmp_path):
    """MANIFEST.in: an sdist holds everything setup.py copies into .mim."""
    import tarfile
    from packaging_helpers import copy_source
    src = copy_source(str(tmp_path / 'src'))
    proc = run(['setup.py', '-q', 'sdist', '-d', str(tmp_path / 'dist')],
               cwd=src)
    assert proc.returncode == 0, explain(proc)
    (sdist, ) = glob.glob(str(tmp_path / 'dist' / 'mmembed-*.tar.gz'))
    with tarfile.open(sdist) as tar:
        names = {n.split('/', 1)[1] for n in tar.getnames() if '/' in n}
    for expected in [
            'setup.py', 'model-index.yml', 'README.md',
            'requirements/runtime.txt', 'requirements/tests.txt',
            'configs/embedmask/embedmask_r50_fpn_1x_coco.py',
            'configs/embedmask/metafile.yml', 'tools/train.py',
            'tools/tool_utils.py', 'tools/dist_train.sh',
            'demo/image_demo.py',
            'mmembed/configs/embedmask/embedmask_r50_fpn_1x_coco.py'
    ]:
        assert expected in names, expected
