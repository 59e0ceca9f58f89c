# Copyright (c) mmembed authors. All rights reserved.
"""Shared pieces of the reliability suite (issue 12).

* :data:`MODEL_SPECS`: the ONE list of models every robustness test runs
  against. A new model joins by one line (see the commented entries); a
  test that cannot apply to a model is listed in its spec's ``exempt``
  with the reason (tests/robustness/conftest.py skips it saying so).
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


def _embedmask_sharpmask_fpn(model: ConfigDict, width: int = 16) -> None:
    """EmbedMask on SharpMaskFPN (FPN for the boxes, the mask-only path
    through C2 and the stem's C1 to the stride-2 map the pixel embeddings
    read), ``width`` channels everywhere, ``width / 2`` in the path's
    finer step."""
    _embedmask(model, width)
    model.neck.update(
        mask_channels=(width, width // 2),
        mask_hidden_channels=(width, width // 2),
        mask_out_channels=width)


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


def _istr_v2(model: ConfigDict, width: int = 16) -> None:
    """The recommended small-data ISTR v2 (conv mask branch on 28 x 28 RoIs
    of the predicted boxes, dynamic query fusion, dense code head, DCT codec)
    shrunk as :func:`_istr`, with a 12-d DCT code of 28 x 28 masks (v2's
    112 x 112 is resolution the robustness cases do not need) and the
    fusion's dynamic convs ``width / 2`` wide."""
    _istr(model, width)
    roi = model.roi_head
    roi.mask_codec = dict(type='DCTMaskCodec', code_dim=12, mask_size=28)
    roi.bbox_head.mask_dynamic_conv_cfg = dict(
        type='DynamicConv', feat_channels=width // 2, with_proj=False,
        act_cfg=dict(type='ReLU', inplace=True), norm_cfg=dict(type='LN'))


def _sharpmask_proposer(model: ConfigDict, width: int = 16) -> None:
    """The SharpMask segment-proposal model on its coco128 config's
    ResNet-18 trunk (from scratch): DeepMask head ``width`` channels after
    the reduction, ``2 * width``-d window codes, a 14 x 14 DeepMask mask
    branch, refinement nets 8 channels wide, 20 proposals. The window
    geometry stays the release's (10-cell windows of 192 px at stride 16,
    4 refinement steps to 160 x 160 masks): it is the model's structure,
    and a 64 px test image still gives windows at 4 of the 7 scales."""
    model.deepmask_head.update(
        reduce_channels=width, code_channels=2 * width, mask_size=14,
        score_hidden=width)
    model.refine_head.update(
        hidden_channels=(8, 8, 8, 8), mask_channels=16,
        code_channels=2 * width)
    model.test_cfg.num_proposals = 20


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
            ``score_thr``, ``loss_by_feat``), 'istr' (query-based:
            ``roi_head``) or 'proposal' (SharpMaskProposer: class-agnostic
            segment proposals, trained on patches its config's
            DeepMaskPatchSampler cuts); the few tests that reach into a
            head, build a training batch or read the detection count
            branch on it.
        mask_loss: a substring of the loss key(s) that train the masks.
        frozen: parameter name prefixes the model's training leaves alone
            by design (no gradient reaches them), e.g. the trunk and
            DeepMask head of the SharpMask stage.
        config_text: lines a config file written by a test adds after the
            ``model`` line (e.g. dropping a checkpoint the config loads).
        exempt: test function name -> why it cannot apply to this model.
            conftest.py skips those tests with the reason (``pytest -rs``
            lists them); test_exemptions.py checks every name is a test of
            the suite and every reason still holds. Never a silent skip.
    """
    name: str
    config: str
    shrink: Callable[[ConfigDict], None]
    class_keys: Tuple[str, ...] = ('bbox_head', )
    model_overrides: Dict = field(default_factory=dict)
    family: str = 'fcos'
    extra: Dict = field(default_factory=dict)
    mask_loss: str = 'mask'
    frozen: Tuple[str, ...] = ()
    config_text: str = ''
    exempt: Dict[str, str] = field(default_factory=dict)

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


# What cannot apply to the proposal model, and why (test_exemptions.py
# checks that each reason still holds).
PROPOSER_EXEMPT = {
    'test_train_step_every_gt_crowd': (
        'no 0-GT batch can reach it: every training patch carries exactly '
        'one label mask, cut around a non-crowd object (the SharpMask '
        'stage samples masks only, hfreq = 0); on an image whose every GT '
        'is crowd DeepMaskPatchSampler returns None and the dataset draws '
        'another image'),
    'test_amp_config_exists_and_uses_amp_optim_wrapper': (
        'no fp16 twin config is shipped for the proposal model (its '
        'configs are the release-size R-50 stages and their CPU-sized '
        'R-18 / coco128 twins, none a CUDA recipe); mixed precision '
        'training itself is tested for it by '
        'test_bf16_autocast_trains_with_finite_losses'),
}

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
    ModelSpec('embedmask_sharpmask_fpn',
              'sharpmask/embedmask_r18_sharpmask_fpn_fruits_nuts.py',
              _embedmask_sharpmask_fpn),
    ModelSpec('istr', 'istr/istr_r18_fpn_synthetic.py', _istr,
              ('roi_head.bbox_head', ), family='istr',
              model_overrides=dict(roi_head=dict(
                  mask_codec=dict(ISTR_TEST_CODEC, _delete_=True)))),
    ModelSpec(
        'istr_v2_recommended',
        'istr/istr_v2_r18_fpn_recommended_dynamic_fusion_dense_code_dct64_'
        'fruits_nuts.py', _istr_v2, ('roi_head.bbox_head', ),
        family='istr'),
    ModelSpec(
        'sharpmask_proposer',
        'sharpmask/sharpmask_r18_coco128_proposals.py',
        _sharpmask_proposer, class_keys=(), family='proposal',
        mask_loss='refine', frozen=('backbone.', 'deepmask_head.'),
        config_text=(
            "load_from = None  # the DeepMask stage's checkpoint: not "
            "needed to test the loop\n"),
        exempt=PROPOSER_EXEMPT),
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
    if spec.family == 'proposal':
        raise ValueError('the proposal model keeps the top windows with no '
                         'score threshold: use cap_detections')
    return model.roi_head.test_cfg if spec.family == 'istr' else \
        model.test_cfg


def cap_detections(model: torch.nn.Module, spec: ModelSpec,
                   num: int) -> None:
    """Return at most ``num`` detections (the proposal model: proposals;
    0 asks for none, its zero-detection case: it has no score
    threshold)."""
    if spec.family == 'proposal':
        model.test_cfg['num_proposals'] = num
        return
    score_test_cfg(model, spec).max_per_img = num
    # the dense heads keep their own copy of the detector's test_cfg
    # (mmdet builds them from a copy), and they pick the detections
    for module in model.modules():
        cfg = getattr(module, 'test_cfg', None)
        if isinstance(cfg, dict) and 'max_per_img' in cfg:
            cfg['max_per_img'] = num


def suppress_detections(model: torch.nn.Module, spec: ModelSpec) -> None:
    """Make the model return zero detections: a score threshold above any
    sigmoid; the proposal model, which keeps the top windows without one,
    is asked for 0 proposals."""
    if spec.family == 'proposal':
        cap_detections(model, spec, 0)
    else:
        score_test_cfg(model, spec).score_thr = 1.01


def loss_to_poison(model: torch.nn.Module,
                   spec: ModelSpec) -> Tuple[torch.nn.Module, str, str]:
    """(module, method, loss key): a method whose returned loss dict holds
    the key, used to turn one real loss term into NaN."""
    if spec.family == 'istr':
        stages = model.roi_head.num_stages
        return model.roi_head, 'loss', f's{stages - 1}.loss_mask_code'
    if spec.family == 'proposal':
        return model.refine_head, 'loss', 'loss_refine'
    return model.bbox_head, 'loss_by_feat', 'loss_centerness'


def model_train_pipeline(spec: ModelSpec) -> Optional[List[dict]]:
    """The training pipeline of ``spec``'s own config where the suite's
    whole-image one cannot train it: the proposal model learns from 192 x
    192 patches its DeepMaskPatchSampler cuts (one label mask each, and
    the ``patch_label`` / ``patch_has_mask`` meta keys). None for the
    detectors, which train on the suite's pipeline."""
    if spec.family != 'proposal':
        return None
    cfg = Config.fromfile(osp.join(get_config_root(), spec.config))
    return [copy.deepcopy(step.to_dict()) if isinstance(step, ConfigDict)
            else copy.deepcopy(step)
            for step in cfg.train_dataloader.dataset.pipeline]


def proposal_patch_batch(spec: ModelSpec, num: int = 2,
                         seed: int = 0) -> dict:
    """``num`` training patches for the proposal model, cut by its config's
    own sampler (and packed by its PackDetInputs) from 128 x 128
    random-texture images holding two rectangles each.

    numpy's global generator (the sampler draws from it) is seeded, so
    every process cuts the same patches.

    Returns:
        ``dict(inputs=[(3, 192, 192) uint8] * num, data_samples=[...])``,
        as ``mmdet.testing.demo_mm_inputs``.
    """
    from mmcv.transforms import Compose
    from mmdet.structures.mask import BitmapMasks
    from mmengine.dataset import pseudo_collate
    steps = [step for step in model_train_pipeline(spec)
             if step['type'] not in ('LoadImageFromFile', 'LoadAnnotations')]
    pipeline = Compose(steps)
    rng = np.random.default_rng(seed)
    np.random.seed(seed)
    items = []
    for i in range(num):
        size = 128
        boxes = np.array([[8, 10, 60, 50], [50, 40, 120, 118]], np.float32)
        masks = np.zeros((2, size, size), np.uint8)
        for k, (x1, y1, x2, y2) in enumerate(boxes.astype(int)):
            masks[k, y1:y2, x1:x2] = 1
        items.append(pipeline(dict(
            img=rng.integers(0, 255, (size, size, 3), dtype=np.uint8),
            img_shape=(size, size), ori_shape=(size, size), img_id=i,
            img_path=f'synthetic_{i}.png', gt_bboxes=boxes,
            gt_bboxes_labels=np.zeros(2, np.int64),
            gt_masks=BitmapMasks(masks, size, size),
            gt_ignore_flags=np.zeros(2, bool))))
    return pseudo_collate(items)


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


def train_dataset_cfg(root: str, spec: ModelSpec, **kwargs) -> ConfigDict:
    """:func:`dataset_cfg` for training ``spec``'s model: its own training
    pipeline where it needs one (:func:`model_train_pipeline`)."""
    cfg = dataset_cfg(root, **kwargs)
    pipeline = model_train_pipeline(spec)
    if pipeline is not None:
        cfg.pipeline = pipeline
    return cfg


def build_dataset(cfg: ConfigDict):
    from mmdet.registry import DATASETS
    return DATASETS.build(cfg)
