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
    # protocol 2: every shape warmed up, spread and preprocessing reported
    assert ours['protocol'] == 2 and ours['num_shapes'] == 1
    assert ours['p10_ms'] <= ours['median_ms'] <= ours['p90_ms']
    assert 0 < ours['preprocess_share'] < 1
    assert ours['preprocess']['median_ms'] < ours['median_ms']
    assert ours['mask_paste']['median_ms'] <= ours['mask_stage'][
        'median_ms'] < ours['median_ms']
    assert ours['median_ms'] > 0 and ours['peak_memory_mib'] > 0
    box_only = measure_inference('embedmask', (427, 256), num_dets=30,
                                 warmup=1, repeats=1, num_images=1,
                                 box_only=True)
    assert box_only['num_dets'] == [30] and 'mask_stage' not in box_only


def test_render_formats_small_times_and_names_the_device(tmp_path):
    sys.path.insert(0, osp.join(REPO, 'benchmarks'))
    try:
        import render
    finally:
        sys.path.pop(0)
    assert [render._ms(v) for v in (1.39, 0.452, 4.0, 9.96, 23.8, None)] == [
        '1.4', '0.45', '4.0', '10.0', '24', '-']

    def report(device, paste, provenance=None):
        row = dict(model='embedmask', scale=[1333, 800], box_only=False,
                   num_dets=[100], summed_box_area_over_image=1.0,
                   peak_memory_mib=1.0, median_ms=20.0, p10_ms=19.0,
                   p90_ms=22.0, p25_ms=19.5, p75_ms=21.0, std_ms=1.0,
                   mask_paste=dict(median_ms=paste))
        out = dict(machine=dict(device=device, processor='x', cpu_count=2,
                                torch='t', torch_threads=2, mmcv='m',
                                mmdet='d', mmembed='e'),
                   suite_seconds=60, results=dict(latency=[row]),
                   summary=dict(latency_800=dict(
                       embedmask_mask_paste_ms=paste)))
        if provenance:
            out['provenance'] = provenance
        return out

    results = tmp_path / 'results'
    results.mkdir()
    (results / 'cuda-X.json').write_text(
        json.dumps(report('cuda', 1.2, 'lent GPU')))
    (results / 'cpu.json').write_text(json.dumps(report('cpu', 30.0)))
    (results / 'onnx_cpu.json').write_text(json.dumps(dict(other=1)))
    text = open(render.render(str(results), str(tmp_path / 'b.md'),
                              str(tmp_path / 'none.md'))).read()
    # the paste target is a CUDA target: one row, from the CUDA file
    rows = [line for line in text.splitlines()
            if line.startswith('| mask paste <= 1.5 ms')]
    assert rows == ['| mask paste <= 1.5 ms at N = 100 | `cuda-X` '
                    '(see provenance) | 1.2 | yes |']
    assert 'Provenance: lent GPU' in text
    assert '| EmbedMask R50 (paper): mask paste ms | 30 | 1.2 |' in text


@pytest.mark.skipif(
    not osp.isdir(osp.join(get_shared_data_root(), 'coco128')),
    reason='../shared/data/coco128 missing')
def test_query_models_are_timed_with_their_mask_stages():
    """ISTR and its peer QueryInst (300 queries each) return exactly N
    detections; ISTR's mask stage (code MLPs of the 6 stages + decode +
    paste) and QueryInst's (mask RoI branch + paste) are both timed, and
    the summary reports their ratios."""
    sys.path.insert(0, osp.join(REPO, 'benchmarks'))
    try:
        from run import summarise
        from workers import measure_inference
    finally:
        sys.path.pop(0)
    results = [
        measure_inference(name, (427, 256), num_dets=30, warmup=1,
                          repeats=1, num_images=1)
        for name in ('istr', 'queryinst')
    ]
    for result in results:
        assert result['num_dets'] == [30], result['model']
        assert result['mask_paste']['median_ms'] <= result['mask_stage'][
            'median_ms'] < result['median_ms']
    istr, peer = results
    # the 6 stages' code MLPs are part of ISTR's mask stage
    assert istr['mask_stage']['median_ms'] > istr['mask_paste']['median_ms']
    row = summarise(dict(latency=results))['latency_256']
    assert row['istr_over_queryinst'] == pytest.approx(
        istr['median_ms'] / peer['median_ms'])
    assert 'istr_mask_stage_over_queryinst_mask_stage' in row


def test_summary_compares_necks_and_blendmask_without_embedmask():
    """Ratios need only the two rows they compare: the SharpMask neck
    against FPN in the same detector (latency and memory), BlendMask
    against its peers with no EmbedMask row in the run."""
    sys.path.insert(0, osp.join(REPO, 'benchmarks'))
    try:
        from run import summarise
    finally:
        sys.path.pop(0)

    def row(model, ms, mib, mask_ms=None):
        out = dict(model=model, scale=[1333, 800], box_only=False,
                   median_ms=ms, peak_memory_mib=mib)
        if mask_ms is not None:
            out['mask_stage'] = dict(median_ms=mask_ms)
        return out

    summary = summarise(dict(latency=[
        row('mask_rcnn', 100.0, 1000.0, 10.0),
        row('mask_rcnn_sharpmask', 130.0, 1500.0, 10.0),
        row('mask_rcnn_sharpmask_fpn', 110.0, 1100.0, 10.0),
        row('blendmask', 80.0, 900.0, 8.0),
        row('blendmask_sharpmask_fpn', 96.0, 1080.0, 8.0),
        row('condinst', 90.0, 950.0, 9.0),
        row('fcos', 64.0, 800.0),
    ]))['latency_800']
    assert summary['mask_rcnn_sharpmask_over_fpn'] == pytest.approx(1.3)
    assert summary['mask_rcnn_sharpmask_over_fpn_memory'] == pytest.approx(
        1.5)
    assert 'embedmask_sharpmask_over_fpn' not in summary
    # SharpMaskFPN twins against the same FPN rows
    assert summary['mask_rcnn_sharpmask_fpn_over_fpn'] == pytest.approx(1.1)
    assert summary['blendmask_sharpmask_fpn_over_fpn'] == pytest.approx(1.2)
    assert summary['blendmask_sharpmask_fpn_over_fpn_memory'] == \
        pytest.approx(1.2)
    assert 'embedmask_sharpmask_fpn_over_fpn' not in summary
    assert summary['blendmask_over_condinst'] == pytest.approx(80 / 90)
    assert summary['blendmask_over_mask_rcnn'] == pytest.approx(0.8)
    assert summary['blendmask_mask_stage_over_fcos'] == pytest.approx(0.125)
    assert not any(key.startswith('embedmask_over') for key in summary)


def _render_module():
    sys.path.insert(0, osp.join(REPO, 'benchmarks'))
    try:
        import render
    finally:
        sys.path.pop(0)
    return render


def test_doc_blocks_are_rendered_from_the_results(tmp_path):
    """A page's generated block becomes the table of the results JSON it
    names (only the models it lists, and their comparisons); a block that
    names a missing file or model fails instead of keeping stale text."""
    render = _render_module()
    results = tmp_path / 'results'
    results.mkdir()
    entry = dict(bbox_mAP=0.5, segm_mAP=0.61, boundary_mAP=0.4,
                 train_bbox_mAP=0.9, train_segm_mAP=0.8, iterations=240,
                 train_seconds=100.0, peak_rss_mib=900.0,
                 std=dict(segm_mAP=0.012), runs=[{}, {}, {}])
    report = dict(
        description='fine-tune', protocol='finetune',
        machine=dict(torch='2.13'),
        models=dict(embedmask=entry, condinst=dict(entry, segm_mAP=0.7),
                    istr=dict(entry, segm_mAP=0.2)),
        embedmask_vs_condinst=dict(segm_mAP_diff=-0.09,
                                   segm_mAP_spread=0.02,
                                   segm_mAP_diff_is_real=True),
        istr_vs_queryinst=dict(segm_mAP_diff=-0.5))
    (results / 'lc.json').write_text(json.dumps(report))
    docs = tmp_path / 'docs'
    docs.mkdir()
    page = docs / 'm.md'
    page.write_text('intro\n<!-- BEGIN generated: lc.json '
                    'models=embedmask,condinst -->\nstale 0.99\n'
                    '<!-- END generated -->\noutro\n')
    assert render.render_doc_blocks(str(results), str(docs)) == [str(page)]
    text = page.read_text()
    assert 'stale' not in text and text.startswith('intro\n')
    assert text.rstrip().endswith('outro')
    assert '0.610 ± 0.012' in text and '0.700' in text
    assert 'held-out segm mAP' in text and 'train-photo segm mAP' in text
    assert 'embedmask vs condinst' in text and 'istr' not in text
    # idempotent
    assert render.render_doc_blocks(str(results), str(docs)) == []
    page.write_text('<!-- BEGIN generated: none.json -->\n'
                    '<!-- END generated -->\n')
    with pytest.raises(FileNotFoundError, match='none.json'):
        render.render_doc_blocks(str(results), str(docs))
    page.write_text('<!-- BEGIN generated: lc.json models=blendmask -->\n'
                    '<!-- END generated -->\n')
    with pytest.raises(KeyError, match='blendmask'):
        render.render_doc_blocks(str(results), str(docs))


def test_lite0_group_plans_each_model_next_to_its_twin_and_peer():
    sys.path.insert(0, osp.join(REPO, 'benchmarks'))
    try:
        import run
        from workers import LITE0_PAIRS, MODELS
    finally:
        sys.path.pop(0)
    jobs = run.plan(run.parse_args(['--only', 'lite0']), 'cpu')
    names = [kwargs['name'] for _, _, kwargs in jobs]
    for lite, (twin, peer) in LITE0_PAIRS.items():
        assert {lite, twin, peer} <= set(names)
        assert MODELS[lite][1] == MODELS[peer][1]  # same family
    assert all(kwargs['scale'][1] == 640 for _, _, kwargs in jobs)
    summary = run.summarise({'lite0': [
        dict(model=n, median_ms=100.0 + i) for i, n in enumerate(names)]})
    assert 'embedmask_lite0_over_condinst_lite0' in summary[
        'lite0_latency_640']


def test_proposals_group_plans_sharpmask_next_to_deepmask():
    """The 'proposals' group runs both proposal models in one invocation,
    each in its own process, with the same repeats and images; --quick
    cuts both, --models keeps only what it names."""
    sys.path.insert(0, osp.join(REPO, 'benchmarks'))
    try:
        import run
        from workers import PROPOSAL_MODELS, WORKERS
    finally:
        sys.path.pop(0)
    assert 'proposals' in WORKERS
    full = run.plan(run.parse_args(['--only', 'proposals']), 'cpu')
    quick = run.plan(run.parse_args(['--only', 'proposals', '--quick']),
                     'cpu')
    for jobs in (full, quick):
        assert [(group, kind) for group, kind, _ in jobs] == [
            ('proposals', 'proposals')] * 2
        assert {kwargs['name'] for _, _, kwargs in jobs} == {
            'sharpmask_proposals', 'deepmask_proposals'}
        # both models get the same work
        assert len({(kwargs['repeats'], kwargs['num_images'])
                    for _, _, kwargs in jobs}) == 1
    assert quick[0][2]['repeats'] < full[0][2]['repeats']
    assert quick[0][2]['num_images'] < full[0][2]['num_images']
    # the same trunk: the SharpMask config inherits the DeepMask one
    sharp = open(osp.join(REPO, PROPOSAL_MODELS['sharpmask_proposals'])).read()
    assert "_base_ = './" + osp.basename(
        PROPOSAL_MODELS['deepmask_proposals']) + "'" in sharp
    only = run.plan(run.parse_args(
        ['--only', 'proposals', '--models', 'deepmask_proposals']), 'cpu')
    assert [kwargs['name'] for _, _, kwargs in only] == ['deepmask_proposals']
    assert run.plan(run.parse_args(['--only', 'lovasz']), 'cpu')[0][0] != \
        'proposals'


def _proposal_row(model, ms, mib, mask_ms, checksum, refinement):
    return dict(
        model=model, config=f'configs/sharpmask/{model}.py',
        trunk='ResNet-50 (3 stages)', refinement=refinement,
        mask_size=160 if refinement else 56,
        scales=[2**(s / 2) for s in range(-5, 2)],
        num_proposals_requested=1000, num_proposals=[1000],
        image_shapes=[[480, 640], [426, 640]], score_checksum=checksum,
        peak_memory_mib=mib, median_ms=ms, p10_ms=ms * 0.9,
        p90_ms=ms * 1.1, p25_ms=ms, p75_ms=ms, std_ms=1.0,
        pyramid=dict(median_ms=ms / 2), mask_stage=dict(median_ms=mask_ms),
        mask_paste=dict(median_ms=ms / 5))


def test_proposals_summary_and_page(tmp_path):
    """Ratios of the proposal group (time, memory, mask stage: SharpMask
    over DeepMask) and its table on the page, whose caption says what was
    compared, that the weights are random and whether both models kept
    the same windows."""
    sys.path.insert(0, osp.join(REPO, 'benchmarks'))
    try:
        import render
        from run import summarise
    finally:
        sys.path.pop(0)
    rows = [_proposal_row('sharpmask_proposals', 3000.0, 2600.0, 900.0,
                          512.25, True),
            _proposal_row('deepmask_proposals', 2400.0, 2000.0, 60.0,
                          512.25, False)]
    summary = summarise(dict(proposals=rows))
    assert summary['proposals'] == pytest.approx(dict(
        sharpmask_over_deepmask=1.25, sharpmask_over_deepmask_memory=1.3,
        sharpmask_mask_stage_over_deepmask_mask_stage=15.0))
    # one model alone gives no ratio
    assert 'proposals' not in summarise(dict(proposals=rows[:1]))

    results = tmp_path / 'results'
    results.mkdir()
    machine = dict(device='cpu', processor='x', cpu_count=2, torch='t',
                   torch_threads=2, mmcv='m', mmdet='d', mmembed='e')
    (results / 'cpu-proposals.json').write_text(json.dumps(dict(
        machine=machine, suite_seconds=60, results=dict(proposals=rows),
        summary=summary)))
    text = open(render.render(str(results), str(tmp_path / 'b.md'),
                              str(tmp_path / 'none.md'))).read()
    section = text.split('### Segment proposals')[1]
    assert 'ResNet-50 (3 stages) trunk for both' in section
    assert '2^-2.5 ... 2^0.5 (7 scales)' in section
    assert '480x640, 426x640' in section and 'top 1000 windows' in section
    assert 'Random weights' in section
    assert 'Both kept the same windows: yes.' in section
    assert ('| SharpMask proposals | `configs/sharpmask/sharpmask_proposals'
            '.py` | 160x160 | 1000 | 3000 | 2700-3300 | 1500 | 900 | 600 '
            '| 2600 | 1.25 |') in section
    assert '| DeepMask proposals |' in section and '| 1.00 |' in section
    assert '| proposals: sharpmask_over_deepmask | 1.250 |' in text

    rows[0]['score_checksum'] = 500.0  # other windows: said, not hidden
    assert render.same_proposal_windows(rows) is False
    assert '**no**' in render._proposals_section(dict(
        results=dict(proposals=rows)), 'cpu')


@pytest.mark.skipif(
    not osp.isdir(osp.join(get_shared_data_root(), 'coco128')),
    reason='../shared/data/coco128 missing')
def test_proposal_worker_times_both_models_on_the_same_windows(
        monkeypatch):
    """The worker on the CPU-sized R-18 twins (one image, one call): every
    requested proposal comes back, the stages are timed inside the call,
    and SharpMask and DeepMask score the same windows (same trunk and head
    weights), so the ratio compares the mask paths alone."""
    from mmembed.models.detectors import sharpmask_proposer
    sys.path.insert(0, osp.join(REPO, 'benchmarks'))
    try:
        import render
        import workers
    finally:
        sys.path.pop(0)
    # the worker wraps the detector's paste for its timer (it owns its
    # process in the suite); give this process its own back afterwards
    monkeypatch.setattr(sharpmask_proposer, 'paste_box_masks',
                        sharpmask_proposer.paste_box_masks)
    monkeypatch.setitem(
        workers.PROPOSAL_MODELS, 'sharpmask_proposals',
        'configs/sharpmask/sharpmask_r18_coco128_proposals.py')
    monkeypatch.setitem(
        workers.PROPOSAL_MODELS, 'deepmask_proposals',
        'configs/sharpmask/deepmask_r18_coco128_proposals.py')
    rows = [workers.measure_proposals(name, warmup=0, repeats=1,
                                      num_images=1)
            for name in ('sharpmask_proposals', 'deepmask_proposals')]
    for row, mask_size in zip(rows, (160, 56)):
        assert row['num_proposals'] == [row['num_proposals_requested']]
        assert row['mask_size'] == mask_size
        assert row['trunk'] == 'ResNet-18 (3 stages)'
        assert row['image_shapes'] == [[480, 640]]
        stages = sum(row[k]['median_ms']
                     for k in ('pyramid', 'mask_stage', 'mask_paste'))
        assert 0 < stages < row['median_ms']
        assert row['peak_memory_mib'] > 0
    assert rows[0]['refinement'] and not rows[1]['refinement']
    assert render.same_proposal_windows(rows) is True


@pytest.mark.skipif(
    not osp.isdir(osp.join(get_shared_data_root(), 'coco128')),
    reason='../shared/data/coco128 missing')
def test_interleaved_worker_times_models_round_by_round(monkeypatch):
    """One process, every model once per round (order rotated), each round's
    time over the peer's; the plan and the summary carry the ratios."""
    sys.path.insert(0, osp.join(REPO, 'benchmarks'))
    try:
        import run
        import workers
    finally:
        sys.path.pop(0)
    order = []
    build = workers.build_model

    def recording_build(name, num_dets, device):
        model, cfg = build(name, num_dets, device)
        step = model.test_step
        model.test_step = lambda batch: (order.append(name), step(batch))[1]
        return model, cfg

    monkeypatch.setattr(workers, 'build_model', recording_build)
    result = workers.measure_interleaved(['fcos', 'embedmask'], 'fcos',
                                         (427, 256), num_dets=10, rounds=2,
                                         num_images=1)
    # warm-up, then round 0 in list order, round 1 rotated
    assert order == ['fcos', 'embedmask'] * 2 + ['embedmask', 'fcos']
    rows = result['models']
    assert rows['fcos']['over_peer'] == 1.0 and rows['fcos']['n'] == 2
    assert rows['embedmask']['over_peer'] > 0
    assert 'mask_stage' in rows['embedmask'] and 'mask_stage' not in rows[
        'fcos']
    with pytest.raises(ValueError, match="peer 'condinst'"):
        workers.measure_interleaved(['fcos'], 'condinst', (427, 256))
    summary = run.summarise(dict(interleaved=[result]))
    assert summary['interleaved'] == {
        'embedmask_over_fcos': rows['embedmask']['over_peer']}
    jobs = run.plan(run.parse_args(
        ['--only', 'interleaved', '--models', 'queryinst', 'istr_v2']), 'cpu')
    assert [kw['names'] for _, _, kw in jobs] == [['queryinst', 'istr_v2']]
    # without its peer a set is not planned
    assert run.plan(run.parse_args(
        ['--only', 'interleaved', '--models', 'istr_v2']), 'cpu') == []
