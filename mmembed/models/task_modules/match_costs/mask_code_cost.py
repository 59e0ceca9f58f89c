# Copyright (c) mmembed authors. All rights reserved.
"""ISTR's mask-embedding matching cost."""
from typing import Optional, Union

import torch.nn.functional as F
from mmdet.models.task_modules.assigners.match_cost import BaseMatchCost
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData
from torch import Tensor


@TASK_UTILS.register_module()
class MaskCodeCost(BaseMatchCost):
    """Cosine cost between predicted and GT mask codes, for
    :class:`~mmdet.models.task_modules.HungarianAssigner`.

    ``cost = -weight * (cos(pred, gt) + 1) / 2``, in [-weight, 0] (ISTR v1
    ``loss.py::HungarianMatcher``, ``specs/methods.md`` 3.2).

    Reads ``pred_instances.mask_codes`` (n, D) and ``gt_instances.mask_codes``
    (k, D) (the GT codes come from the codec, see ``ISTRRoIHead``).

    Args:
        weight: cost weight (ISTR v1: 2).
    """

    def __init__(self, weight: Union[float, int] = 1.) -> None:
        super().__init__(weight=weight)

    def __call__(self,
                 pred_instances: InstanceData,
                 gt_instances: InstanceData,
                 img_meta: Optional[dict] = None,
                 **kwargs) -> Tensor:
        """(n, k) cost matrix."""
        for name, inst in (('pred_instances', pred_instances),
                           ('gt_instances', gt_instances)):
            if 'mask_codes' not in inst:
                raise KeyError(f'MaskCodeCost needs {name}.mask_codes (N, '
                               'D); ISTRRoIHead sets them before assigning')
        pred = F.normalize(pred_instances.mask_codes.float(), dim=-1)
        gt = F.normalize(gt_instances.mask_codes.float(), dim=-1)
        if pred.shape[-1] != gt.shape[-1]:
            raise ValueError(f'code lengths differ: predictions '
                             f'{tuple(pred.shape)}, GT {tuple(gt.shape)}')
        return -(pred @ gt.t() + 1) / 2 * self.weight
