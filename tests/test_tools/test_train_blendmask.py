# Copyright (c) mmembed authors. All rights reserved.
"""BlendMask trains 5 iterations through tools/train.py, its checkpoint
evaluates (bbox + segm) through tools/test.py, and init_detector /
inference_detector return (N, H, W) masks."""
import glob
import json
import os.path as osp

import torch
from tool_test_helpers import (REPO_ROOT, SAMPLE_IMAGE, explain,
                               requires_fruits_nuts, run_tool)

pytestmark = requires_fruits_nuts
CONFIG = 'tests/test_tools/configs/blendmask_fruits_5iter.py'


def test_blendmask_trains_tests_and_infers(tmp_path):
    work_dir = str(tmp_path / 'work')
    proc = run_tool(['tools/train.py', CONFIG, '--work-dir', work_dir])
    assert proc.returncode == 0, explain(proc)
    ckpt = osp.join(work_dir, 'iter_5.pth')
    assert osp.isfile(ckpt), explain(proc)
    scalars = [
        json.loads(line) for line in open(
            glob.glob(osp.join(work_dir, '**', 'scalars.json'),
                      recursive=True)[0])
    ]
    train_steps = [s for s in scalars if 'loss_mask' in s]
    assert [s['iter'] for s in train_steps] == [1, 2, 3, 4, 5]
    for step in train_steps:
        for key in ('loss_cls', 'loss_bbox', 'loss_centerness', 'loss_mask',
                    'loss_semantic'):
            assert key in step and step[key] == step[key]  # present, not NaN
    assert any('coco/segm_mAP' in s for s in scalars)  # validation ran
    proc = run_tool(['tools/test.py', CONFIG, ckpt, '--work-dir', work_dir])
    assert proc.returncode == 0, explain(proc)
    assert 'coco/segm_mAP' in proc.stdout + proc.stderr

    from mmdet.apis import inference_detector, init_detector
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO_ROOT, CONFIG))
    cfg.model.test_cfg.score_thr = 0.0  # 5 iterations score low
    model = init_detector(cfg, ckpt, device='cpu')
    result = inference_detector(model, osp.join(REPO_ROOT, SAMPLE_IMAGE))
    pred = result.pred_instances
    height, width = result.ori_shape
    assert pred.masks.shape == (len(pred.bboxes), height, width)
    assert pred.masks.dtype == torch.bool and len(pred.masks) > 0

    from mmdet.apis import DetInferencer
    inferencer = DetInferencer(cfg, weights=ckpt, device='cpu',
                               show_progress=False)
    out = inferencer(osp.join(REPO_ROOT, SAMPLE_IMAGE), return_vis=False,
                     no_save_pred=True)
    assert len(out['predictions'][0]['masks']) == len(pred.masks)

    # the picture of bases and blends
    picture = str(tmp_path / 'blendmask.png')
    proc = run_tool([
        'tools/analysis_tools/vis_blendmask.py', CONFIG, ckpt, SAMPLE_IMAGE,
        '--out', picture, '--score-thr', '0'
    ])
    assert proc.returncode == 0, explain(proc)
    assert osp.getsize(picture) > 10_000
