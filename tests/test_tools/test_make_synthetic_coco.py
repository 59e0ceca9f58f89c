# Copyright (c) mmembed authors. All rights reserved.
"""Tests for tools/misc/make_synthetic_coco.py (the synthetic shapes set)."""
import contextlib
import importlib.util
import io
import json
from collections import defaultdict
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from pycocotools.coco import COCO

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOL_PATH = REPO_ROOT / 'tools' / 'misc' / 'make_synthetic_coco.py'
SYNTHETIC_CFG = REPO_ROOT / 'configs' / '_base_' / 'datasets' / \
    'synthetic_instance.py'
NUM_TRAIN, NUM_VAL = 6, 3


def _load_tool() -> ModuleType:
    # tools/ is not a package; load the script as a module.
    spec = importlib.util.spec_from_file_location('make_synthetic_coco',
                                                  TOOL_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = _load_tool()


@pytest.fixture(scope='module')
def synthetic_set(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out_dir = tmp_path_factory.mktemp('synthetic')
    return tool.make_synthetic_coco(str(out_dir), num_train=NUM_TRAIN,
                                    num_val=NUM_VAL, img_size=256, seed=0,
                                    max_objects=5)


def _quiet_coco(ann_file: str) -> COCO:
    """COCO() prints progress; the tests do not need it."""
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(ann_file)


def test_layout_and_counts(synthetic_set: dict) -> None:
    out_dir = Path(synthetic_set['out_dir'])
    assert synthetic_set['classes'] == tool.SYNTHETIC_CLASSES == (
        'disc', 'square', 'triangle', 'ring')
    for split, num in (('train', NUM_TRAIN), ('val', NUM_VAL)):
        info = synthetic_set[split]
        assert info['num_images'] == num
        assert Path(info['ann_file']) == out_dir / 'annotations' / \
            f'{split}.json'
        data = json.loads(Path(info['ann_file']).read_text())
        assert [c['id'] for c in data['categories']] == [1, 2, 3, 4]
        assert tuple(c['name'] for c in data['categories']) == \
            tool.SYNTHETIC_CLASSES
        assert len(data['images']) == num
        assert len(data['annotations']) == info['num_annotations']
        for i, img in enumerate(data['images']):
            assert img['file_name'] == f'{i:06d}.png'
            assert (img['width'], img['height']) == (256, 256)
            assert (out_dir / split / img['file_name']).is_file()
        images_with_anns = {a['image_id'] for a in data['annotations']}
        assert images_with_anns == {img['id'] for img in data['images']}
        for ann in data['annotations']:
            assert ann['iscrowd'] == 0
            assert ann['area'] >= tool.MIN_VISIBLE_AREA


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    kwargs = dict(num_train=3, num_val=2, img_size=128, max_objects=4)
    first = tool.make_synthetic_coco(str(tmp_path / 'a'), seed=3, **kwargs)
    second = tool.make_synthetic_coco(str(tmp_path / 'b'), seed=3, **kwargs)
    other = tool.make_synthetic_coco(str(tmp_path / 'c'), seed=4, **kwargs)
    for split in ('train', 'val'):
        a = Path(first[split]['ann_file']).read_bytes()
        assert a == Path(second[split]['ann_file']).read_bytes()
        assert a != Path(other[split]['ann_file']).read_bytes()
        for i in range(kwargs[f'num_{split}']):
            name = f'{split}/{i:06d}.png'
            assert (tmp_path / 'a' / name).read_bytes() == \
                (tmp_path / 'b' / name).read_bytes()


def test_annotations_decode_exactly(synthetic_set: dict) -> None:
    kinds = set()
    for split in ('train', 'val'):
        coco = _quiet_coco(synthetic_set[split]['ann_file'])
        per_image = defaultdict(list)
        for ann in coco.loadAnns(coco.getAnnIds()):
            mask = coco.annToMask(ann)
            assert mask.shape == (256, 256)
            assert int(mask.sum()) == ann['area'], ann['id']
            ys, xs = np.nonzero(mask)
            tight = [int(xs.min()), int(ys.min()),
                     int(xs.max() - xs.min() + 1),
                     int(ys.max() - ys.min() + 1)]
            assert tight == ann['bbox'], ann['id']
            seg = ann['segmentation']
            if isinstance(seg, list):
                kinds.add('polygon')
                # Rings always have a hole, so they are never polygons.
                assert ann['category_id'] != 4
                assert all(len(p) >= 6 and len(p) % 2 == 0 for p in seg)
            else:
                kinds.add('rle')
                assert isinstance(seg['counts'], str)
                assert seg['size'] == [256, 256]
            per_image[ann['image_id']].append(mask)
        for image_id, masks in per_image.items():
            # Visible parts of the shapes of one image never overlap.
            assert np.stack(masks).sum(0).max() == 1, image_id
    assert kinds == {'polygon', 'rle'}


def test_mask_to_polygon_is_exact_or_refuses() -> None:
    ell = np.zeros((12, 12), np.uint8)
    ell[2:10, 2:4] = 1
    ell[8:10, 2:9] = 1
    polygon = tool.mask_to_polygon(ell)
    assert polygon is not None and len(polygon) == 1
    # An L has six corners on the pixel edges.
    assert len(polygon[0]) == 12
    # Two pieces touching only at a corner are not one simple region.
    pinch = np.zeros((6, 6), np.uint8)
    pinch[1:3, 1:3] = 1
    pinch[3:5, 3:5] = 1
    assert tool.mask_to_polygon(pinch) is None
    holed = np.zeros((9, 9), np.uint8)
    holed[1:8, 1:8] = 1
    holed[4, 4] = 0
    assert tool.mask_to_polygon(holed) is None
    assert tool.mask_to_polygon(np.zeros((5, 5), np.uint8)) is None


def test_loads_through_mmdet_coco_dataset(synthetic_set: dict) -> None:
    from mmengine.config import Config
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules
    register_all_modules()

    cfg = Config.fromfile(str(SYNTHETIC_CFG))
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.data_root = synthetic_set['out_dir']
    dataset = DATASETS.build(dataset_cfg)
    assert len(dataset) == NUM_TRAIN
    assert dataset.metainfo['classes'] == tool.SYNTHETIC_CLASSES

    coco = _quiet_coco(synthetic_set['train']['ann_file'])
    for index in range(len(dataset)):
        sample = dataset[index]
        image_id = dataset.get_data_info(index)['img_id']
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
        gt = sample['data_samples'].gt_instances
        assert len(gt.masks) == len(gt.bboxes) == len(gt.labels) == len(anns)
        # 256x256 images are not rescaled and flipping keeps areas, so the
        # decoded masks (polygon and RLE alike) match the stored areas.
        assert sorted(gt.masks.areas.astype(int).tolist()) == \
            sorted(a['area'] for a in anns)
        assert sorted(gt.labels.tolist()) == \
            sorted(a['category_id'] - 1 for a in anns)


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_train=-1), 'num_train'),
    (dict(num_val=-2), 'num_val'),
    (dict(img_size=8), 'img_size'),
    (dict(img_size=256.0), 'img_size'),
    (dict(max_objects=0), 'max_objects'),
    (dict(max_objects=201), 'max_objects'),
    (dict(shape_scale=0), 'shape_scale'),
    (dict(shape_scale=1.5), 'shape_scale'),
    (dict(seed=-1), 'seed'),
    (dict(num_train=0, num_val=0), 'num_train \\+ num_val'),
])
def test_bad_arguments_raise(tmp_path: Path, kwargs: dict,
                             match: str) -> None:
    with pytest.raises(ValueError, match=match):
        tool.make_synthetic_coco(str(tmp_path / 'out'), **kwargs)
    # Nothing is written for rejected arguments.
    assert not (tmp_path / 'out').exists()


def test_cli_reports_bad_arguments(tmp_path: Path,
                                   capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc_info:
        tool.main(['--out-dir', str(tmp_path), '--num-train', '-1'])
    assert exc_info.value.code == 2
    assert 'num_train must be >= 0, got -1' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.main(['--out-dir', str(tmp_path), '--img-size', '8'])
    assert 'img_size' in capsys.readouterr().err


def test_cli_writes_set(tmp_path: Path,
                        capsys: pytest.CaptureFixture) -> None:
    out_dir = tmp_path / 'cli'
    assert tool.main(['--out-dir', str(out_dir), '--num-train', '2',
                      '--num-val', '1', '--img-size', '64']) == 0
    assert 'train: 2 images' in capsys.readouterr().out
    assert (out_dir / 'val' / '000000.png').is_file()
    assert (out_dir / 'annotations' / 'val.json').is_file()


def test_shape_scale_makes_crowded_images(tmp_path: Path) -> None:
    """shape_scale=1 writes the default set byte for byte; small shapes
    keep most of a large max_objects (the reliability load test's set)."""
    kwargs = dict(num_train=2, num_val=0, img_size=128, seed=5,
                  max_objects=4)
    default = tool.make_synthetic_coco(str(tmp_path / 'a'), **kwargs)
    scaled = tool.make_synthetic_coco(str(tmp_path / 'b'), shape_scale=1.0,
                                      **kwargs)
    assert Path(default['train']['ann_file']).read_bytes() == \
        Path(scaled['train']['ann_file']).read_bytes()
    crowded = tool.make_synthetic_coco(
        str(tmp_path / 'c'), num_train=3, num_val=0, img_size=512, seed=1,
        max_objects=120, shape_scale=0.3)
    data = json.loads(Path(crowded['train']['ann_file']).read_text())
    counts = defaultdict(int)
    for ann in data['annotations']:
        counts[ann['image_id']] += 1
    assert max(counts.values()) > 50
    assert all(a['area'] >= tool.MIN_VISIBLE_AREA
               for a in data['annotations'])
