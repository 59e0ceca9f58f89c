# Copyright (c) mmembed authors. All rights reserved.
"""The "use EmbedMaskHead in your own detector" example of
docs/embedmask.md, built on mmdet's own FCOS config, trains a step."""
import re

import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config

from mmembed.testing import get_repo_root


def test_docs_example_config_builds_and_trains(tmp_path):
    with open(f'{get_repo_root()}/docs/embedmask.md') as f:
        doc = f.read()
    example = re.search(r"```python\n(_base_ = 'mmdet::fcos/.*?)```", doc,
                        re.S).group(1)
    path = tmp_path / 'user_embedmask.py'
    path.write_text(example)
    cfg = Config.fromfile(str(path))
    assert cfg.train_dataloader.dataset.pipeline[1].with_mask
    model_cfg = cfg.model
    model_cfg.backbone.init_cfg = None
    model_cfg.backbone.depth = 18
    model_cfg.backbone.style = 'pytorch'
    model_cfg.neck.in_channels = [64, 128, 256, 512]
    model = MODELS.build(model_cfg)
    packed = demo_mm_inputs(1, [[3, 128, 128]], num_items=[2],
                            num_classes=80, with_mask=True)
    losses = model(**model.data_preprocessor(packed, True), mode='loss')
    assert {'loss_cls', 'loss_bbox', 'loss_mask'} <= set(losses)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
