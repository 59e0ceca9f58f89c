# Copyright (c) mmembed authors. All rights reserved.
import pytest
import torch
import torch.nn.functional as F

from mmembed.models.utils import sum_upsampled


def test_sum_upsampled_adds_coarser_levels_at_the_finest_size():
    torch.manual_seed(0)
    feats = [torch.randn(2, 3, 8, 12), torch.randn(2, 3, 4, 6),
             torch.randn(2, 3, 2, 3)]
    want = feats[0] + F.interpolate(
        feats[1], scale_factor=2, mode='bilinear', align_corners=False) + \
        F.interpolate(feats[2], scale_factor=4, mode='bilinear',
                      align_corners=False)
    torch.testing.assert_close(sum_upsampled(feats), want)
    # one level is returned as it is
    assert sum_upsampled(feats[:1]) is feats[0]


def test_sum_upsampled_errors():
    with pytest.raises(ValueError, match='at least one feature map'):
        sum_upsampled([])
    with pytest.raises(ValueError, match=r'must share \(B, C\)'):
        sum_upsampled([torch.zeros(1, 3, 4, 4), torch.zeros(1, 2, 2, 2)])
