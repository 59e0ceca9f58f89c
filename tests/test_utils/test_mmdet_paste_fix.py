# Copyright (c) mmembed authors. All rights reserved.
"""tolerate_boxes_outside_image: mmdet's CPU paste of a box with no pixel in
the image gives an empty mask instead of raising; other boxes are pasted by
mmdet's own function, unchanged."""
import pytest
import torch
from mmdet.models.roi_heads.mask_heads import FCNMaskHead, fcn_mask_head
from mmengine.config import ConfigDict

from mmembed.utils.mmdet_paste_fix import tolerate_boxes_outside_image


def _paste(boxes):
    head = FCNMaskHead(num_convs=0, in_channels=4, num_classes=2)
    torch.manual_seed(0)
    preds = torch.randn(len(boxes), 2, 14, 14)
    return head._predict_by_feat_single(
        preds, torch.tensor(boxes, dtype=torch.float32),
        torch.zeros(len(boxes), dtype=torch.long),
        dict(ori_shape=(40, 60), scale_factor=(1.0, 1.0)),
        ConfigDict(mask_thr_binary=0.5), rescale=True)


def test_box_outside_the_image_is_an_empty_mask():
    inside = [5.0, 5.0, 30.0, 25.0]
    outside = [70.0, 10.0, 90.0, 30.0]  # right of the 60-px-wide image
    with pytest.raises(RuntimeError, match='inconsistent with step sign'):
        _paste([inside, outside])
    want = _paste([inside])
    with tolerate_boxes_outside_image() as counter:
        got = _paste([inside, outside])
    assert counter.count == 1
    assert got.shape == (2, 40, 60)
    assert not got[1].any()
    assert torch.equal(got[0], want[0]) and want[0].any()
    # the patch is gone after the block
    assert fcn_mask_head._do_paste_mask.__name__ == '_do_paste_mask'
