# Copyright (c) mmembed authors. All rights reserved.
"""Shared pieces of the reliability suite (issue 12).

* :data:`MODEL_SPECS`: the ONE list of models every robustness test runs
  against. A new model joins by one line (see the commented entries).
* :func:`build_model`: a spec's small config, shrunk further for speed.
* :func:`write_coco`: tiny COCO sets (json + images) written in a tmp dir.
* :func:`dataset_cfg`: the dataset config the small configs use
  (``configs/_base_/datasets/synthetic_instance.py``) pointed at such a set.
"""
import copy
import json
import os.path as osp
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import Config, ConfigDict
from PIL import Image

from mmembed.testing import get_config_root, get_detector_cfg

CLASSES = ('disc', 'square')


def _shrink_fcos_family(model: ConfigDict, width: int = 16) -> None:
    """R-18 without pretrained weights, ``width`` channels, one conv per
    tower (the shape of ``mmembed.testing.tiny_embedmask_cfg``)."""
    model.backbone.update(
        depth=18, frozen_stages=-1, norm_eval=False, init_cfg=None,
        norm_cfg=dict(type='BN', requires_grad=True), style='pytorch')
    model.neck.update(in_channels=[64, 128, 256, 512], out_channels=width)
    norm_cfg = dict(type='GN', num_groups=4, requires_grad=True)
    model.bbox_head.update(
        in_channels=width, feat_channels=width, stacked_convs=1,
        norm_cfg=norm_cfg)


def _embedmask(model: ConfigDict, width: int = 16) -> None:
    _shrink_fcos_family(model, width)
    model.mask_head.update(
        in_channels=width, feat_channels=width, stacked_convs=1,
        norm_cfg=dict(type='GN', num_groups=4, requires_grad=True))


def _embedmask_sharpmask(model: ConfigDict, width: int = 16) -> None:
    """EmbedMask on the SharpMask neck (detector mode, stride-4 map feeds
    the pixel embeddings), ``width`` channels everywhere."""
    _embedmask(model, width)
    model.neck.update(mask_channels=width, hidden_channels=width)


def _istr(model: ConfigDict, width: int = 16) -> None:
    """ISTR with every layer kind and all 6 stages, ``width`` channels, 20
    queries, a 12-d PCA codec of 14x14 masks left at its DCT start (no
    fitted file: the robustness cases do not need good masks)."""
    model.backbone.update(
        depth=18, frozen_stages=-1, norm_eval=False, init_cfg=None,
        norm_cfg=dict(type='BN', requires_grad=True), style='pytorch')
    model.neck.update(in_channels=[64, 128, 256, 512], out_channels=width)
    model.rpn_head.update(num_proposals=20, proposal_feature_channel=width)
    roi = model.roi_head
    roi.proposal_feature_channel = width
    roi.bbox_roi_extractor.out_channels = width
    roi.bbox_head.update(
        in_channels=width, feedforward_channels=2 * width, num_heads=2)
    roi.bbox_head.dynamic_conv_cfg.update(
        in_channels=width, feat_channels=8, out_channels=width)
    roi.mask_codec = ISTR_TEST_CODEC
    model.test_cfg.rcnn.max_per_img = 10


# what replaces the small ISTR configs' fitted codec file in these tests
ISTR_TEST_CODEC = dict(type='PCAMaskCodec', code_dim=12, mask_size=14)


def _blendmask(model: ConfigDict, width: int = 16) -> None:
    # as tests/test_models/test_dense_heads/test_blendmask_head.py: K=4 bases,
    # 4x4 attention, 12x12 RoIs
    _shrink_fcos_family(model, width)
    model.bbox_head.update(num_bases=4, attn_size=4)
    model.mask_head.update(
        in_channels=width, feat_channels=8, num_convs=1, num_bases=4,
        attn_size=4, bottom_resolution=12,
        norm_cfg=dict(type='BN', requires_grad=True))


@dataclass(frozen=True)
class ModelSpec:
    """One model of the reliability suite.

    Attributes:
        name: test id.
        config: path under ``configs/``; its dataset/schedule are what the
            subprocess tests run.
        shrink: edits the config's ``model`` in place for unit-test speed.
        class_keys: dotted paths in ``model`` that hold ``num_classes``.
        model_overrides: ``model`` keys a config file written by a test
            sets on top of ``config`` (beside ``num_classes``), e.g. what
            replaces a data-derived file.
        family: 'fcos' (FCOSCodeHead box head: ``bbox_head`` with
            ``score_thr``, ``loss_by_feat``) or 'istr' (query-based:
            ``roi_head``); the few tests that reach into a head branch on it.
    """
    name: str
    config: str
    shrink: Callable[[ConfigDict], None]
    class_keys: Tuple[str, ...] = ('bbox_head', )
    model_overrides: Dict = field(default_factory=dict)
    family: str = 'fcos'
    extra: Dict = field(default_factory=dict)

    def model_update_text(self, num_classes: int) -> str:
        """A ``model = {...}`` line for a config file written by a test:
        ``num_classes`` at every class key, plus :attr:`model_overrides`
        (merged over the base config by mmengine)."""
        update: Dict = {}
        for key in self.class_keys:
            node = update
            for part in key.split('.'):
                node = node.setdefault(part, {})
            node['num_classes'] = num_classes

        def merge(into: Dict, other: Dict) -> None:
            for k, v in other.items():
                if isinstance(v, dict) and isinstance(into.get(k), dict):
                    merge(into[k], v)
                else:
                    into[k] = copy.deepcopy(v)

        merge(update, self.model_overrides)
        return f'model = {update!r}\n'


# Every test in tests/robustness runs against every entry. To add a model,
# add one line.
MODEL_SPECS: List[ModelSpec] = [
    ModelSpec('embedmask_paper', 'embedmask/embedmask_r18_fpn_synthetic.py',
              _embedmask),
    ModelSpec('embedmask_v3', 'embedmask/embedmask_r18_fpn_v3_fruits_nuts.py',
              _embedmask),
    ModelSpec('blendmask', 'blendmask/blendmask_r18_fpn_synthetic.py',
              _blendmask, ('bbox_head', 'mask_head')),
    ModelSpec('embedmask_sharpmask',
              'sharpmask/embedmask_r18_sharpmask_fruits_nuts.py',
              _embedmask_sharpmask),
    ModelSpec('istr', 'istr/istr_r18_fpn_synthetic.py', _istr,
              ('roi_head.bbox_head', ), family='istr',
              model_overrides=dict(roi_head=dict(
                  mask_codec=dict(ISTR_TEST_CODEC, _delete_=True)))),
]
MODEL_IDS = [spec.name for spec in MODEL_SPECS]


def model_cfg(spec: ModelSpec, num_classes: int = len(CLASSES),
              score_thr: Optional[float] = 0.0) -> ConfigDict:
    """The spec's ``model`` config, shrunk, with ``num_classes`` set."""
    model = get_detector_cfg(spec.config)
    spec.shrink(model)
    for key in spec.class_keys:
        node = model
        for part in key.split('.'):
            node = node[part]
        node.num_classes = num_classes
    model.data_preprocessor.update(
        mean=[0, 0, 0], std=[255, 255, 255], bgr_to_rgb=False)
    if score_thr is not None and 'score_thr' in (model.test_cfg or {}):
        model.test_cfg.score_thr = score_thr  # random weights score low
    return model


def score_test_cfg(model: torch.nn.Module, spec: ModelSpec) -> ConfigDict:
    """The test_cfg that holds the score threshold of ``spec``'s family."""
    return model.roi_head.test_cfg if spec.family == 'istr' else \
        model.test_cfg


def loss_to_poison(model: torch.nn.Module,
                   spec: ModelSpec) -> Tuple[torch.nn.Module, str, str]:
    """(module, method, loss key): a method whose returned loss dict holds
    the key, used to turn one real loss term into NaN."""
    if spec.family == 'istr':
        stages = model.roi_head.num_stages
        return model.roi_head, 'loss', f's{stages - 1}.loss_mask_code'
    return model.bbox_head, 'loss_by_feat', 'loss_centerness'


def build_model(spec: ModelSpec, seed: int = 0, **kwargs) -> torch.nn.Module:
    """A freshly initialised, shrunk model of ``spec`` (CPU)."""
    from mmdet.registry import MODELS
    torch.manual_seed(seed)
    model = MODELS.build(model_cfg(spec, **kwargs))
    model.init_weights()
    return model


# --------------------------------------------------------------------- #
# tiny COCO sets
# --------------------------------------------------------------------- #
def square_polygon(x: float, y: float, w: float, h: float) -> List[float]:
    return [x, y, x + w, y, x + w, y + h, x, y + h]


def draw_image(path: str, size: Tuple[int, int], mode: str = 'RGB',
               seed: int = 0) -> None:
    """A random-texture image of ``size`` (w, h) in PIL ``mode``."""
    rng = np.random.default_rng(seed)
    w, h = size
    channels = {'RGB': 3, 'RGBA': 4, 'L': 1}[mode]
    pixels = rng.integers(0, 255, (h, w, channels), dtype=np.uint8)
    image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode)
    image.save(path)


def write_coco(root: str,
               images: Sequence[dict],
               annotations: Sequence[dict],
               categories: Optional[Sequence[dict]] = None,
               draw: bool = True) -> str:
    """Write ``root/annotations/train.json`` and (if ``draw``) every image
    under ``root/train/``; returns the json path.

    ``images``: COCO image dicts; an optional ``_mode`` key ('RGB', 'L',
    'RGBA') sets the colour mode and ``_skip`` leaves the file out.
    ``annotations``: COCO annotation dicts; ``area``/``iscrowd`` default from
    the box / 0 and ``id`` from the position.
    """
    import os
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    os.makedirs(osp.join(root, 'train'), exist_ok=True)
    clean_images = []
    for i, img in enumerate(images):
        img = dict(img)
        mode = img.pop('_mode', 'RGB')
        skip = img.pop('_skip', False)
        clean_images.append(img)
        if draw and not skip:
            draw_image(
                osp.join(root, 'train', img['file_name']),
                (img['width'], img['height']), mode, seed=i)
    clean_anns = []
    for i, ann in enumerate(annotations):
        ann = dict(ann)
        ann.setdefault('id', i + 1)
        ann.setdefault('iscrowd', 0)
        ann.setdefault('area', float(ann['bbox'][2] * ann['bbox'][3]))
        ann.setdefault('segmentation', [square_polygon(*ann['bbox'])])
        clean_anns.append(ann)
    if categories is None:
        categories = [dict(id=i + 1, name=n) for i, n in enumerate(CLASSES)]
    path = osp.join(root, 'annotations', 'train.json')
    with open(path, 'w') as f:
        json.dump(
            dict(images=clean_images, annotations=clean_anns,
                 categories=list(categories)), f)
    return path


def image(img_id: int, w: int = 64, h: int = 64, **extra) -> dict:
    info = dict(id=img_id, file_name=f'{img_id:06d}.png', width=w, height=h)
    info.update(extra)
    return info


def dataset_cfg(root: str, dataset_type: str = 'CocoDataset',
                test_mode: bool = False, **kwargs) -> ConfigDict:
    """The small configs' train (or test) dataset config on ``root``."""
    cfg = Config.fromfile(
        osp.join(get_config_root(), '_base_/datasets/synthetic_instance.py'))
    loader = cfg.val_dataloader if test_mode else cfg.train_dataloader
    dataset = copy.deepcopy(loader.dataset)
    dataset.update(
        type=dataset_type, data_root=root + '/',
        ann_file='annotations/train.json', data_prefix=dict(img='train/'),
        metainfo=dict(classes=CLASSES), test_mode=test_mode)
    # 64x64 images stay 64x64 (the config resizes to 256: too slow here)
    for step in dataset.pipeline:
        if step['type'] == 'Resize':
            step['scale'] = (64, 64)
        if step['type'] == 'RandomFlip':
            step['prob'] = 0.0
    dataset.update(kwargs)
    return dataset


def build_dataset(cfg: ConfigDict):
    from mmdet.registry import DATASETS
    return DATASETS.build(cfg)
