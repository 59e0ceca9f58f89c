# Copyright (c) mmembed authors. All rights reserved.
"""SegmentProposalMetric: class-agnostic segment AR@n, against hand-made
cases whose recall is known."""
import json

import numpy as np
import pytest
import torch

from mmembed.evaluation import SegmentProposalMetric


def write_gt(path, boxes, categories):
    """Rectangular GT masks on one 100 x 120 image."""
    anns = []
    for k, ((x1, y1, x2, y2), cat) in enumerate(zip(boxes, categories)):
        anns.append(dict(
            id=k + 1, image_id=1, category_id=cat, iscrowd=0,
            area=float((x2 - x1) * (y2 - y1)), bbox=[x1, y1, x2 - x1,
                                                     y2 - y1],
            segmentation=[[x1, y1, x2, y1, x2, y2, x1, y2]]))
    json.dump(dict(
        images=[dict(id=1, width=120, height=100, file_name='a.png')],
        annotations=anns,
        categories=[dict(id=1, name='a'), dict(id=2, name='b')]),
        open(path, 'w'))


def rect_masks(boxes):
    masks = torch.zeros(len(boxes), 100, 120, dtype=torch.bool)
    for m, (x1, y1, x2, y2) in zip(masks, boxes):
        m[y1:y2, x1:x2] = True
    return masks


def evaluate(path, masks, scores):
    metric = SegmentProposalMetric(ann_file=str(path),
                                   proposal_nums=(1, 2, 20))
    metric.dataset_meta = dict(classes=('a', 'b'))
    pred = dict(masks=masks, scores=torch.tensor(scores),
                labels=torch.zeros(len(masks), dtype=torch.long))
    metric.process({}, [dict(img_id=1, pred_instances=pred)])
    return metric.evaluate(1)


GT = [(10, 10, 50, 50), (60, 20, 110, 90)]


def test_perfect_class_agnostic_proposals_recall_everything(tmp_path):
    path = tmp_path / 'gt.json'
    write_gt(path, GT, [1, 2])      # two categories, proposals all label 0
    res = evaluate(path, rect_masks(GT), [0.9, 0.8])
    assert res['coco/AR@1'] == pytest.approx(0.5)
    assert res['coco/AR@2'] == pytest.approx(1.0)
    assert res['coco/AR@20'] == pytest.approx(1.0)


def test_recall_follows_the_rank_and_the_overlap(tmp_path):
    path = tmp_path / 'gt.json'
    write_gt(path, GT, [1, 1])
    noise = [(0, 0, 5, 5)] * 5
    # the second GT is only found by the 7th proposal
    res = evaluate(path, rect_masks([GT[0]] + noise + [GT[1]]),
                   [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    assert res['coco/AR@2'] == pytest.approx(0.5)
    assert res['coco/AR@20'] == pytest.approx(1.0)
    # a mask of IoU 0.8 with a GT counts at thresholds 0.5 ... 0.8 (7 of
    # 10 of COCO's IoU thresholds)
    x1, y1, x2, y2 = GT[0]
    partial = [(x1, y1, x2, y1 + 32)]           # 32 of 40 rows: IoU 0.8
    res = evaluate(path, rect_masks(partial), [0.9])
    assert res['coco/AR@20'] == pytest.approx(0.7 / 2)


def test_no_masks_is_an_error_and_bad_numbers_are_refused(tmp_path):
    path = tmp_path / 'gt.json'
    write_gt(path, GT, [1, 1])
    metric = SegmentProposalMetric(ann_file=str(path))
    with pytest.raises(KeyError, match='masks'):
        metric.process({}, [dict(img_id=1, pred_instances=dict(
            scores=torch.zeros(1), bboxes=torch.zeros(1, 4)))])
    with pytest.raises(ValueError, match='three increasing'):
        SegmentProposalMetric(ann_file=str(path), proposal_nums=(100, 10))
    # no proposals at all: zeros, with a warning
    res = evaluate(path, torch.zeros(0, 100, 120, dtype=torch.bool), [])
    assert res['coco/AR@20'] == 0.
    np.testing.assert_equal(len(res), 6)
