# Copyright (c) mmembed authors. All rights reserved.
"""mmdet's inference APIs on a random-weight EmbedMask built from a config
path (as users call them)."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.apis import DetInferencer, inference_detector, init_detector
from mmengine.config import Config

from mmembed.testing import get_config_root, get_shared_data_root

CONFIG = osp.join(get_config_root(), 'embedmask',
                  'embedmask_r18_fpn_fruits_nuts.py')
IMAGE = osp.join(get_shared_data_root(), 'fruits_nuts', 'images', '0.jpg')
ANY_DET = {'model.test_cfg.score_thr': 0.0, 'model.test_cfg.max_per_img': 7}


def test_init_and_inference_detector_on_path_and_array():
    model = init_detector(CONFIG, None, device='cpu', cfg_options=ANY_DET)
    # paths first: mmdet 3.3's inference_detector switches the model's test
    # pipeline to LoadImageFromNDArray in place when given arrays
    if osp.exists(IMAGE):
        results = inference_detector(model, [IMAGE, IMAGE])
        assert results[0].pred_instances.masks.shape == (7, 600, 800)
    img = (np.random.RandomState(0).rand(90, 120, 3) * 255).astype(np.uint8)
    result = inference_detector(model, img)
    pred = result.pred_instances
    assert pred.masks.shape == (7, 90, 120) and pred.masks.dtype == torch.bool
    assert pred.bboxes.shape == (7, 4)


@pytest.mark.skipif(not osp.exists(IMAGE), reason='shared data missing')
def test_det_inferencer_writes_predictions_and_visualisation(tmp_path):
    cfg = Config.fromfile(CONFIG)  # a Config object is accepted too
    cfg.model.test_cfg.update(score_thr=0.0, max_per_img=5)
    inferencer = DetInferencer(cfg, weights=None, device='cpu')
    out = inferencer(IMAGE, out_dir=str(tmp_path), no_save_pred=False,
                     return_datasamples=False, pred_score_thr=0.0)
    pred = out['predictions'][0]
    assert len(pred['labels']) == 5 and len(pred['masks']) == 5
    assert pred['masks'][0]['size'] == [600, 800]  # RLE at original size
    assert (tmp_path / 'vis' / '0.jpg').exists()
    assert (tmp_path / 'preds' / '0.json').exists()
