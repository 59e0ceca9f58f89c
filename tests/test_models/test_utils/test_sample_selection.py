# Copyright (c) mmembed authors. All rights reserved.
import pytest
import torch

from mmembed.models.utils import select_proposal_samples

GT = torch.tensor([[0., 0., 10., 10.], [20., 20., 40., 40.],
                   [50., 50., 60., 60.]])
# positives 0-2 -> GT 0 with IoU 1.0, 0.64, 0.25; 3-4 -> GT 1 with IoU
# 0.25, 0.25 (tie, none above 0.5); GT 2 has no positive.
PRED = torch.tensor([[0., 0., 10., 10.], [0., 0., 8., 8.], [0., 0., 5., 5.],
                     [20., 20., 30., 30.], [30., 30., 40., 40.]])
POS_GT = torch.tensor([0, 0, 0, 1, 1])


def test_iou_mean_keeps_all_above_threshold_else_the_argmax_set():
    samples = select_proposal_samples(PRED, GT, POS_GT, 'iou_mean', 0.5)
    # GT 0: positives 0 (1.0) and 1 (0.64) > 0.5; GT 1: none above, both
    # reach the max 0.25 -> the whole arg-max set; GT 2: nothing.
    assert samples.pos_inds.tolist() == [0, 1, 3, 4]
    assert samples.gt_inds.tolist() == [0, 0, 1, 1]


def test_best_iou_keeps_the_first_argmax_per_gt():
    samples = select_proposal_samples(PRED, GT, POS_GT, 'best_iou')
    assert samples.pos_inds.tolist() == [0, 3]
    assert samples.gt_inds.tolist() == [0, 1]


def test_permuting_positives_permutes_selection():
    perm = torch.tensor([4, 2, 0, 3, 1])
    samples = select_proposal_samples(PRED[perm], GT, POS_GT[perm],
                                      'iou_mean', 0.5)
    assert sorted(perm[samples.pos_inds].tolist()) == [0, 1, 3, 4]


def test_empty_inputs_and_bad_mode():
    empty = select_proposal_samples(
        torch.zeros(0, 4), GT, torch.zeros(0, dtype=torch.long), 'best_iou')
    assert empty.pos_inds.numel() == 0 and empty.gt_inds.numel() == 0
    with pytest.raises(ValueError, match='sampling mode'):
        select_proposal_samples(PRED, GT, POS_GT, 'mean')
