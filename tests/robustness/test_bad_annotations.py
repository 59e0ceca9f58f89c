# Copyright (c) mmembed authors. All rights reserved.
"""Bad annotation files through the small configs' dataset config.

For each defect: what mmdet's ``CocoDataset`` does by itself (mostly: drops
the annotation silently), and what ``CheckedCocoDataset`` does (an
``AnnotationError`` naming the annotation id, image id and file, or one
``AnnotationWarning`` per kind with the count and the first ids).
"""
import re
import warnings

import numpy as np
import pytest
from robustness_helpers import (build_dataset, dataset_cfg, image,
                                square_polygon, write_coco)

from mmembed.datasets import AnnotationError, AnnotationWarning

GOOD = dict(image_id=1, category_id=1, bbox=[10, 10, 20, 20])


def _load(tmp_path, images, anns, dataset_type='CheckedCocoDataset',
          **kwargs):
    write_coco(str(tmp_path), images, anns)
    return build_dataset(dataset_cfg(str(tmp_path), dataset_type, **kwargs))


def _annotation_warnings(record) -> list:
    return [str(w.message) for w in record
            if issubclass(w.category, AnnotationWarning)]


def _num_gt(dataset, index=0) -> int:
    return len(dataset[index]['data_samples'].gt_instances)


# defect -> (bad annotation, warning kind); each is dropped with a warning
DROPPED = {
    'zero_width_box': (dict(GOOD, id=7, bbox=[5, 5, 0, 10]), 'degenerate_box'),
    'negative_box': (dict(GOOD, id=7, bbox=[5, 5, -4, 10], area=40),
                     'degenerate_box'),
    'zero_area': (dict(GOOD, id=7, area=0), 'degenerate_box'),
    'box_outside_image': (dict(GOOD, id=7, bbox=[100, 100, 10, 10]),
                          'box_outside_image'),
    'polygon_of_2_points': (dict(GOOD, id=7, segmentation=[[1, 1, 5, 5]]),
                            'no_valid_polygon'),
}


@pytest.mark.parametrize('defect', list(DROPPED))
def test_mmdet_coco_dataset_drops_silently(tmp_path, defect):
    """The baseline this suite fixes: mmdet keeps 1 of 2 GT, says nothing."""
    bad, _ = DROPPED[defect]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        dataset = _load(tmp_path, [image(1)], [GOOD, bad], 'CocoDataset')
        assert _num_gt(dataset) == 1
    assert not _annotation_warnings(record)


@pytest.mark.parametrize('defect', list(DROPPED))
def test_invalid_instance_dropped_with_counted_warning(tmp_path, defect):
    bad, kind = DROPPED[defect]
    with pytest.warns(AnnotationWarning) as record:
        dataset = _load(tmp_path, [image(1)], [GOOD, bad])
    messages = [m for m in _annotation_warnings(record) if kind in m]
    assert len(messages) == 1, _annotation_warnings(record)
    assert re.search(rf'\b1 {kind}\b', messages[0]), messages[0]
    assert 'annotation id 7' in messages[0] and 'image id 1' in messages[0]
    assert '000001.png' in messages[0]
    assert _num_gt(dataset) == 1


@pytest.mark.parametrize('defect', list(DROPPED))
def test_invalid_instance_raises_with_on_invalid_error(tmp_path, defect):
    bad, kind = DROPPED[defect]
    with pytest.raises(AnnotationError, match='annotation id 7'):
        _load(tmp_path, [image(1)], [GOOD, bad], on_invalid='error')


def test_warning_counts_every_case_and_lists_first_five(tmp_path):
    bad = [dict(GOOD, id=100 + i, bbox=[5, 5, 0, 10]) for i in range(12)]
    with pytest.warns(AnnotationWarning) as record:
        _load(tmp_path, [image(1)], [GOOD] + bad)
    message, = [m for m in _annotation_warnings(record)
                if 'degenerate_box' in m]
    assert '12 degenerate_box' in message
    assert 'annotation id 104' in message
    assert 'annotation id 105' not in message
    assert '... and 7 more' in message


def test_missing_image_file_raises_naming_file(tmp_path):
    # mmdet: FileNotFoundError only when the loader reaches the image
    images = [image(1), image(2, _skip=True)]
    anns = [GOOD, dict(GOOD, image_id=2)]
    with pytest.raises(AnnotationError,
                       match=r'image id 2: file .*000002\.png does not exist'):
        _load(tmp_path, images, anns)


def test_category_not_in_file_raises(tmp_path):
    with pytest.raises(AnnotationError,
                       match=r'annotation id 7 .*category_id 9 is not '
                       r'defined'):
        _load(tmp_path, [image(1)], [GOOD, dict(GOOD, id=7, category_id=9)])


def test_category_outside_metainfo_counted(tmp_path):
    """Defined in the file but not in metainfo.classes: training on a subset
    of classes, so a warning with the count, not an error."""
    write_coco(str(tmp_path), [image(1)], [GOOD, dict(GOOD, id=7,
                                                      category_id=3)],
               categories=[dict(id=1, name='disc'), dict(id=2, name='square'),
                           dict(id=3, name='star')])
    with pytest.warns(AnnotationWarning,
                      match=r'1 category_not_in_metainfo.*annotation id 7'):
        dataset = build_dataset(dataset_cfg(str(tmp_path),
                                            'CheckedCocoDataset'))
    assert _num_gt(dataset) == 1


def test_non_finite_box_raises(tmp_path):
    # json has no NaN literal in the standard, but Python's json writes one
    with pytest.raises(AnnotationError, match=r'annotation id 7 .*not finite'):
        _load(tmp_path, [image(1)],
              [GOOD, dict(GOOD, id=7, bbox=[1, 1, float('nan'), 3], area=9)])


def test_image_without_gt_reported(tmp_path):
    with pytest.warns(AnnotationWarning,
                      match=r'1 image_without_annotations.*image id 2 .*'
                      r'dropped by filter_empty_gt'):
        dataset = _load(tmp_path, [image(1), image(2)], [GOOD])
    assert len(dataset) == 1


def test_all_crowd_image_reported_and_kept(tmp_path):
    crowd = dict(GOOD, iscrowd=1)
    with pytest.warns(AnnotationWarning,
                      match=r'1 all_crowd_image.*image id 2 '):
        dataset = _load(tmp_path, [image(1), image(2)],
                        [GOOD, dict(crowd, id=5, image_id=2)])
    assert len(dataset) == 2
    by_id = {dataset[i]['data_samples'].img_id: i for i in range(2)}
    # crowd regions reach the model as ignored instances, not as GT
    assert _num_gt(dataset, by_id[2]) == 0


def test_box_partly_outside_kept_and_reported(tmp_path):
    with pytest.warns(AnnotationWarning,
                      match=r'1 box_partly_outside_image.*annotation id 7'):
        dataset = _load(tmp_path, [image(1)],
                        [GOOD, dict(GOOD, id=7, bbox=[50, 50, 30, 30])])
    assert _num_gt(dataset) == 2


def test_short_polygon_next_to_valid_one_kept(tmp_path):
    segm = [square_polygon(10, 10, 20, 20), [1, 1, 2, 2]]
    with pytest.warns(AnnotationWarning, match=r'1 short_polygon'):
        dataset = _load(tmp_path, [image(1)],
                        [dict(GOOD, segmentation=segm)])
    masks = dataset[0]['data_samples'].gt_instances.masks
    assert len(masks) == 1 and masks.to_ndarray()[0, 15, 15] == 1


def test_mask_with_hole_and_two_polygons(tmp_path):
    """A ring as RLE (hole) and an instance of two polygons: both load with
    the right pixels and no warning."""
    from pycocotools import mask as mask_utils
    ring = np.zeros((64, 64), np.uint8)
    ring[8:40, 8:40] = 1
    ring[16:32, 16:32] = 0
    rle = mask_utils.encode(np.asfortranarray(ring))
    rle['counts'] = rle['counts'].decode()
    anns = [
        dict(GOOD, id=1, bbox=[8, 8, 32, 32], segmentation=rle,
             area=float(ring.sum())),
        dict(GOOD, id=2, category_id=2, bbox=[42, 4, 20, 50],
             segmentation=[square_polygon(42, 4, 20, 10),
                           square_polygon(42, 44, 20, 10)]),
    ]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        dataset = _load(tmp_path, [image(1)], anns)
    assert not _annotation_warnings(record)
    masks = dataset[0]['data_samples'].gt_instances.masks.to_ndarray()
    np.testing.assert_array_equal(masks[0], ring)
    assert masks[1][8, 50] == 1 and masks[1][30, 50] == 0  # gap between
    assert masks[1][48, 50] == 1


def test_clean_file_gives_no_warning(tmp_path):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        dataset = _load(tmp_path, [image(1), image(2)],
                        [GOOD, dict(GOOD, id=2, image_id=2)])
    assert not _annotation_warnings(record)
    assert len(dataset) == 2


def test_rejects_unknown_on_invalid(tmp_path):
    with pytest.raises(ValueError, match="on_invalid must be 'warn' or"):
        _load(tmp_path, [image(1)], [GOOD], on_invalid='ignore')
