# Copyright (c) mmembed authors. All rights reserved.
"""ISTR's mask-embedding matching cost."""
from typing import Optional, Union

import torch
import torch.nn.functional as F
from mmdet.models.task_modules.assigners.match_cost import BaseMatchCost
from mmdet.registry import TASK_UTILS
from mmengine.logging import MessageHub
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
        weight: cost weight (ISTR v1: 2, v2: 1).
        start_iter: the cost is 0 before this training iteration (read from
            mmengine's message hub, ``iter``, which the runner updates
            before every iteration; outside a runner, where no iteration
            is known, the cost is on). 0, the official behaviour, is on
            from the start. mmembed's key: the codes of an untrained
            branch are noise that changes the matched query of many
            objects (docs/istr.md#why-istr-trails-queryinst-here), so
            matching on boxes and classes first lets the queries settle.
    """

    def __init__(self,
                 weight: Union[float, int] = 1.,
                 start_iter: int = 0) -> None:
        if not isinstance(start_iter, int) or start_iter < 0:
            raise ValueError(f'start_iter must be an int >= 0, got '
                             f'{start_iter!r}')
        super().__init__(weight=weight)
        self.start_iter = start_iter

    def active(self) -> bool:
        """Whether the cost counts at the current training iteration."""
        if self.weight == 0:
            return False
        if self.start_iter == 0:
            return True
        hub = MessageHub.get_current_instance()
        cur_iter = hub.get_info('iter')
        return cur_iter is None or cur_iter >= self.start_iter

    def __call__(self,
                 pred_instances: InstanceData,
                 gt_instances: InstanceData,
                 img_meta: Optional[dict] = None,
                 **kwargs) -> Tensor:
        """(n, k) cost matrix (zeros while not :meth:`active`; the codes
        are then not read, and may be absent)."""
        if not self.active():
            return gt_instances.labels.new_zeros(
                (len(pred_instances), len(gt_instances)), dtype=torch.float32)
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
