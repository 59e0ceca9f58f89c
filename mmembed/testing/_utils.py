# Copyright (c) mmembed authors. All rights reserved.
"""Helpers for tests, mirroring ``mmdet.testing`` for mmembed's configs.

mmdet's ``get_detector_cfg`` looks for configs three folders above its own
file, which only exists in an mmdet source checkout; these helpers find
mmembed's ``configs/`` next to the package (editable / source install).
"""
import copy
import os.path as osp
from typing import Optional

from mmengine.config import Config, ConfigDict


def get_repo_root() -> str:
    """The checkout that holds ``mmembed/``, ``configs/`` and ``tools/``."""
    return osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def get_config_root() -> str:
    root = osp.join(get_repo_root(), 'configs')
    if not osp.isdir(root):
        raise FileNotFoundError(
            f'mmembed configs not found at {root}; the testing helpers need '
            'a source checkout (pip install -e .)')
    return root


def get_shared_data_root() -> str:
    """``../shared/data`` relative to the repository root."""
    return osp.normpath(osp.join(get_repo_root(), '..', 'shared', 'data'))


def _load(fname: str) -> Config:
    path = fname if osp.isabs(fname) else osp.join(get_config_root(), fname)
    return Config.fromfile(path)


def get_detector_cfg(fname: str) -> ConfigDict:
    """The ``model`` of a config under ``configs/``, with pretrained
    backbone weights switched off (no model hub in tests)."""
    model = copy.deepcopy(_load(fname).model)
    if 'backbone' in model:
        model.backbone.init_cfg = None
    return model


def tiny_embedmask_cfg(fname: str = 'embedmask/embedmask_r50_fpn_1x_coco.py',
                       num_classes: int = 3,
                       width: int = 16,
                       test_cfg: Optional[dict] = None) -> ConfigDict:
    """A config's EmbedMask model shrunk for unit tests: ResNet-18 without
    pretrained weights, ``width`` channels, one conv per tower.

    The method-specific keys (embedding sizes, sampling, loss region, ...)
    stay as the config sets them.
    """
    model = get_detector_cfg(fname)
    model.backbone.update(
        depth=18, frozen_stages=-1, norm_eval=False,
        norm_cfg=dict(type='BN', requires_grad=True), style='pytorch')
    model.neck.update(in_channels=[64, 128, 256, 512], out_channels=width)
    norm_cfg = dict(type='GN', num_groups=4, requires_grad=True)
    for head in (model.bbox_head, model.mask_head):
        head.update(
            in_channels=width,
            feat_channels=width,
            stacked_convs=1,
            norm_cfg=norm_cfg)
    model.bbox_head.num_classes = num_classes
    model.data_preprocessor.update(
        mean=[0, 0, 0], std=[255, 255, 255], bgr_to_rgb=False)
    if test_cfg:
        model.test_cfg.update(test_cfg)
    return model
