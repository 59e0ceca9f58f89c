# Copyright (c) mmembed authors. All rights reserved.
"""Every benchmark or learning-check figure that README.md and docs/*.md
quote comes from benchmarks/results/*.json (issue 21).

Pure text, no training: (a) re-rendering the generated blocks and figure
spans (benchmarks/render.py) into a temporary copy changes nothing, and
(b) no page quotes a result-like figure outside a generated span or block,
unless ``figure_allowlist.txt`` lists it with a reason.

What counts as a *figure* (``FIGURE``), in prose and tables, after removing
fenced code, inline code, HTML comments, link targets, generated
blocks/spans and rows of argument tables (first cell in backticks):

- a ratio: a decimal followed by ``x`` or ``×`` (``0.87x``, ``0.89 x``), not
  a size (``4 x 14``);
- a time or memory: a number followed by ``ms``, ``s``, ``MiB`` or ``GiB``;
- a score: a decimal in [0, 2) with 2-4 fraction digits (``0.920``,
  ``0.037``: AP, AR, IoU, their differences and spreads);
- a decimal percentage (``9.8 %``).

Versions (``2.1.0``), sizes (``800 x 1333``), single-digit thresholds
(``0.5``) and integers other than times and memory are not figures.
"""
import glob
import os.path as osp
import re
import shutil
import sys

import pytest

from mmembed.testing import get_repo_root

REPO = get_repo_root()
RESULTS = osp.join(REPO, 'benchmarks', 'results')
ALLOWLIST = osp.join(osp.dirname(osp.abspath(__file__)),
                     'figure_allowlist.txt')
PAGES = ['README.md'] + sorted(
    osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'docs', '*.md'))
    if osp.basename(p) != 'benchmarks.md')  # rendered whole, checked below


def _render_module():
    sys.path.insert(0, osp.join(REPO, 'benchmarks'))
    try:
        import render
    finally:
        sys.path.pop(0)
    return render


FIGURE = re.compile(
    r'(?<![\w.\-/])(?:'
    r'\d+\.\d+ ?[x×](?![\w])(?! ?\d)'  # ratio, not a size
    r'|\d[\d,]*(?:\.\d+)? ?(?:ms|s|MiB|GiB)(?![\w])'  # time, memory
    r'|\d+\.\d+ ?%'  # decimal percentage
    r'|[01]\.\d{2,4}(?![\d.])'  # score-like decimal
    r')')

_STRIP = (
    re.compile(r'^(```|~~~).*?^\1', re.S | re.M),  # fenced code
    re.compile(r'<!-- BEGIN generated: .*?<!-- END generated -->', re.S),
    re.compile(r'<!-- fig: .*?<!-- /fig -->', re.S),
    re.compile(r'<!--.*?-->', re.S),  # other comments
    re.compile(r'^\s*\|\s*`.*$', re.M),  # argument tables: first cell is code
    re.compile(r'`[^`\n]*`'),  # inline code
    re.compile(r'\]\([^)\s]*\)'),  # link targets
)


def page_figures(text: str):
    """The figures of a page's text outside generated spans and blocks,
    as (line number, figure) pairs."""
    for pattern in _STRIP:
        # keep the line count, so the report points at the right line
        text = pattern.sub(lambda m: '\n' * m.group(0).count('\n'), text)
    for lineno, line in enumerate(text.split('\n'), 1):
        for match in FIGURE.finditer(line):
            yield lineno, match.group(0)


def load_allowlist():
    """``page | figure | reason`` lines ('#' starts a comment). ``figure``
    is a figure as written (every occurrence on the page is allowed) or
    ``line: TEXT``: every figure on the lines of the page holding TEXT."""
    allowed = {}
    for line in open(ALLOWLIST):
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        # the figure (or line text) may hold ' | ' itself: a table row
        page, rest = line.split(' | ', 1)
        figure, reason = rest.rsplit(' | ', 1)
        page, figure, reason = page.strip(), figure.strip(), reason.strip()
        assert reason, f'{ALLOWLIST}: {page} {figure} needs a reason'
        allowed.setdefault(page, set()).add(figure)
    return allowed


def unexplained_figures(page: str, allowed: set):
    """The figures of ``page`` that the allow-list does not cover, and the
    allow-list entries that covered nothing."""
    text = open(osp.join(REPO, page)).read()
    lines = text.split('\n')
    contexts = {a[len('line: '):] for a in allowed if a.startswith('line: ')}
    used, bad = set(), []
    for lineno, fig in page_figures(text):
        hit = [c for c in contexts if c in lines[lineno - 1]]
        if fig in allowed:
            used.add(fig)
        elif hit:
            used.update('line: ' + c for c in hit)
        else:
            bad.append(f'{page}:{lineno}: {fig}')
    return bad, allowed - used


def test_figure_pattern_is_precise():
    text = ('EmbedMask takes 0.87x CondInst and **0.89 x** Mask R-CNN, '
            '1835 ms, 217 s, 987 MiB, 6.0 GiB, segm AP 0.920 (+0.045), '
            '9.8 % of FCOS.\n'
            'Not figures: mmcv 2.1.0, 800 x 1333, 4 x 14 x 14, IoU > 0.5, '
            'torch 2.13, 40 epochs, `score_thr=0.05`, '
            '[link](docs/a_0.123.md).\n'
            '```\nlatency 0.55x\n```\n'
            '<!-- fig: cpu.json a.b fmt=.2f -->0.74<!-- /fig -->x\n'
            '| `mask_head.thr` | 0.53 |\n')
    assert [f for _, f in page_figures(text)] == [
        '0.87x', '0.89 x', '1835 ms', '217 s', '987 MiB', '6.0 GiB',
        '0.920', '0.045', '9.8 %']


def test_figure_span_renders_and_refuses_bad_paths(tmp_path):
    render = _render_module()
    span = ('<!-- fig: cpu.json results.latency[model=blendmask,'
            'scale=1333x800,box_only=false].median_ms fmt=ms -->?'
            '<!-- /fig -->')
    out = render.render_figures(f'a {span} b', RESULTS)
    assert '-->?<' not in out and out.startswith('a <!-- fig: ')
    for bad in ('summary.no_such_key', 'results.latency[model=nope].x'):
        with pytest.raises(KeyError, match='figure span'):
            render.render_figures(
                f'<!-- fig: cpu.json {bad} -->1<!-- /fig -->', RESULTS, 'p')
    with pytest.raises(FileNotFoundError, match='missing.json'):
        render.render_figures('<!-- fig: missing.json a -->1<!-- /fig -->',
                              RESULTS, 'p')
    assert render.format_figure(-0.0371, {'fmt': '.3f', 'abs': '1'}) == \
        '0.037'
    assert render.format_figure(6144, {'fmt': '.1f', 'div': '1024'}) == '6.0'


@pytest.mark.parametrize('page', PAGES)
def test_generated_figures_are_current(page, tmp_path):
    """(a) Rendering the page's blocks and spans from the results JSON
    changes nothing: run ``python benchmarks/run.py --render-only`` (or
    ``benchmarks/render.py``) after changing a results file."""
    render = _render_module()
    docs = tmp_path / 'docs'
    docs.mkdir()
    copy = str(docs / osp.basename(page))
    shutil.copy(osp.join(REPO, page), copy)
    render.render_doc_blocks(RESULTS, str(docs))
    render.render_figure_spans(RESULTS, [copy])
    want = open(copy).read()
    got = open(osp.join(REPO, page)).read()
    if got != want:
        diff = [f'{page}:{i}: page has {a!r}, results give {b!r}'
                for i, (a, b) in enumerate(
                    zip(got.splitlines(), want.splitlines()), 1) if a != b]
        pytest.fail('stale generated figures; run benchmarks/render.py\n' +
                    '\n'.join(diff[:20]))


@pytest.mark.parametrize('page', PAGES)
def test_page_quotes_no_figure_outside_the_results(page):
    """(b) A result-like figure written by hand fails: quote it with a
    ``<!-- fig: ... -->`` span (or a generated block, or a link to
    docs/benchmarks.md), or, if it is no result (a paper's number, a
    computed estimate), list it in figure_allowlist.txt with the reason."""
    bad, _ = unexplained_figures(page, load_allowlist().get(page, set()))
    assert not bad, (
        'figures not taken from benchmarks/results/*.json (use a '
        '<!-- fig: FILE.json PATH fmt=... -->...<!-- /fig --> span, see '
        'benchmarks/render.py):\n' + '\n'.join(bad))


def test_allowlist_entries_are_used():
    """An allow-list entry whose figure left the page is removed, so the
    list stays short."""
    unused = []
    for page, allowed in load_allowlist().items():
        unused += [f'{page} | {entry}'
                   for entry in sorted(unexplained_figures(page, allowed)[1])]
    assert not unused, 'unused allow-list entries:\n' + '\n'.join(unused)
