# Copyright (c) mmembed authors. All rights reserved.
"""Render docs/benchmarks.md and its plots from benchmarks/results/*.json.

    python benchmarks/render.py

Called by ``benchmarks/run.py`` after a run. The analysis text comes from
``benchmarks/notes.md`` (hand-written, it discusses the figures); every
number in the tables comes from the JSON files. It also refreshes the
figures other pages quote (README.md, docs/*.md): generated learning-check
blocks (``render_doc_blocks``) and single-figure spans
``<!-- fig: FILE.json PATH fmt=... -->0.87<!-- /fig -->``
(``render_figure_spans``); tests/test_benchmarks/test_doc_figures.py fails
on a stale one and on a hand-written result figure.
"""
import glob
import json
import math
import os
import os.path as osp
import re
from typing import Any, Dict, List, Optional

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(HERE)
DOC = osp.join(REPO, 'docs', 'benchmarks.md')
README = osp.join(REPO, 'README.md')
NAMES = {
    'embedmask': 'EmbedMask R50 (paper)',
    'embedmask_v3': 'EmbedMask R50 (v3)',
    'embedmask_recommended': 'EmbedMask R50 (recommended)',
    'blendmask': 'BlendMask R50',
    'fcos': 'FCOS R50 (box only)',
    'condinst': 'CondInst R50',
    'mask_rcnn': 'Mask R-CNN R50',
    'yolact': 'YOLACT R50 (550x550)',
    'istr': 'ISTR R50',
    'istr_v2': 'ISTR v2 R50 (PCA)',
    'istr_v2_recommended': 'ISTR v2 R50, recommended keys (DCT-64)',
    'queryinst': 'QueryInst R50',
    'queryinst_separable_roi': 'QueryInst R50, SeparableRoIExtractor',
    'embedmask_sharpmask': 'EmbedMask R50, SharpMask neck',
    'mask_rcnn_sharpmask': 'Mask R-CNN R50, SharpMask neck',
    'embedmask_sharpmask_fpn': 'EmbedMask R50, SharpMaskFPN',
    'blendmask_sharpmask_fpn': 'BlendMask R50, SharpMaskFPN',
    'mask_rcnn_sharpmask_fpn': 'Mask R-CNN R50, SharpMaskFPN',
    'sharpmask_proposals': 'SharpMask proposals',
    'deepmask_proposals': 'DeepMask proposals',
}


def _fmt(value, digits=2):
    return '-' if value is None else f'{value:.{digits}f}'


def _ms(value) -> str:
    """Milliseconds: 2 significant digits below 10 ms (a 1.4 ms paste must
    not print as 1), whole numbers above."""
    if value is None:
        return '-'
    if value >= 10:
        return f'{value:.0f}'
    # 2 significant digits, trailing zero kept: 4.0, 5.1, 0.45
    return f'{value:.1f}' if value >= 1 else f'{value:.2f}'


def _spread(r: dict) -> str:
    """p10-p90 where the run has them (protocol 2), else p25-p75."""
    if 'p10_ms' in r:
        return f"{_ms(r['p10_ms'])}-{_ms(r['p90_ms'])}"
    return f"{_ms(r['p25_ms'])}-{_ms(r['p75_ms'])} (p25-p75)"


def _table(header: List[str], rows: List[List[str]]) -> str:
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(r) + ' |' for r in rows]
    return '\n'.join(lines)


def _latency_section(tag: str, report: dict) -> str:
    results = report['results'].get('latency', [])
    if not results:
        return ''
    out = []
    shorts = sorted({r['scale'][1] for r in results if r['model'] != 'yolact'},
                    reverse=True)
    for short in shorts:
        rows = []
        base = next((r for r in results if r['model'] == 'mask_rcnn'
                     and r['scale'][1] == short), None)
        for r in results:
            if r['model'] != 'yolact' and r['scale'][1] != short:
                continue
            if r['model'] == 'yolact' and short != shorts[0]:
                continue
            name = NAMES[r['model']] + (' box branch only' if r['box_only']
                                        else '')
            ratio = r['median_ms'] / base['median_ms'] if base else None
            mask = r.get('mask_stage', {}).get('median_ms')
            paste = r.get('mask_paste', {}).get('median_ms')
            pre = r.get('preprocess', {}).get('median_ms')
            rows.append([
                name, f"{r['scale'][0]}x{r['scale'][1]}",
                _ms(r['median_ms']), _spread(r), _ms(r.get('std_ms')),
                _ms(mask), _ms(paste), _ms(pre), _fmt(ratio),
                ','.join(map(str, r['num_dets'])),
                _fmt(r['summed_box_area_over_image']),
                _fmt(r['peak_memory_mib'], 0)
            ])
        out.append(f'**Short side {short}** ({tag})\n\n' + _table([
            'model', 'input (resize scale)', 'median ms', 'p10-p90 ms',
            'std ms', 'mask stage ms', 'mask paste ms', 'preprocess ms',
            'x Mask R-CNN', 'detections', 'summed box area / image',
            'peak memory MiB'
        ], rows))
    return '\n\n'.join(out)


def _summary_section(report: dict) -> str:
    summary = report.get('summary', {})
    rows = []
    for key, value in summary.items():
        if isinstance(value, dict):
            for sub, v in value.items():
                rows.append([f'{key}: {sub}', _fmt(v, 3)])
        else:
            rows.append([key, _fmt(value, 3)])
    return _table(['ratio (same run)', 'value'], rows) if rows else ''


def _scaling_section(report: dict, tag: str) -> str:
    res = report['results']
    out = []
    for group, key, label in (('scaling_n', 'num_dets_requested',
                               'detections N (short side 800)'),
                              ('scaling_size', 'short_side',
                               'image short side (N = 100)')):
        rows = []
        for r in sorted(res.get(group, []), key=lambda r: (r['model'],
                                                          r[key])):
            rows.append([
                NAMES[r['model']], str(r[key]),
                _ms(r['median_ms']),
                _ms(r.get('mask_stage', {}).get('median_ms')),
                _ms(r.get('mask_paste', {}).get('median_ms')),
                _fmt(r['summed_box_area_over_image']),
                _fmt(r['peak_memory_mib'], 0)
            ])
        if rows:
            out.append(f'**{label}** ({tag})\n\n' + _table([
                'model', label.split(' (')[0], 'total median ms',
                'mask stage median ms', 'mask paste median ms',
                'summed box area / image', 'peak memory MiB'
            ], rows))
    return '\n\n'.join(out)


def _train_section(report: dict, tag: str) -> str:
    rows = [[
        NAMES[r['model']], f"{r['scale'][0]}x{r['scale'][1]}",
        str(r['batch_size']),
        _fmt(r['median_s']), _fmt(r['std_s']),
        _fmt(r['peak_memory_mib'], 0)
    ] for r in report['results'].get('train_step', [])]
    if not rows:
        return ''
    return f'({tag})\n\n' + _table([
        'model', 'resize scale', 'batch', 'median s / iter', 'std s',
        'peak memory MiB'
    ], rows)


def _lovasz_section(report: dict, tag: str) -> str:
    rows = []
    for r in report['results'].get('lovasz', []):
        rows.append([
            f"{r['num_inst']} x {r['height']}x{r['width']}",
            _fmt(r['batched_forward']['median_ms']),
            _fmt(r['batched_backward']['median_ms']),
            _fmt(r['loop_forward']['median_ms']),
            _fmt(r['loop_backward']['median_ms']),
            _fmt(r['speedup_forward_backward']),
            f"{r['max_abs_diff']:.1e}"
        ])
    if not rows:
        return ''
    return f'({tag})\n\n' + _table([
        'N x H x W', 'batched fwd ms', 'batched bwd ms', 'loop fwd ms',
        'loop bwd ms', 'speed-up (fwd+bwd)', 'max |loss diff|'
    ], rows)


def same_proposal_windows(rows: List[dict]) -> Optional[bool]:
    """Whether SharpMask and DeepMask kept the same windows in their timed
    calls: equal summed proposal scores (same trunk and head weights, same
    images in the same order). None without both rows."""
    sums = [r.get('score_checksum') for r in rows
            if r['model'] in ('sharpmask_proposals', 'deepmask_proposals')]
    if len(sums) != 2 or None in sums:
        return None
    return math.isclose(sums[0], sums[1], rel_tol=1e-6)


def _scales_text(scales: List[float]) -> str:
    """A pyramid as powers of two: ``2^-2.5 ... 2^0.5`` (7 scales)."""
    exps = [math.log2(s) for s in scales]
    if len(exps) < 2:
        return ', '.join(f'2^{e:g}' for e in exps)
    return f'2^{exps[0]:g} ... 2^{exps[-1]:g} ({len(exps)} scales)'


def _proposals_section(report: dict, tag: str) -> str:
    """SharpMask against plain DeepMask as segment-proposal models: time per
    image and peak memory, with the stages inside the same calls."""
    rows = report['results'].get('proposals', [])
    if not rows:
        return ''
    base = next((r for r in rows if r['model'] == 'deepmask_proposals'),
                None)
    table = []
    for r in rows:
        ratio = r['median_ms'] / base['median_ms'] if base else None
        table.append([
            NAMES[r['model']], f"`{r['config']}`",
            f"{r['mask_size']}x{r['mask_size']}",
            ','.join(map(str, r['num_proposals'])),
            _ms(r['median_ms']), _spread(r),
            _ms(r.get('pyramid', {}).get('median_ms')),
            _ms(r.get('mask_stage', {}).get('median_ms')),
            _ms(r.get('mask_paste', {}).get('median_ms')),
            _fmt(r['peak_memory_mib'], 0), _fmt(ratio)
        ])
    first = rows[0]
    shapes = ', '.join(f'{h}x{w}' for h, w in first['image_shapes'])
    same = same_proposal_windows(rows)
    caption = (
        f"({tag}) {first['trunk']} trunk for both"
        f" (the configs' own), the same trunk and DeepMask head weights;"
        f" the pyramid {_scales_text(first['scales'])} of each full"
        f" coco128 image ({shapes}, batch 1, no resize), the top"
        f" {first['num_proposals_requested']} windows over all scales,"
        ' no NMS, masks pasted at the image size and thresholded.'
        ' Random weights (no checkpoints exist here): with no score'
        ' threshold and no NMS the work does not depend on the weights,'
        ' so the times are what trained weights take.'
        + ('' if same is None else
           ' Both kept the same windows: '
           + ('yes.' if same else '**no** (the ratio compares unequal'
              ' work).')) +
        ' "pyramid": trunk + score branch over every scale; "mask'
        ' stage": SharpMask\'s horizontal nets and refinement / DeepMask\'s'
        ' mask branch; "mask paste": pasting and thresholding the masks.')
    return caption + '\n\n' + _table([
        'model', 'config', 'mask', 'proposals', 'median ms / image',
        'p10-p90 ms', 'pyramid ms', 'mask stage ms', 'mask paste ms',
        'peak memory MiB', 'x DeepMask'
    ], table)


# (label, summary key inside latency_800 or top level, bound, device kinds
# the target was set for)
TARGETS = (
    ('EmbedMask latency <= 0.8 x Mask R-CNN (800 x 1333, N = 100)',
     'latency_800.embedmask_over_mask_rcnn', 0.8, ('cpu', 'cuda')),
    ('EmbedMask latency <= 1.0 x CondInst', 'latency_800.embedmask_over_'
     'condinst', 1.0, ('cpu', )),
    ('EmbedMask latency <= 0.95 x CondInst', 'latency_800.embedmask_over_'
     'condinst', 0.95, ('cuda', )),
    # issue 18: the recommended variant keeps the paper model's speed
    ('EmbedMask (recommended) latency <= 0.9 x CondInst',
     'latency_800.embedmask_recommended_over_condinst', 0.9, ('cpu', )),
    ('mask stage <= 20 % of FCOS latency', 'latency_800.mask_stage_over_fcos',
     0.2, ('cpu', 'cuda')),
    ('mask stage <= CondInst mask stage (N = 100)',
     'latency_800.mask_stage_over_condinst_mask_stage', 1.0, ('cuda', )),
    ('mask paste <= 1.5 ms at N = 100', 'latency_800.embedmask_mask_paste_ms',
     1.5, ('cuda', )),
    ('training step time <= 1.2 x CondInst',
     'train_time_embedmask_over_condinst', 1.2, ('cpu', 'cuda')),
    ('training step memory <= 1.2 x CondInst',
     'train_memory_embedmask_over_condinst', 1.2, ('cpu', 'cuda')),
    ('BlendMask latency <= 0.8 x Mask R-CNN',
     'latency_800.blendmask_over_mask_rcnn', 0.8, ('cpu', 'cuda')),
    ('BlendMask latency <= 1.0 x CondInst',
     'latency_800.blendmask_over_condinst', 1.0, ('cpu', 'cuda')),
    ('BlendMask mask stage <= 25 % of FCOS latency',
     'latency_800.blendmask_mask_stage_over_fcos', 0.25, ('cpu', 'cuda')),
    ('ISTR latency <= 0.9 x QueryInst', 'latency_800.istr_over_queryinst',
     0.9, ('cpu', 'cuda')),
    # issue 19: the official v2 mask branch keeps ISTR cheaper than QueryInst
    ('ISTR v2 latency <= 0.9 x QueryInst',
     'latency_800.istr_v2_over_queryinst', 0.9, ('cpu', )),
    # the same, timed round by round in one process (run-to-run drift
    # cancels; docs/istr.md)
    ('ISTR v2 latency <= 0.9 x QueryInst (interleaved rounds)',
     'interleaved.istr_v2_over_queryinst', 0.9, ('cpu', )),
    # issue 20: the mask-only refinement path costs at most 1.3 x FPN
    ('EmbedMask with SharpMaskFPN latency <= 1.3 x with FPN',
     'latency_800.embedmask_sharpmask_fpn_over_fpn', 1.3, ('cpu', 'cuda')),
    ('batched Lovász >= 5 x the loop (64 x 200 x 336)',
     'lovasz_speedup.64x200x336', -5.0, ('cpu', 'cuda')),
)


def _lookup(summary: dict, key: str):
    value = summary
    for part in key.split('.'):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _targets_section(reports: Dict[str, dict]) -> str:
    """One row per target and device: the figure, where it comes from."""
    rows = []
    for label, key, bound, kinds in TARGETS:
        for tag, report in reports.items():
            kind = 'cuda' if report['machine']['device'].startswith(
                'cuda') else 'cpu'
            if kind not in kinds:
                continue
            value = _lookup(report.get('summary', {}), key)
            if value is None:
                continue
            met = value >= -bound if bound < 0 else value <= bound
            rows.append([
                label, f'`{tag}`' + (' (see provenance)'
                                     if 'provenance' in report else ''),
                f'{value:.3g}', 'yes' if met else '**no**'
            ])
    if not rows:
        return ''
    return _table(['target', 'device (results file)', 'measured', 'met'],
                  rows)


def _side_by_side(reports: Dict[str, dict]) -> str:
    """Headline figures at 800 x 1333, N = 100, one column per device."""
    metrics = []
    for model in ('embedmask', 'embedmask_v3', 'blendmask', 'condinst',
                  'mask_rcnn', 'fcos', 'istr', 'queryinst'):
        metrics.append((f'{NAMES[model]}: total ms', model, 'median_ms'))
    for model in ('embedmask', 'blendmask', 'condinst', 'mask_rcnn', 'istr',
                  'queryinst'):
        metrics.append((f'{NAMES[model]}: mask stage ms', model,
                        'mask_stage'))
        metrics.append((f'{NAMES[model]}: mask paste ms', model,
                        'mask_paste'))
    metrics.append(('EmbedMask: preprocessing ms', 'embedmask', 'preprocess'))
    metrics.append(('EmbedMask: preprocessing share of total', 'embedmask',
                    'preprocess_share'))
    # a results file without latency rows (a partial run of another group)
    # would add a column of dashes
    tags = [tag for tag, report in reports.items()
            if report['results'].get('latency')]
    rows = []
    for label, model, key in metrics:
        cells = []
        for tag in tags:
            hit = next((r for r in reports[tag]['results'].get('latency', [])
                        if r['model'] == model and not r['box_only']
                        and r['scale'][1] == 800), None)
            value = None if hit is None else hit.get(key)
            if isinstance(value, dict):
                value = value.get('median_ms')
            cells.append('-' if value is None else (
                f'{value:.2f}' if key == 'preprocess_share' else _ms(value)))
        if any(c != '-' for c in cells):
            rows.append([label] + cells)
    if not rows:
        return ''
    return _table(['at 800 x 1333, N = 100'] + [f'`{t}`' for t in tags],
                  rows)


def _plots(tag: str, report: dict, static: str) -> List[str]:
    """Write PNGs into ``static``; return their paths relative to the
    folder of the page (``_static/<name>``)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    os.makedirs(static, exist_ok=True)
    files = []
    res = report['results']
    latency = [r for r in res.get('latency', []) if not r['box_only']]
    if latency:
        short = max(r['scale'][1] for r in latency if r['model'] != 'yolact')
        rows = [r for r in latency
                if r['model'] == 'yolact' or r['scale'][1] == short]
        fig, ax = plt.subplots(figsize=(7, 3.2))
        ax.barh([NAMES[r['model']] for r in rows],
                [r['median_ms'] for r in rows],
                xerr=[[r['median_ms'] - r['p25_ms'] for r in rows],
                      [r['p75_ms'] - r['median_ms'] for r in rows]],
                color='tab:blue')
        ax.set_xlabel('median ms per image (batch 1, test_step)')
        ax.set_title(f'Inference latency, short side {short}, '
                     f'100 detections ({tag})')
        fig.tight_layout()
        name = f'bench_latency_{tag}.png'
        fig.savefig(osp.join(static, name), dpi=100)
        plt.close(fig)
        files.append(f'_static/{name}')
    for group, key, xlabel in (('scaling_n', 'num_dets_requested',
                                'detections N'),
                               ('scaling_size', 'short_side',
                                'image short side')):
        rows = res.get(group, [])
        if not rows:
            continue
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
        for model in sorted({r['model'] for r in rows}):
            pts = sorted(
                (r[key], r.get('mask_stage', {}).get('median_ms'),
                 r.get('mask_paste', {}).get('median_ms'),
                 r['peak_memory_mib']) for r in rows if r['model'] == model)
            for i, ax in enumerate(axes):
                ax.plot([p[0] for p in pts], [p[i + 1] for p in pts], 'o-',
                        label=NAMES[model])
        axes[0].set_ylabel('mask stage median ms')
        axes[1].set_ylabel('mask paste median ms')
        axes[2].set_ylabel('peak memory MiB')
        for ax in axes:
            ax.set_xlabel(xlabel)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.suptitle(f'Scaling with {xlabel} ({tag})')
        fig.tight_layout()
        name = f'bench_{group}_{tag}.png'
        fig.savefig(osp.join(static, name), dpi=100)
        plt.close(fig)
        files.append(f'_static/{name}')
    lovasz = res.get('lovasz', [])
    if lovasz:
        fig, ax = plt.subplots(figsize=(6, 3))
        labels = [f"{r['num_inst']}x{r['height']}x{r['width']}"
                  for r in lovasz]
        ax.bar(labels, [r['speedup_forward_backward'] for r in lovasz])
        ax.axhline(1, color='k', lw=0.8)
        ax.set_ylabel('loop time / batched time')
        ax.set_title(f'Lovász hinge: batched vs per-instance loop ({tag})')
        plt.setp(ax.get_xticklabels(), rotation=30, ha='right')
        fig.tight_layout()
        name = f'bench_lovasz_{tag}.png'
        fig.savefig(osp.join(static, name), dpi=100)
        plt.close(fig)
        files.append(f'_static/{name}')
    return files


def _mean_std(entry: dict, key: str) -> str:
    """``mean +- std`` of a learning-check key ('-' when absent)."""
    if entry.get(key) is None:
        return '-'
    std = entry.get('std', {}).get(key)
    return _fmt(entry[key], 3) + (f' ± {std:.3f}' if std else '')


def _learning_section(path: str, lc: dict) -> str:
    """One learning-check report as a table: AP with its spread over the
    seeds; for the fine-tune protocol the held-out photos first, then the
    training photos, and boundary AP where it was measured."""
    finetune = lc.get('protocol') == 'finetune'
    header = ['model', 'seeds', 'bbox mAP', 'segm mAP']
    keys = ['bbox_mAP', 'segm_mAP']
    if any(r.get('boundary_mAP') is not None for r in lc['models'].values()):
        header.append('boundary mAP')
        keys.append('boundary_mAP')
    if finetune:
        header = [h if h in ('model', 'seeds') else f'held-out {h}'
                  for h in header]
        header += ['train-photo bbox mAP', 'train-photo segm mAP']
        keys += ['train_bbox_mAP', 'train_segm_mAP']
    if any(r.get('loss_last_quarter_share') is not None
           for r in lc['models'].values()):
        # share of the loss decrease in the last quarter of the schedule:
        # near 0 when the loss flattened
        header.append('loss drop in last quarter')
        keys.append('loss_last_quarter_share')
    header += ['iterations', 'train s', 'peak RSS MiB']
    rows = []
    for name, r in lc['models'].items():
        rows.append([name, str(len(r.get('runs', [r])))] +
                    [_mean_std(r, k) for k in keys] +
                    [str(int(r['iterations'])), _fmt(r['train_seconds'], 0),
                     _fmt(r['peak_rss_mib'], 0)])
    text = (f'`{osp.relpath(path, REPO)}` '
            f"({lc['description']}; torch {lc['machine']['torch']}):\n\n" +
            _table(header, rows) + '\n')
    verdicts = [(k, v) for k, v in lc.items() if '_vs_' in k]
    if verdicts:
        vrows = [[k.replace('_vs_', ' vs '),
                  _fmt(v.get('segm_mAP_diff'), 3),
                  _fmt(v.get('segm_mAP_spread'), 3),
                  str(v.get('segm_mAP_diff_is_real')),
                  _fmt(v.get('bbox_mAP_diff'), 3),
                  str(v.get('bbox_mAP_diff_is_real')),
                  _fmt(v.get('boundary_mAP_diff'), 3)]
                 for k, v in verdicts]
        text += '\nDifferences (real only beyond the sum of the two standard '\
                'deviations):\n\n' + _table(
                    ['pair', 'segm diff', 'spread', 'real', 'bbox diff',
                     'real', 'boundary diff'], vrows) + '\n'
    return text


GENERATED_BLOCK = re.compile(
    r'(<!-- BEGIN generated: (?P<file>[\w.-]+\.json)'
    r'(?: models=(?P<models>[\w,]+))? -->\n)(?P<body>.*?)'
    r'(<!-- END generated -->)', re.S)


def _loss_curve_plot(lc: dict, out_png: str) -> Optional[str]:
    """Training loss against iteration, one line per run, one panel per
    model, from the runs' ``loss_curve`` (the fine-tune protocol keeps
    them): shows whether the schedule let the loss flatten. Returns the
    path relative to the page (``_static/...``), or None without curves."""
    models = {name: [run['loss_curve'] for run in entry.get('runs', [])
                     if run.get('loss_curve')]
              for name, entry in lc['models'].items()}
    models = {k: v for k, v in models.items() if v}
    if not models:
        return None
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    cols = min(4, len(models))
    rows = -(-len(models) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows),
                             squeeze=False, sharey=True)
    for ax, (name, curves) in zip(axes.flat, models.items()):
        for curve in curves:
            its, losses = zip(*curve)
            ax.plot(its, losses, lw=1)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel('iteration', fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(models):]:
        ax.axis('off')
    axes[0][0].set_ylabel('training loss', fontsize=8)
    fig.tight_layout()
    os.makedirs(osp.dirname(out_png), exist_ok=True)
    fig.savefig(out_png, dpi=80)
    plt.close(fig)
    return osp.join('_static', osp.basename(out_png))


def render_doc_blocks(results_dir: str = osp.join(HERE, 'results'),
                      docs_dir: str = osp.join(REPO, 'docs')) -> List[str]:
    """Rewrite every generated block of the method pages from the results
    JSON it names, so a page never quotes a learning-check figure the
    results do not hold. A block is written in a page as::

        <!-- BEGIN generated: learning_fruits_nuts_finetune.json models=embedmask,condinst -->
        (anything: replaced)
        <!-- END generated -->

    and becomes the table of ``_learning_section`` for those models (all
    when ``models=`` is left out) and their comparisons. Returns the pages
    it changed."""
    changed = []
    for page in sorted(glob.glob(osp.join(docs_dir, '*.md'))):
        text = open(page).read()

        def block(match):
            path = osp.join(results_dir, match['file'])
            if not osp.isfile(path):
                raise FileNotFoundError(
                    f'{page}: a generated block names {match["file"]}, '
                    f'which is not in {results_dir}')
            with open(path) as f:
                report = json.load(f)
            names = match['models'].split(',') if match['models'] else None
            if names:
                missing = [n for n in names if n not in report['models']]
                if missing:
                    raise KeyError(f'{page}: {match["file"]} has no models '
                                   f'{missing}')
                # the models asked for, and only their comparisons
                report = {k: v for k, v in report.items()
                          if '_vs_' not in k or
                          all(m in names for m in k.split('_vs_'))}
                report['models'] = {n: report['models'][n] for n in names}
            return (match.group(1) + _learning_section(path, report) +
                    match.group(5))

        new = GENERATED_BLOCK.sub(block, text)
        if new != text:
            with open(page, 'w') as f:
                f.write(new)
            changed.append(page)
    return changed


# A single figure quoted in a page (README.md, docs/*.md), written as
#
#   <!-- fig: cpu.json summary.latency_800.embedmask_over_condinst fmt=.2f -->0.87<!-- /fig -->
#
# ``render_figure_spans`` replaces the text between the two comments by the
# value the results JSON holds at that path, so a page never quotes a
# figure the results do not hold (tests/test_benchmarks/test_doc_figures.py
# fails on a stale span, and on a result-like figure outside any span).
FIGURE_SPAN = re.compile(
    r'(?P<open><!-- fig: (?P<file>[\w.-]+\.json) (?P<path>\S+)'
    r'(?P<opts>(?: [a-z]+=\S+)*) -->)(?P<body>.*?)(?P<close><!-- /fig -->)',
    re.S)
_SELECTOR = re.compile(r'^(?P<name>[^\[\]]+)\[(?P<sel>[^\]]+)\]$')


def _selector_text(value: Any) -> str:
    """How a selector compares a JSON value: lists as ``1333x800``, booleans
    and None in lower case, numbers and strings as written."""
    if isinstance(value, list):
        return 'x'.join(_selector_text(v) for v in value)
    if value is None or isinstance(value, bool):
        return str(value).lower()
    return str(value)


def lookup_figure(report: Any, path: str) -> Any:
    """The value at ``path`` of a results JSON.

    ``path`` is dot-separated keys; a part ``name[k=v,k2=v2]`` picks, from
    the list ``name``, the one element whose fields match (``scale=1333x800``,
    ``box_only=false``), and ``name[3]`` picks by index. Raises ``KeyError``
    naming the part that does not resolve (no match, several matches, a
    missing key)."""
    value = report
    for part in path.split('.'):
        match = _SELECTOR.match(part)
        key = match['name'] if match else part
        if not isinstance(value, dict) or key not in value:
            raise KeyError(f'no key {key!r} (in {path!r})')
        value = value[key]
        if not match:
            continue
        sel = match['sel']
        if not isinstance(value, list):
            raise KeyError(f'{key!r} is not a list (in {path!r})')
        if sel.lstrip('-').isdigit():
            value = value[int(sel)]
            continue
        wanted = dict(item.split('=', 1) for item in sel.split(','))
        hits = [v for v in value if isinstance(v, dict) and all(
            k in v and _selector_text(v[k]) == w for k, w in wanted.items())]
        if len(hits) != 1:
            raise KeyError(f'{len(hits)} elements of {key!r} match '
                           f'[{sel}] (in {path!r}); need exactly one')
        value = hits[0]
    return value


def format_figure(value: Any, opts: Dict[str, str]) -> str:
    """``value`` as a span prints it. Options: ``fmt=`` a Python format
    spec (default ``.2f``; ``ms`` for the milliseconds style of the
    benchmark tables, ``str`` as written), ``div=``/``mul=`` a number to
    scale by first (``div=1024``: MiB to GiB), ``abs=1`` the magnitude (a
    difference quoted as "trails by")."""
    unknown = set(opts) - {'fmt', 'div', 'mul', 'abs'}
    if unknown:
        raise KeyError(f'unknown figure option(s) {sorted(unknown)}')
    fmt = opts.get('fmt', '.2f')
    if fmt == 'str':
        return str(value)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f'{value!r} is not a number; use fmt=str')
    if 'div' in opts:
        value = value / float(opts['div'])
    if 'mul' in opts:
        value = value * float(opts['mul'])
    if opts.get('abs') == '1':
        value = abs(value)
    return _ms(value) if fmt == 'ms' else format(value, fmt)


def render_figures(text: str, results_dir: str, page: str = '?') -> str:
    """``text`` with every figure span refreshed from ``results_dir``."""
    cache: Dict[str, Any] = {}

    def span(match):
        name = match['file']
        if name not in cache:
            path = osp.join(results_dir, name)
            if not osp.isfile(path):
                raise FileNotFoundError(
                    f'{page}: a figure span names {name}, which is not in '
                    f'{results_dir}')
            with open(path) as f:
                cache[name] = json.load(f)
        opts = dict(o.split('=', 1) for o in match['opts'].split())
        try:
            figure = format_figure(lookup_figure(cache[name], match['path']),
                                   opts)
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise KeyError(f'{page}: figure span {match["open"]}: {e}') \
                from None
        return match['open'] + figure + match['close']

    return FIGURE_SPAN.sub(span, text)


def render_figure_spans(results_dir: str = osp.join(HERE, 'results'),
                        pages: Optional[List[str]] = None) -> List[str]:
    """Refresh the figure spans of ``pages`` (default: README.md and
    docs/*.md) in place; returns the pages it changed."""
    if pages is None:
        pages = [README] + sorted(glob.glob(osp.join(REPO, 'docs', '*.md')))
    changed = []
    for page in pages:
        with open(page) as f:
            text = f.read()
        new = render_figures(text, results_dir, page)
        if new != text:
            with open(page, 'w') as f:
                f.write(new)
            changed.append(page)
    return changed


def render(results_dir: str = osp.join(HERE, 'results'),
           doc: str = DOC,
           notes_path: str = osp.join(HERE, 'notes.md'),
           readme: Optional[str] = None) -> str:
    """Write ``doc`` (and PNGs in ``_static/`` next to it) from every JSON
    in ``results_dir``, then refresh the generated blocks and figure spans
    of every page next to ``doc`` and of ``readme`` (README.md when ``doc``
    is docs/benchmarks.md); returns the page's path."""
    static = osp.join(osp.dirname(doc), '_static')
    reports: Dict[str, dict] = {}
    for path in sorted(glob.glob(osp.join(results_dir, '*.json'))):
        name = osp.splitext(osp.basename(path))[0]
        if name.startswith('learning_'):
            continue
        with open(path) as f:
            report = json.load(f)
        if 'results' in report and 'machine' in report:  # a suite run
            reports[name] = report
    notes = open(notes_path).read() if osp.exists(notes_path) else ''
    parts = [
        '# Benchmarks\n\n'
        '<!-- generated by benchmarks/render.py from benchmarks/results/*.json'
        ' and benchmarks/notes.md; do not edit by hand -->\n\n'
        'Reproduce every number below with one command:\n\n'
        '```bash\npython benchmarks/run.py            # CPU (or CUDA when '
        'present)\n```\n\n'
        'It runs each measurement in its own process, writes '
        '`benchmarks/results/<device>.json` and re-renders this page. '
        'All ratios compare models measured in the same run.\n'
    ]
    if notes:
        parts.append(notes)
    targets = _targets_section(reports)
    if targets:
        parts.append('## Targets\n\nGenerated from the results files; each '
                     'row says which device (results file) its figure comes '
                     'from. Files marked "see provenance" are partial or '
                     'contributed runs (measured on a machine lent to another '
                     'task); their provenance is printed with them below.\n\n' + targets + '\n')
    side = _side_by_side(reports)
    if side:
        parts.append('## Devices side by side\n\n' + side + '\n')
    for tag, report in reports.items():
        m = report['machine']
        parts.append(
            f'## Results: `{tag}`\n\n'
            f"Machine: {m.get('cpu_model', m['processor'])}, "
            f"{m['cpu_count']} cores, torch {m['torch']} "
            f"({m['torch_threads']} threads), mmcv {m['mmcv']}, mmdet "
            f"{m['mmdet']}, mmembed {m['mmembed']}"
            + (f", GPU {m['gpu']}" if 'gpu' in m else '') +
            f". Suite time {report['suite_seconds'] / 60:.1f} min"
            + (' (quick mode)' if report.get('quick') else '') + '.'
            + (f"\n\nProvenance: {report['provenance']}"
               if 'provenance' in report else '') + '\n')
        for path in _plots(tag, report, static):
            parts.append(f'![{osp.basename(path)}]({path})\n')
        for title, body in (
                ('Inference latency', _latency_section(tag, report)),
                ('Ratios', _summary_section(report)),
                ('Scaling', _scaling_section(report, tag)),
                ('Training step', _train_section(report, tag)),
                ('Segment proposals', _proposals_section(report, tag)),
                ('Loss kernels', _lovasz_section(report, tag))):
            if body:
                parts.append(f'### {title}\n\n{body}\n')
    learning_files = sorted(
        glob.glob(osp.join(results_dir, 'learning_fruits_nuts*.json')))
    if learning_files:
        parts.append('## Learning check\n')
    for path in learning_files:
        with open(path) as f:
            lc = json.load(f)
        parts.append(_learning_section(path, lc))
        curves = _loss_curve_plot(lc, osp.join(
            static, osp.splitext(osp.basename(path))[0] + '_loss.png'))
        if curves:
            parts.append(f'![training loss]({curves})\n')
    text = '\n'.join(parts)
    with open(doc, 'w') as f:
        f.write(text)
    render_doc_blocks(results_dir, osp.dirname(doc))
    pages = sorted(glob.glob(osp.join(osp.dirname(doc), '*.md')))
    if readme is None and doc == DOC:
        readme = README
    render_figure_spans(results_dir, pages + ([readme] if readme else []))
    return doc


if __name__ == '__main__':
    print(render())
