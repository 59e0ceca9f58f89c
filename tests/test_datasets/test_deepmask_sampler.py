# Copyright (c) mmembed authors. All rights reserved.
"""DeepMaskPatchSampler: the release's object-centred patches and labels
(specs/methods.md 4.3), checked with jitter switched off where the
geometry is exact."""
import math

import numpy as np
import pytest
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks, PolygonMasks

from mmembed.datasets import DeepMaskPatchSampler


def square_image(size=600, box=(200, 250, 320, 310)):
    """A grey image with one bright rectangle object (x1, y1, x2, y2)."""
    img = np.full((size, size, 3), 30, np.uint8)
    x1, y1, x2, y2 = box
    img[y1:y2, x1:x2] = 220
    mask = np.zeros((1, size, size), np.uint8)
    mask[0, y1:y2, x1:x2] = 1
    return dict(
        img=img, img_shape=(size, size), img_path='square.png',
        gt_bboxes=HorizontalBoxes(np.array([box], np.float32)),
        gt_bboxes_labels=np.array([0]),
        gt_ignore_flags=np.array([False]),
        gt_masks=BitmapMasks(mask, size, size))


def no_jitter(**kwargs):
    return DeepMaskPatchSampler(scale_jitter=0., shift=0., flip_prob=0.,
                                **kwargs)


def test_mask_sample_centres_the_object_at_92_px():
    np.random.seed(0)
    out = no_jitter(hfreq=0., label_size=160).transform(square_image())
    assert out['img'].shape == (192, 192, 3)
    assert out['img_shape'] == (192, 192)
    assert out['patch_has_mask'] and out['patch_label'] == 1.
    assert set(out) >= {'gt_masks'} and 'gt_bboxes' not in out
    # the 120-px long side becomes objSz = ceil(160 * 128 / 224) = 92 px
    bright = (out['img'][..., 0] > 125).nonzero()
    width = bright[1].max() - bright[1].min() + 1
    height = bright[0].max() - bright[0].min() + 1
    assert abs(width - 92) <= 1 and abs(height - 92 * 60 / 120) <= 1
    centre = ((bright[1].max() + bright[1].min()) / 2,
              (bright[0].max() + bright[0].min()) / 2)
    assert abs(centre[0] - 95.5) <= 1 and abs(centre[1] - 95.5) <= 1
    # the label is the central 160 px of the window at 160 x 160: the same
    # object, 92 px wide, centred
    label = out['gt_masks'].masks[0]
    assert label.shape == (160, 160)
    ys, xs = label.nonzero()
    assert abs(xs.max() - xs.min() + 1 - 92) <= 1
    assert abs((xs.max() + xs.min()) / 2 - 79.5) <= 1


def test_label_size_112_scales_the_same_region():
    np.random.seed(0)
    out = no_jitter(hfreq=0., label_size=112).transform(square_image())
    ys, xs = out['gt_masks'].masks[0].nonzero()
    assert abs(xs.max() - xs.min() + 1 - 92 * 112 / 160) <= 1


def test_out_of_image_is_grey_and_flip_flips_both():
    # an object in the corner: the window reaches past the image
    np.random.seed(0)
    results = square_image(box=(0, 0, 100, 100))
    out = no_jitter(hfreq=0.).transform(results)
    assert (out['img'][:20, :20] == 127.5).all()
    np.random.seed(0)
    flipped = DeepMaskPatchSampler(scale_jitter=0., shift=0., flip_prob=1.,
                                   hfreq=0.).transform(
                                       square_image(box=(0, 0, 100, 100)))
    np.testing.assert_array_equal(flipped['img'], out['img'][:, ::-1])
    np.testing.assert_array_equal(flipped['gt_masks'].masks[0],
                                  out['gt_masks'].masks[0][:, ::-1])


def test_score_samples_positive_and_negative():
    sampler = no_jitter(hfreq=1.)
    labels = []
    for seed in range(40):
        np.random.seed(seed)
        out = sampler.transform(square_image())
        assert not out['patch_has_mask']
        assert out['gt_masks'].masks.sum() == 0
        labels.append(out['patch_label'])
        bright = (out['img'][..., 0] > 125)
        if out['patch_label'] == 1.:
            # centred on the object
            ys, xs = bright.nonzero()
            assert abs((xs.max() + xs.min()) / 2 - 95.5) <= 2
            assert abs((ys.max() + ys.min()) / 2 - 95.5) <= 2
    assert set(labels) == {1., -1.}


def test_scale_bins_of_the_score_samples():
    # the bin width is the release's config.scale, the jitter (0.25)
    sampler = DeepMaskPatchSampler(hfreq=1.)
    centres, bins = sampler._scale_bins(
        np.array([[200., 250., 320., 310.]]), np.array([False]))
    np.testing.assert_allclose(centres, [[260., 280.]])
    # 120 px: log2(120 / 92) = 0.383 octaves -> s = ceil(1.53) - 1 = 1
    assert bins[0] == pytest.approx(-0.25)
    assert math.isclose(2**-bins[0] * 192, 192 * 2**0.25)


def test_negatives_keep_away_from_object_centres():
    sampler = DeepMaskPatchSampler(hfreq=1., flip_prob=0.)
    results = square_image()
    for seed in range(30):
        np.random.seed(seed)
        out = sampler.transform(dict(results))
        if out['patch_label'] != -1.:
            continue
        # a negative window never shows the object centred at its scale
        bright = out['img'][..., 0] > 125
        if bright.any():
            ys, xs = bright.nonzero()
            centre = np.array([(xs.max() + xs.min()) / 2,
                               (ys.max() + ys.min()) / 2])
            width = xs.max() - xs.min() + 1
            centred = np.abs(centre - 95.5).max() < 8
            assert not (centred and abs(width - 92) < 30), seed


def test_crowd_small_and_thin_objects_are_not_mask_samples():
    results = square_image()
    results['gt_ignore_flags'] = np.array([True])
    assert no_jitter(hfreq=0.).transform(results) is None
    small = square_image(box=(10, 10, 18, 18))     # area 64 < 100
    assert no_jitter(hfreq=0.).transform(small) is None
    thin = square_image(box=(10, 10, 200, 14))     # 4 px high
    assert no_jitter(hfreq=0.).transform(thin) is None


def test_polygon_masks_and_bad_input():
    results = square_image()
    results['gt_masks'] = PolygonMasks(
        [[np.array([200, 250, 320, 250, 320, 310, 200, 310], float)]], 600,
        600)
    np.random.seed(0)
    out = no_jitter(hfreq=0.).transform(results)
    assert out['gt_masks'].masks[0].sum() > 0
    results = square_image()
    results['gt_masks'] = BitmapMasks(np.zeros((2, 600, 600)), 600, 600)
    with pytest.raises(ValueError, match='2 masks for 1 boxes'):
        no_jitter(hfreq=0.).transform(results)
    with pytest.raises(ValueError, match='hfreq'):
        DeepMaskPatchSampler(hfreq=1.5)
