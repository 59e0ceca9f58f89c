# Copyright (c) mmembed authors. All rights reserved.
"""Detections a diverged or corrupted network can emit: NaN / inf boxes or
scores. Every head removes them the same way, with one warning that counts
them and names the image (docs/reliability.md).

Shape shorthand: N detections (or candidates) of one image.
"""
import warnings
from typing import Optional

import torch
from mmengine.structures import InstanceData
from torch import Tensor


def remove_non_finite(results: InstanceData,
                      img_meta: dict,
                      owner: str,
                      num_dropped_before: Optional[Tensor] = None,
                      what: str = 'detections') -> InstanceData:
    """``results`` without the rows whose box or score is NaN / inf.

    One host read per image (the count), so call it where the caller reads
    anyway (before NMS) or after the masks are pasted.

    Args:
        results: ``bboxes`` (N, 4) and ``scores`` (N,), plus any other
            per-row fields (kept aligned).
        img_meta: ``img_id`` and ``img_path`` name the image in the warning.
        owner: who removed them (the head's class name).
        num_dropped_before: () count of non-finite rows the caller already
            dropped (e.g. NaN scores a threshold removed), added to the
            warning's count.
        what: what a row is, for the message.

    Returns:
        ``results`` itself when every row is finite, else the finite rows.
    """
    finite = (torch.isfinite(results.bboxes).all(1)
              & torch.isfinite(results.scores))
    before = num_dropped_before if num_dropped_before is not None else \
        finite.new_zeros((), dtype=torch.long)
    num_bad, num_before = torch.stack([(~finite).sum(), before]).tolist()
    if not (num_bad or num_before):
        return results
    detail = (f' ({num_before} NaN scores before the threshold, {num_bad} '
              f'NaN/inf boxes or scores after it)'
              if num_dropped_before is not None else '')
    warnings.warn(
        f'{owner}: removed {num_bad + num_before} {what} with non-finite '
        f'boxes or scores{detail} in image {img_meta.get("img_id")} '
        f'({img_meta.get("img_path")}); the network outputs are corrupt '
        '(diverged weights?)')
    return results[finite]
