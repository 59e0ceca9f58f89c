# Copyright (c) mmembed authors. All rights reserved.
"""Input checks shared by the per-row mask losses (LovaszHingeLoss,
RegionDiceLoss): one row per instance, any pixel layout after it."""
from typing import Optional

from torch import Tensor


def check_row_inputs(name: str, pred: Tensor, target: Tensor,
                     valid_mask: Optional[Tensor] = None) -> None:
    """Raise a ``ValueError`` naming ``name`` when ``pred`` (N, *) and
    ``target`` differ in shape, ``pred`` has no row dimension, or
    ``valid_mask`` does not match ``pred``."""
    if pred.shape != target.shape:
        raise ValueError(f'{name}: pred {tuple(pred.shape)} and target '
                         f'{tuple(target.shape)} differ in shape')
    if pred.dim() == 0:
        raise ValueError(f'{name}: pred must have a row dimension')
    if valid_mask is not None and valid_mask.shape != pred.shape:
        raise ValueError(f'{name}: valid_mask {tuple(valid_mask.shape)} '
                         f'does not match pred {tuple(pred.shape)}')
