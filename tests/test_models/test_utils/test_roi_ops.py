# Copyright (c) mmembed authors. All rights reserved.
"""extract_roi_feats_traceable equals mmdet's SingleRoIExtractor and its
traced graph follows the RoIs of a new input (mmdet's does not)."""
import torch
from mmdet.registry import MODELS

from mmembed.models.utils import extract_roi_feats_traceable


def _extractor():
    return MODELS.build(
        dict(type='SingleRoIExtractor',
             roi_layer=dict(type='RoIAlign', output_size=7,
                            sampling_ratio=2),
             out_channels=8, featmap_strides=[4, 8, 16, 32]))


def _feats(seed=0):
    torch.manual_seed(seed)
    return tuple(
        torch.randn(2, 8, 128 // s, 160 // s) for s in (4, 8, 16, 32))


def _rois(sizes, seed=0):
    """One RoI per size (square side in pixels), alternating images."""
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for i, side in enumerate(sizes):
        x, y = torch.rand(2, generator=gen) * 40
        rows.append([i % 2, x, y, x + side, y + side * 0.8])
    return torch.tensor(rows, dtype=torch.float32)


def test_equals_single_roi_extractor_on_every_level():
    extractor = _extractor()
    feats = _feats()
    # sides spread over the four levels (mmdet: finest_scale 56), plus a
    # level with no RoI at all
    rois = _rois([10, 30, 120, 200, 300, 700, 20])
    levels = extractor.map_roi_levels(rois, 4)
    assert set(levels.tolist()) == {0, 1, 2, 3}
    want = extractor(feats, rois)
    got = extract_roi_feats_traceable(extractor, feats, rois)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    only_fine = rois[levels == 0]
    torch.testing.assert_close(
        extract_roi_feats_traceable(extractor, feats, only_fine),
        extractor(feats, only_fine), rtol=0, atol=0)


def test_trace_follows_new_rois_where_mmdet_extractor_is_frozen():
    extractor = _extractor()
    feats = _feats()
    example = _rois([10, 20, 30, 300])       # levels 0, 0, 0, 2
    other = _rois([700, 750, 800, 850], 1)   # all on the coarsest level
    assert set(extractor.map_roi_levels(other, 4).tolist()) == {3}

    def ours(rois):
        return extract_roi_feats_traceable(extractor, feats, rois)

    def mmdet(rois):
        return extractor(feats, rois)

    with torch.no_grad():
        traced = torch.jit.trace(ours, (example, ), check_trace=False)
        torch.testing.assert_close(traced(other), mmdet(other))
        frozen = torch.jit.trace(mmdet, (example, ), check_trace=False)
        # the counterpart: mmdet's graph keeps the example's level split;
        # on other RoIs it fails (a frozen reshape) or gives other values
        try:
            out = frozen(other)
        except RuntimeError as err:
            assert 'invalid for input of size' in str(err)
        else:
            assert not torch.allclose(out, mmdet(other))
