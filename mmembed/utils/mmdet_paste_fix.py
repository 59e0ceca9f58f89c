# Copyright (c) mmembed authors. All rights reserved.
"""Evaluate mmdet's mask heads on boxes that lie outside the image.

mmdet 3.3's ``FCNMaskHead`` pastes CPU masks box by box with
``_do_paste_mask(..., skip_empty=True)``, which crops the paste to the box's
integer extent clamped to the image. A predicted box entirely right of or
below the image (query-based detectors such as QueryInst predict them early
in training) gives an extent whose start is past its end, and
``torch.arange`` raises ``upper bound and lower bound inconsistent with step
sign``: the whole evaluation fails. The mask of such a box covers no pixel
of the image, so :func:`tolerate_boxes_outside_image` pastes it as that
(an empty extent) and counts it; every other box goes through mmdet's own
function unchanged. The learning check and the analysis tools evaluate
mmdet's peers under it.
"""
import contextlib
import math
from typing import Iterator

from mmdet.models.roi_heads.mask_heads import fcn_mask_head


class OutsideBoxCounter:
    """Number of boxes pasted as empty because they lie outside the image."""

    def __init__(self) -> None:
        self.count = 0


@contextlib.contextmanager
def tolerate_boxes_outside_image() -> Iterator[OutsideBoxCounter]:
    """Within the block, mmdet's skip-empty paste of a box with no pixel in
    the image returns an empty extent instead of raising.

    Yields:
        an :class:`OutsideBoxCounter` (how many boxes were pasted so).
    """
    original = fcn_mask_head._do_paste_mask
    counter = OutsideBoxCounter()

    def paste(masks, boxes, img_h, img_w, skip_empty=True):
        if skip_empty and len(boxes):
            # mmdet's own extent: floor(min) - 1 clamped at 0, ceil(max) + 1
            # clamped at the image size
            x0 = max(math.floor(boxes[:, 0].min().item()) - 1, 0)
            y0 = max(math.floor(boxes[:, 1].min().item()) - 1, 0)
            x1 = min(math.ceil(boxes[:, 2].max().item()) + 1, int(img_w))
            y1 = min(math.ceil(boxes[:, 3].max().item()) + 1, int(img_h))
            if x0 >= x1 or y0 >= y1:
                counter.count += len(boxes)
                empty = masks.new_zeros(len(boxes), max(y1 - y0, 0),
                                        max(x1 - x0, 0))
                return empty, (slice(y0, max(y1, y0)), slice(x0, max(x1, x0)))
        return original(masks, boxes, img_h, img_w, skip_empty)

    fcn_mask_head._do_paste_mask = paste
    try:
        yield counter
    finally:
        fcn_mask_head._do_paste_mask = original


__all__ = ['tolerate_boxes_outside_image', 'OutsideBoxCounter']
