# Copyright (c) mmembed authors. All rights reserved.
"""CheckedCocoMetric refuses (or warns about) an ann_file with images that
were never evaluated, the trap of evaluating a held-out subset through a
dataset's ``indices``; with full coverage it equals mmdet's CocoMetric."""
import pytest
from mmdet.evaluation import CocoMetric

from mmembed.evaluation import (BoundaryCocoMetric, CheckedCocoMetric,
                                EvalCoverageError, EvalCoverageWarning)

from test_boundary_coco_metric import ann_file  # noqa: F401 (fixture)
from test_boundary_coco_metric import evaluate, predictions


def only_image(samples, img_id):
    return [s for s in samples if s['img_id'] == img_id]


def test_full_coverage_equals_coco_metric(ann_file):  # noqa: F811
    ours = evaluate(CheckedCocoMetric(ann_file=ann_file, metric='segm'),
                    predictions(ann_file, shift=3))
    plain = evaluate(CocoMetric(ann_file=ann_file, metric='segm'),
                     predictions(ann_file, shift=3))
    assert ours == plain


def test_uncovered_images_raise_with_both_counts(ann_file):  # noqa: F811
    metric = CheckedCocoMetric(ann_file=ann_file, metric='segm')
    with pytest.raises(EvalCoverageError) as info:
        evaluate(metric, only_image(predictions(ann_file), 1))
    message = str(info.value)
    assert 'holds 2 images but only 1 of them were evaluated' in message
    assert 'image ids [2]' in message and 'split_coco.py' in message


def test_warn_mode_scores_as_mmdet_does(ann_file):  # noqa: F811
    samples = only_image(predictions(ann_file), 1)
    with pytest.warns(EvalCoverageWarning, match='holds 2 images'):
        ours = evaluate(
            CheckedCocoMetric(
                ann_file=ann_file, metric='segm', on_uncovered='warn'),
            samples)
    plain = evaluate(CocoMetric(ann_file=ann_file, metric='segm'),
                     only_image(predictions(ann_file), 1))
    # the other image's objects count as missed: AP is deflated, as warned
    assert ours == plain and ours['coco/segm_mAP'] < 1.0
    with pytest.raises(ValueError, match='on_uncovered'):
        CheckedCocoMetric(ann_file=ann_file, on_uncovered='ignore')


def test_boundary_metric_checks_too(ann_file):  # noqa: F811
    with pytest.raises(EvalCoverageError):
        evaluate(BoundaryCocoMetric(ann_file=ann_file, metric='segm'),
                 only_image(predictions(ann_file), 2))
