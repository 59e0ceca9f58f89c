# Copyright (c) mmembed authors. All rights reserved.
"""EmbedMask trains 5 iterations through tools/train.py and its checkpoint
evaluates (bbox + segm) through tools/test.py."""
import json
import os.path as osp

from tool_test_helpers import explain, requires_fruits_nuts, run_tool

pytestmark = requires_fruits_nuts
CONFIG = 'tests/test_tools/configs/embedmask_fruits_5iter.py'


def test_embedmask_trains_five_iterations_and_tests(tmp_path):
    work_dir = str(tmp_path / 'work')
    proc = run_tool(['tools/train.py', CONFIG, '--work-dir', work_dir])
    assert proc.returncode == 0, explain(proc)
    assert osp.isfile(osp.join(work_dir, 'iter_5.pth')), explain(proc)
    scalars = []
    for line in open(next(iter(_find(work_dir, 'scalars.json')))):
        scalars.append(json.loads(line))
    train_steps = [s for s in scalars if 'loss_mask' in s]
    assert [s['iter'] for s in train_steps] == [1, 2, 3, 4, 5]
    for step in train_steps:
        for key in ('loss_cls', 'loss_bbox', 'loss_centerness', 'loss_mask',
                    'loss_smooth'):
            assert key in step and step[key] == step[key]  # present, not NaN
    assert any('coco/segm_mAP' in s for s in scalars)  # validation ran
    proc = run_tool([
        'tools/test.py', CONFIG,
        osp.join(work_dir, 'iter_5.pth'), '--work-dir', work_dir
    ])
    assert proc.returncode == 0, explain(proc)
    assert 'coco/segm_mAP' in proc.stdout + proc.stderr
    test_log = proc.stdout + proc.stderr

    # mask quality of the matched detections (the same checkpoint twice:
    # two models, identical numbers, every one in range)
    out = str(tmp_path / 'quality.json')
    ckpt = osp.join(work_dir, 'iter_5.pth')
    proc = run_tool([
        'tools/analysis_tools/matched_mask_quality.py', '--model', 'a',
        CONFIG, ckpt, '--model', 'b', CONFIG, ckpt, '--score-thr', '0',
        '--out', out
    ])
    assert proc.returncode == 0, explain(proc)
    report = json.load(open(out))
    a, b = report['models']['a'], report['models']['b']
    assert a['gts'] == 165 and 0 <= a['found'] <= 1
    for key in ('found', 'mask_iou', 'boundary_iou'):
        assert a[key] == b[key]
    if a['found'] > 0:
        assert 0.5 <= a['mask_iou'] <= 1 and 0 <= a['boundary_iou'] <= 1

    # the same checkpoint under two mask thresholds, loaded once: the
    # boxes do not change, and at the config's threshold (0.5) the masks
    # score what tools/test.py printed
    out = str(tmp_path / 'sweep.json')
    proc = run_tool([
        'tools/analysis_tools/test_cfg_sweep.py', CONFIG, ckpt, '--key',
        'mask_thr', '--values', '0.3', '0.5', '--out', out
    ])
    assert proc.returncode == 0, explain(proc)
    sweep = json.load(open(out))['results']
    assert set(sweep) == {'0.3', '0.5'}
    assert sweep['0.3']['coco/bbox_mAP'] == sweep['0.5']['coco/bbox_mAP']
    import re
    printed = float(re.search(r'coco/segm_mAP: ([0-9.]+)', test_log)[1])
    assert sweep['0.5']['coco/segm_mAP'] == printed
    # a key the config leaves to its default (the head declares it), with
    # another key held fixed: the official paste at 0.5 is the same run
    proc = run_tool([
        'tools/analysis_tools/test_cfg_sweep.py', CONFIG, ckpt, '--key',
        'mask_interp', '--values', 'logprob', 'logit', '--set',
        'mask_thr=0.5', '--out', out
    ])
    assert proc.returncode == 0, explain(proc)
    report = json.load(open(out))
    assert report['fixed'] == {'mask_thr': 0.5}
    assert report['results']['logprob']['coco/segm_mAP'] == printed
    assert report['results']['logit']['coco/bbox_mAP'] == sweep['0.5'][
        'coco/bbox_mAP']
    proc = run_tool([
        'tools/analysis_tools/test_cfg_sweep.py', CONFIG, ckpt, '--key',
        'mask_trh', '--values', '0.4'
    ])
    assert proc.returncode != 0 and "'mask_trh' is not a key" in (
        proc.stdout + proc.stderr)


def _find(root, name):
    import glob
    return glob.glob(osp.join(root, '**', name), recursive=True)
