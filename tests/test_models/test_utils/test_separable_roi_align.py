# Copyright (c) mmembed authors. All rights reserved.
"""separable_roi_align equals mmcv's CPU RoIAlign, forward and backward,
on the cases mmcv's kernel treats specially; SeparableRoIExtractor equals
mmdet's SingleRoIExtractor; tracing and sampling_ratio=0 go to mmcv."""
import importlib

import pytest
import torch
from mmcv.ops import RoIAlign, roi_align
from mmdet.registry import MODELS

from mmembed.models.utils import SeparableRoIAlign, separable_roi_align

# the package exports the function under the module's name
sra_module = importlib.import_module(
    'mmembed.models.utils.separable_roi_align')


def _rois(num, height, width, stride, seed=0, num_imgs=2):
    """RoIs in input pixels: inside, crossing and fully outside the map,
    tiny, zero-size and elongated ones."""
    gen = torch.Generator().manual_seed(seed)
    img_h, img_w = height * stride, width * stride
    x1 = torch.rand(num, generator=gen) * img_w * 1.2 - 0.1 * img_w
    y1 = torch.rand(num, generator=gen) * img_h * 1.2 - 0.1 * img_h
    w = torch.rand(num, generator=gen)**2 * img_w * 0.7
    h = torch.rand(num, generator=gen)**2 * img_h * 0.7
    rois = torch.stack([
        torch.randint(num_imgs,
                      (num, ), generator=gen).float(), x1, y1, x1 + w, y1 + h
    ], 1)
    special = torch.tensor([
        [0, -40.0, -40.0, -8.0, -8.0],  # entirely outside, above-left
        [1, img_w + 8.0, 5.0, img_w + 60.0, 30.0],  # outside, right
        [0, 10.0, 10.0, 10.0, 10.0],  # zero size
        [1, 0.0, 0.0, float(img_w), float(img_h)],  # the whole image
        [0, 3.0, 20.0, img_w - 3.0, 26.0],  # wide and flat
        [1, img_w - 2.0, img_h - 2.0, img_w + 0.0, img_h + 0.0],  # corner
        [0, -3.0, -3.0, 2.0 * stride, 3.0 * stride],  # across the edge
    ])
    special[:, 0] %= num_imgs
    return torch.cat([rois, special])


@pytest.mark.parametrize('out_size,ratio,aligned', [(28, 2, True),
                                                    (7, 2, True),
                                                    ((14, 10), 1, True),
                                                    (5, 3, False)])
def test_forward_equals_mmcv(out_size, ratio, aligned):
    torch.manual_seed(0)
    height, width, stride = 23, 31, 4
    feats = torch.randn(2, 16, height, width)
    rois = _rois(40, height, width, stride)
    ours = separable_roi_align(feats, rois, out_size, 1 / stride, ratio,
                               aligned)
    ref = roi_align(feats, rois, out_size, 1 / stride, ratio, 'avg', aligned)
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    # the RoIs outside the map pool to zeros in both
    assert ref[-7:-5].abs().max() == 0


def test_backward_equals_mmcv():
    torch.manual_seed(1)
    feats = torch.randn(2, 8, 19, 27)
    rois = _rois(25, 19, 27, 8, seed=3)
    grad_out = torch.randn(rois.shape[0], 8, 14, 14)
    grads = []
    for fn in (separable_roi_align, roi_align):
        x = feats.clone().requires_grad_()
        if fn is roi_align:
            out = fn(x, rois, 14, 1 / 8, 2, 'avg', True)
        else:
            out = fn(x, rois, 14, 1 / 8, 2, True)
        (out * grad_out).sum().backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-5)


def test_module_matches_mmcv_and_falls_back():
    feats = torch.randn(1, 4, 12, 12)
    rois = _rois(6, 12, 12, 4, num_imgs=1)
    ours = SeparableRoIAlign(7, 1 / 4, sampling_ratio=2, aligned=True)
    ref = RoIAlign(7, 1 / 4, sampling_ratio=2, aligned=True)
    torch.testing.assert_close(ours(feats, rois), ref(feats, rois))
    # an adaptive sample count is mmcv's: the separable path refuses it
    adaptive = SeparableRoIAlign(7, 1 / 4, sampling_ratio=0)
    torch.testing.assert_close(
        adaptive(feats, rois),
        RoIAlign(7, 1 / 4, sampling_ratio=0)(feats, rois))
    with pytest.raises(ValueError, match='sampling_ratio must be > 0'):
        separable_roi_align(feats, rois, 7, 1 / 4, 0)


def test_trace_uses_mmcv(monkeypatch):

    def refuse(*args, **kwargs):
        raise AssertionError('separable path taken while tracing')

    layer = SeparableRoIAlign(7, 1 / 4, sampling_ratio=2)
    feats = torch.randn(1, 4, 12, 12)
    rois = _rois(3, 12, 12, 4, num_imgs=1)
    expected = layer(feats, rois)
    monkeypatch.setattr(sra_module, 'separable_roi_align', refuse)
    traced = torch.jit.trace(layer, (feats, rois), check_trace=False)
    torch.testing.assert_close(traced(feats, rois), expected)


def test_clear_errors_and_empty():
    feats = torch.randn(1, 4, 12, 12)
    assert separable_roi_align(feats, torch.zeros(0, 5), 7, 0.25,
                               2).shape == (0, 4, 7, 7)
    with pytest.raises(ValueError, match=r'rois \(R, 5\)'):
        separable_roi_align(feats, torch.zeros(3, 4), 7, 0.25, 2)
    with pytest.raises(ValueError, match='batch index 1'):
        separable_roi_align(feats, torch.tensor([[1, 0, 0, 8.0, 8.0]]), 7,
                            0.25, 2)
    with pytest.raises(ValueError, match='non-negative size'):
        separable_roi_align(feats, torch.tensor([[0, 9.0, 9.0, 2.0, 12.0]]), 7,
                            0.25, 2)


def _extractor_pair(output_size, out_channels, strides):
    """(SeparableRoIExtractor, mmdet's SingleRoIExtractor) with the same
    RoIAlign (sampling ratio 2, aligned) arguments."""
    cfg = dict(roi_layer=dict(type='RoIAlign',
                              output_size=output_size,
                              sampling_ratio=2,
                              aligned=True),
               out_channels=out_channels,
               featmap_strides=strides)
    return (MODELS.build(dict(type='SeparableRoIExtractor', **cfg)),
            MODELS.build(dict(type='SingleRoIExtractor', **cfg)))


def test_extractor_equals_single_roi_extractor():
    ours, ref = _extractor_pair(28, 8, [4, 8, 16, 32])
    assert all(isinstance(m, SeparableRoIAlign) for m in ours.roi_layers)
    torch.manual_seed(2)
    feats = tuple(
        torch.randn(2, 8, 160 // s, 224 // s) for s in (4, 8, 16, 32))
    rois = _rois(30, 40, 56, 4)
    torch.testing.assert_close(ours(feats, rois),
                               ref(feats, rois),
                               rtol=1e-5,
                               atol=1e-5)
    # other layer types are mmdet's
    pool = MODELS.build(
        dict(type='SeparableRoIExtractor',
             roi_layer=dict(type='RoIPool', output_size=7),
             out_channels=8,
             featmap_strides=[4]))
    assert type(pool.roi_layers[0]).__name__ == 'RoIPool'


def test_extractor_under_autocast_keeps_the_maps_dtype_as_mmdets():
    # the matmuls run in bfloat16 under CPU autocast; mmcv's kernel keeps
    # float32, and so must the extractor's output (it once raised writing
    # the bfloat16 pooled cells into its float32 output)
    ours, ref = _extractor_pair(7, 8, [4, 8])
    torch.manual_seed(3)
    feats = tuple(torch.randn(2, 8, 160 // s, 224 // s) for s in (4, 8))
    rois = _rois(12, 40, 56, 4)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        pooled = ours(feats, rois)
        expected = ref(feats, rois)
    assert pooled.dtype == expected.dtype == torch.float32
    # bfloat16 keeps 8 bits of mantissa
    torch.testing.assert_close(pooled, expected, rtol=2e-2, atol=2e-2)


def test_extractor_backward_equals_and_returns_channels_last():
    ours, ref = _extractor_pair(14, 4, [4, 8, 16, 32])
    torch.manual_seed(3)
    base = [torch.randn(1, 4, 96 // s, 128 // s) for s in (4, 8, 16, 32)]
    # small RoIs only: the two coarsest levels get none
    rois = _rois(12, 24, 32, 4, seed=5, num_imgs=1)
    rois[:, 3:] = rois[:, 1:3] + 20
    grad_out = torch.randn(len(rois), 4, 14, 14)
    grads = []
    for extractor in (ours, ref):
        feats = [f.clone().requires_grad_() for f in base]
        out = extractor(feats, rois)
        (out * grad_out).sum().backward()
        grads.append([f.grad for f in feats])
        if extractor is ours:
            assert out.is_contiguous(memory_format=torch.channels_last)
    for got, want in zip(*grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    # the unused levels get a (zero) gradient, as with mmdet's extractor
    assert grads[0][3] is not None and grads[0][3].abs().max() == 0


def _graph_node_names(tensor):
    seen, stack, names = set(), [tensor.grad_fn], []
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.append(type(node).__name__)
        stack.extend(next_fn for next_fn, _ in node.next_functions)
    return names


def test_training_backward_is_one_gather_not_an_index_put_per_chunk():
    # many RoIs, pooled in several chunks per level: the gradient flows
    # through one gather. An index_put per chunk into a preallocated output
    # copies the whole output gradient in each chunk's backward (over a
    # third of an ISTR v2 training step)
    ours, ref = _extractor_pair(14, 4, [4, 8, 16, 32])
    assert ours.rois_per_call < 40
    torch.manual_seed(4)
    base = [torch.randn(2, 4, 256 // s, 320 // s) for s in (4, 8, 16, 32)]
    rois = _rois(90, 64, 80, 4, seed=6)
    grad_out = torch.randn(len(rois), 4, 14, 14)
    outs, grads = [], []
    for extractor in (ours, ref):
        feats = [f.clone().requires_grad_() for f in base]
        out = extractor(feats, rois)
        (out * grad_out).sum().backward()
        outs.append(out)
        grads.append([f.grad for f in feats])
    names = _graph_node_names(outs[0])
    assert not [n for n in names if n.startswith('IndexPut')], names
    assert outs[0].is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    for got, want in zip(*grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    # inference keeps writing the chunks into one channels-last buffer
    with torch.no_grad():
        torch.testing.assert_close(ours(base, rois), outs[1],
                                   rtol=1e-5, atol=1e-5)


def test_grad_passes_below_min_grad_size_use_mmcv(monkeypatch):
    calls = []
    real = sra_module.separable_roi_align

    def spy(*args, **kwargs):
        calls.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(sra_module, 'separable_roi_align', spy)
    feats = torch.randn(1, 4, 12, 12, requires_grad=True)
    rois = _rois(3, 12, 12, 4, num_imgs=1)
    small = SeparableRoIAlign(7, 1 / 4, sampling_ratio=2)
    large = SeparableRoIAlign(14, 1 / 4, sampling_ratio=2)
    small(feats, rois)  # needs a gradient, 7 < min_grad_size: mmcv
    assert calls == []
    with torch.no_grad():
        small(feats, rois)
    small(feats.detach(), rois)
    large(feats, rois)
    assert calls == [(7, 7), (7, 7), (14, 14)]


def test_non_finite_rois_pool_to_zeros():
    feats = torch.randn(1, 4, 12, 12)
    rois = torch.tensor([[0, float('nan'), 2.0, 20.0, 20.0],
                         [0, 2.0, 2.0, float('inf'), 20.0],
                         [0, 4.0, 4.0, 30.0, 30.0]])
    out = separable_roi_align(feats, rois, 7, 1 / 4, 2, aligned=False)
    assert out[:2].abs().max() == 0
    torch.testing.assert_close(
        out[2:], roi_align(feats, rois[2:], 7, 1 / 4, 2, 'avg', False))


def test_channels_last_maps_pool_the_same_forward_and_backward():
    # the channels-last gather (index_select) against the NCHW one
    torch.manual_seed(4)
    feats = torch.randn(2, 8, 19, 27)
    rois = _rois(25, 19, 27, 8, seed=6)
    grad_out = torch.randn(rois.shape[0], 8, 14, 14)
    outs, grads = [], []
    for layout in (torch.contiguous_format, torch.channels_last):
        x = feats.clone().contiguous(memory_format=layout).requires_grad_()
        out = separable_roi_align(x, rois, 14, 1 / 8, 2, True)
        (out * grad_out).sum().backward()
        outs.append(out)
        grads.append(x.grad)
    torch.testing.assert_close(outs[1], outs[0], rtol=0, atol=0)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-6, atol=1e-6)
    # the mmcv fallback reads NCHW memory whatever the strides: the layer
    # hands it a contiguous map, so a channels-last one pools right too
    layer = SeparableRoIAlign(7, 1 / 8, sampling_ratio=2)
    x = feats.contiguous(memory_format=torch.channels_last).requires_grad_()
    torch.testing.assert_close(layer(x, rois),
                               roi_align(feats, rois, 7, 1 / 8, 2, 'avg',
                                         True))


def test_channels_last_for_pooling_converts_only_for_the_matmul_path():
    from mmembed.models.roi_heads.roi_extractors import \
        channels_last_for_pooling
    ours, mmdet_one = _extractor_pair(7, 4, [4, 8])
    feats = (torch.randn(1, 4, 16, 16), torch.randn(1, 4, 8, 8))
    rois = _rois(10, 16, 16, 4, num_imgs=1)
    converted = channels_last_for_pooling(feats, [ours, ours])
    assert all(
        f.is_contiguous(memory_format=torch.channels_last) and
        not f.is_contiguous() for f in converted)
    torch.testing.assert_close(ours(converted, rois), ours(feats, rois),
                               rtol=0, atol=0)
    # with an mmdet extractor among the readers (mmcv's kernel would pool
    # a channels-last map wrong), or for a pass that needs a 7 x 7
    # gradient (mmcv's kernel): unchanged
    assert channels_last_for_pooling(feats, [ours, mmdet_one])[0] is feats[0]
    grad_feats = tuple(f.requires_grad_() for f in feats)
    assert channels_last_for_pooling(grad_feats, [ours])[0] is grad_feats[0]
