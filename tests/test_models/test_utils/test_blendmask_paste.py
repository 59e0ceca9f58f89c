# Copyright (c) mmembed authors. All rights reserved.
"""paste_box_masks (BlendMask now, ISTR later) against mmdet's
FCNMaskHead._do_paste_mask, plus the GPU-path rules of issue 8: no host
synchronisation and an op count that does not grow with N."""
from collections import Counter

import pytest
import torch
from mmdet.models.roi_heads.mask_heads.fcn_mask_head import _do_paste_mask

from mmembed.models.utils import paste_box_masks

OUT = (37, 53)  # H != W, odd


def random_case(num, mask_shape=(28, 28), seed=0):
    gen = torch.Generator().manual_seed(seed)
    probs = torch.rand(num, *mask_shape, generator=gen)
    xy = torch.rand(num, 2, generator=gen) * torch.tensor([70., 50.]) - 10
    wh = torch.rand(num, 2, generator=gen) * 40 + 0.3
    boxes = torch.cat([xy, xy + wh], dim=1)  # some cross the image border
    return probs, boxes


def mmdet_paste(probs, boxes, out_size):
    pasted, _ = _do_paste_mask(probs[:, None], boxes, out_size[0],
                               out_size[1], skip_empty=False)
    return pasted


@pytest.mark.parametrize('impl', ['dense', 'ragged', 'separable', 'boxwise'])
@pytest.mark.parametrize('mask_shape', [(28, 28), (56, 56), (14, 9)])
def test_equals_mmdet_do_paste_mask(mask_shape, impl):
    probs, boxes = random_case(12, mask_shape)
    want = mmdet_paste(probs, boxes, OUT)
    got = paste_box_masks(probs, boxes, OUT, thr=None, impl=impl)
    assert got.shape == (12, *OUT) and got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=0, atol=2e-6)
    masks = paste_box_masks(probs, boxes, OUT, thr=0.5, impl=impl)
    assert masks.dtype == torch.bool
    # the threshold is >= (mmdet, detectron2); away from ties both agree
    clear = (want - 0.5).abs() > 1e-5
    assert torch.equal(masks[clear], (want >= 0.5)[clear])
    assert masks.any()


@pytest.mark.parametrize('impl', ['dense', 'ragged', 'separable', 'boxwise'])
def test_flipped_boxes_follow_mmdet_and_empty_boxes_give_empty_masks(impl):
    """A box with x2 < x1 samples its map mirrored, as in mmdet. A box of
    zero width or height is an empty mask; mmdet instead replaces its
    infinite grid coordinates by 0 and samples the middle column (row) over
    the whole image, or gives NaN where a pixel centre lies on the edge."""
    probs, boxes = random_case(4)
    boxes[0, 2] = boxes[0, 0]  # zero width
    boxes[1, 3] = boxes[1, 1]  # zero height
    boxes[2] = boxes[2, [2, 1, 0, 3]]  # x2 < x1
    want = mmdet_paste(probs, boxes, OUT)
    assert want[0].abs().sum() > 0 and want[1].abs().sum() > 0  # mmdet's
    want[:2] = 0
    got = paste_box_masks(probs, boxes, OUT, thr=None, impl=impl)
    torch.testing.assert_close(got, want, rtol=0, atol=2e-6)
    assert torch.isfinite(got).all()


def test_large_boxes_reach_half_a_cell_outside():
    """A 4-cell map over a 40-pixel box: grid_sample gives non-zero values
    up to half a cell (5 px) outside the box, which the ragged support must
    cover."""
    probs = torch.ones(1, 4, 4)
    boxes = torch.tensor([[20., 10., 60., 50.]])
    want = mmdet_paste(probs, boxes, (70, 90))
    assert want[0, 30, 16] > 0  # 4 px left of the box
    for impl in ('dense', 'ragged', 'separable', 'boxwise'):
        got = paste_box_masks(probs, boxes, (70, 90), thr=None, impl=impl)
        torch.testing.assert_close(got, want, rtol=0, atol=2e-6)


@pytest.mark.parametrize('impl', ['dense', 'ragged', 'separable', 'boxwise'])
def test_chunking_does_not_change_the_result(impl):
    probs, boxes = random_case(9)
    whole = paste_box_masks(probs, boxes, OUT, thr=0.5, impl=impl)
    # budget of 2.5 images -> 4 dense chunks of at most 3 boxes; for the
    # ragged path 2.5 * H * W / 16 pairs -> several chunks too
    chunked = paste_box_masks(
        probs, boxes, OUT, thr=0.5, chunk_pixels=int(2.5 * OUT[0] * OUT[1]),
        impl=impl)
    assert torch.equal(whole, chunked)


def test_auto_is_boxwise_on_cpu_and_all_agree():
    probs, boxes = random_case(20, (56, 56), seed=4)
    dense = paste_box_masks(probs, boxes, OUT, thr=None, impl='dense')
    ragged = paste_box_masks(probs, boxes, OUT, thr=None, impl='ragged')
    boxwise = paste_box_masks(probs, boxes, OUT, thr=None, impl='boxwise')
    auto = paste_box_masks(probs, boxes, OUT, thr=None)
    torch.testing.assert_close(dense, ragged, rtol=0, atol=2e-6)
    # same weights, same support: only the summation order may differ
    torch.testing.assert_close(boxwise, ragged, rtol=0, atol=1e-6)
    assert torch.equal(auto, boxwise)


def test_boxwise_writes_only_inside_each_box_support():
    """Each box's slice is written at its own rows and columns: a box at
    the image corner and one at the far corner keep their masks apart."""
    probs = torch.ones(2, 8, 8)
    boxes = torch.tensor([[0., 0., 10., 8.], [40., 25., 53., 37.]])
    masks = paste_box_masks(probs, boxes, OUT, thr=0.5, impl='boxwise')
    want = paste_box_masks(probs, boxes, OUT, thr=0.5, impl='dense')
    assert torch.equal(masks, want)
    assert masks[0, :8, :10].all() and not masks[0, 20:, 20:].any()
    assert masks[1, 25:37, 40:53].all() and not masks[1, :20, :20].any()


def test_empty_inputs():
    masks = paste_box_masks(torch.zeros(0, 28, 28), torch.zeros(0, 4), OUT)
    assert masks.shape == (0, *OUT) and masks.dtype == torch.bool
    probs = paste_box_masks(
        torch.zeros(0, 28, 28), torch.zeros(0, 4), OUT, thr=None)
    assert probs.shape == (0, *OUT) and probs.dtype == torch.float32


def test_bad_shapes_are_clear_errors():
    with pytest.raises(ValueError, match='mask_probs'):
        paste_box_masks(torch.zeros(2, 28), torch.zeros(2, 4), OUT)
    with pytest.raises(ValueError, match='boxes'):
        paste_box_masks(torch.zeros(2, 28, 28), torch.zeros(3, 4), OUT)
    with pytest.raises(ValueError, match='chunk_pixels'):
        paste_box_masks(
            torch.zeros(2, 28, 28), torch.zeros(2, 4), OUT, chunk_pixels=0)
    with pytest.raises(ValueError, match='impl'):
        paste_box_masks(
            torch.zeros(2, 28, 28), torch.zeros(2, 4), OUT, impl='grid')


def aten_ops(num):
    probs, boxes = random_case(num, (56, 56))
    with torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        paste_box_masks(probs, boxes, (120, 160), thr=0.5, impl='dense')
    return Counter(e.name for e in prof.events()
                   if e.name.startswith('aten::'))


def test_op_count_does_not_grow_with_detections_and_nothing_syncs():
    few, many = aten_ops(10), aten_ops(100)
    assert sum(few.values()) > 0
    assert few == many
    # the ops through which a CUDA tensor's value reaches the host
    for name in ('aten::item', 'aten::_local_scalar_dense', 'aten::nonzero',
                 'aten::masked_select', 'aten::is_nonzero'):
        assert name not in few, name


def test_clean_instance_masks_drops_specks_and_fills_holes():
    from mmembed.models.utils import clean_instance_masks
    masks = torch.zeros(3, 20, 30, dtype=torch.bool)
    masks[0, 3:15, 4:20] = True
    masks[0, 6:9, 8:10] = False      # hole
    masks[0, 17:19, 25:27] = True    # speck, apart (8-connected: none)
    masks[1, 2:5, 2:5] = True
    masks[1, 5:8, 5:8] = True        # touches diagonally: one component
    # masks[2] empty
    out = clean_instance_masks(masks)
    want0 = torch.zeros(20, 30, dtype=torch.bool)
    want0[3:15, 4:20] = True
    assert torch.equal(out[0], want0)
    assert torch.equal(out[1], masks[1])
    assert not out[2].any()
    with pytest.raises(ValueError, match='bool'):
        clean_instance_masks(masks.float())
