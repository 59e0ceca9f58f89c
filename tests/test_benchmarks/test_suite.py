# Copyright (c) mmembed authors. All rights reserved.
"""The benchmark suite's plumbing: a quick run of the loss-kernel group in
subprocesses, its JSON, and the page rendered from it. (The numbers
themselves are measured by `python benchmarks/run.py`, not here.)"""
import json
import os.path as osp
import subprocess
import sys

import pytest

from mmembed.testing import get_repo_root, get_shared_data_root

REPO = get_repo_root()


def test_quick_lovasz_run_writes_json_and_renders(tmp_path):
    out = tmp_path / 'results' / 'cpu.json'
    proc = subprocess.run(
        [sys.executable, 'benchmarks/run.py', '--only', 'lovasz', '--quick',
         '--device', 'cpu', '--out', str(out), '--no-render'],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report['machine']['device'] == 'cpu'
    assert {'torch', 'mmcv', 'mmdet', 'torch_threads'} <= set(
        report['machine'])
    rows = report['results']['lovasz']
    assert [r['num_inst'] for r in rows] == [1, 8, 64]
    for row in rows:
        # the batched loss and the loop agree on the values
        assert row['max_abs_diff'] < 1e-3
        assert row['speedup_forward_backward'] > 0
    assert set(report['summary']['lovasz_speedup']) == {
        '1x128x128', '8x128x128', '64x128x128'}

    sys.path.insert(0, osp.join(REPO, 'benchmarks'))
    try:
        from render import render
    finally:
        sys.path.pop(0)
    doc = render(results_dir=str(out.parent), doc=str(tmp_path / 'b.md'),
                 notes_path=str(tmp_path / 'missing.md'))
    text = open(doc).read()
    assert '### Loss kernels' in text and '64 x 128x128' in text
    assert (tmp_path / '_static' / 'bench_lovasz_cpu.png').exists()


@pytest.mark.skipif(
    not osp.isdir(osp.join(get_shared_data_root(), 'coco128')),
    reason='../shared/data/coco128 missing')
def test_inference_worker_forces_equal_detection_counts():
    """Random-weight EmbedMask and mmdet's FCOS both return exactly the
    requested number of detections at a small scale, and the mask stage is
    timed separately for the mask model."""
    sys.path.insert(0, osp.join(REPO, 'benchmarks'))
    try:
        from workers import measure_inference
    finally:
        sys.path.pop(0)
    ours = measure_inference('embedmask', (427, 256), num_dets=30,
                             warmup=1, repeats=1, num_images=1)
    peer = measure_inference('fcos', (427, 256), num_dets=30, warmup=1,
                             repeats=1, num_images=1)
    assert ours['num_dets'] == [30] and peer['num_dets'] == [30]
    assert 'mask_stage' in ours and 'mask_stage' not in peer
    assert ours['median_ms'] > 0 and ours['peak_memory_mib'] > 0
    box_only = measure_inference('embedmask', (427, 256), num_dets=30,
                                 warmup=1, repeats=1, num_images=1,
                                 box_only=True)
    assert box_only['num_dets'] == [30] and 'mask_stage' not in box_only
