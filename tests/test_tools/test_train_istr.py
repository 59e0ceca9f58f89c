# Copyright (c) mmembed authors. All rights reserved.
"""The ISTR user workflow: fit the PCA codec on the data with one command,
train 5 iterations through tools/train.py, test the checkpoint through
tools/test.py without the codec file (the checkpoint carries it), and get
(N, H, W) bool masks from init_detector / inference_detector."""
import glob
import json
import os.path as osp

import numpy as np
import torch
from tool_test_helpers import (DATA_ROOT, REPO_ROOT, SAMPLE_IMAGE, explain,
                               requires_fruits_nuts, run_tool)

pytestmark = requires_fruits_nuts
CONFIG = 'tests/test_tools/configs/istr_fruits_5iter.py'


def test_istr_fits_codec_trains_tests_and_infers(tmp_path):
    codec = str(tmp_path / 'codec.npz')
    proc = run_tool([
        'tools/misc/fit_mask_codec.py',
        osp.join(DATA_ROOT, 'trainval.json'), '--out', codec, '--no-progress'
    ])
    assert proc.returncode == 0, explain(proc)
    assert '% of the variance' in proc.stdout, explain(proc)

    work_dir = str(tmp_path / 'work')
    proc = run_tool([
        'tools/train.py', CONFIG, '--work-dir', work_dir, '--cfg-options',
        f'model.roi_head.mask_codec.codec_file={codec}'
    ])
    assert proc.returncode == 0, explain(proc)
    ckpt = osp.join(work_dir, 'iter_5.pth')
    assert osp.isfile(ckpt), explain(proc)
    scalars = [
        json.loads(line) for line in open(
            glob.glob(osp.join(work_dir, '**', 'scalars.json'),
                      recursive=True)[0])
    ]
    train_steps = [s for s in scalars if 's5.loss_mask_dice' in s]
    assert [s['iter'] for s in train_steps] == [1, 2, 3, 4, 5]
    for step in train_steps:
        for key in ('s0.loss_cls', 's5.loss_bbox', 's5.loss_iou',
                    's5.loss_mask_code', 's5.loss_mask_dice'):
            assert key in step and step[key] == step[key]  # present, not NaN
    assert any('coco/segm_mAP' in s for s in scalars)  # validation ran

    # the fitted codec is in the checkpoint
    state = torch.load(ckpt, map_location='cpu',
                       weights_only=False)['state_dict']
    with np.load(codec) as arrays:
        np.testing.assert_allclose(
            state['roi_head.mask_codec.components'].numpy(),
            arrays['components'])

    # testing needs no codec file
    missing = str(tmp_path / 'no_such_codec.npz')
    proc = run_tool([
        'tools/test.py', CONFIG, ckpt, '--work-dir', work_dir,
        '--cfg-options', f'model.roi_head.mask_codec.codec_file={missing}'
    ])
    assert proc.returncode == 0, explain(proc)
    assert 'coco/segm_mAP' in proc.stdout + proc.stderr

    from mmdet.apis import inference_detector, init_detector
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO_ROOT, CONFIG))
    cfg.model.roi_head.mask_codec.codec_file = missing
    model = init_detector(cfg, ckpt, device='cpu')
    torch.testing.assert_close(
        model.roi_head.mask_codec.components,
        state['roi_head.mask_codec.components'])
    result = inference_detector(model, osp.join(REPO_ROOT, SAMPLE_IMAGE))
    pred = result.pred_instances
    height, width = result.ori_shape
    assert pred.masks.shape == (100, height, width)  # top-100, no NMS
    assert pred.masks.dtype == torch.bool


def test_matching_check_measures_query_start_and_churn(tmp_path):
    """istr_matching_check.py on a random model: the query features start
    correlated (the shared pooled part), churn fractions lie in [0, 1] per
    stage, and a model whose matching ignores the codes never churns."""
    import json
    codec = str(tmp_path / 'codec.npz')
    proc = run_tool([
        'tools/misc/fit_mask_codec.py',
        osp.join(DATA_ROOT, 'trainval.json'), '--out', codec, '--no-progress'
    ])
    assert proc.returncode == 0, explain(proc)
    reports = {}
    for name, extra in (('default', []), ('no_code_cost', [
            f'model.train_cfg.rcnn.{s}.assigner.match_costs.3.weight=0.0'
            for s in range(6)
    ])):
        out = str(tmp_path / f'{name}.json')
        proc = run_tool([
            'tools/analysis_tools/istr_matching_check.py', CONFIG, 'none',
            '--images', '2', '--out', out, '--cfg-options',
            f'model.roi_head.mask_codec.codec_file={codec}', *extra
        ])
        assert proc.returncode == 0, explain(proc)
        reports[name] = json.load(open(out))
    start = reports['default']['query_start']
    assert 0.2 < start['mean_pairwise_cosine'] <= 1.0
    assert start['shared_norm'] > 0
    churn = reports['default']['matching_churn']
    assert sorted(churn) == [f'stage{s}' for s in range(6)]
    assert all(0 <= v <= 1 for v in churn.values())
    assert all(v == 0 for v in reports['no_code_cost']
               ['matching_churn'].values())
