# Copyright (c) mmembed authors. All rights reserved.
from typing import Tuple

from mmdet.models.detectors.single_stage_instance_seg import \
    SingleStageInstanceSegmentor
from mmdet.registry import MODELS
from mmdet.structures import OptSampleList
from torch import Tensor

from ...utils.arg_checks import check_init_args


@MODELS.register_module()
@check_init_args
class TraceableInstanceSegmentor(SingleStageInstanceSegmentor):
    """mmdet's ``SingleStageInstanceSegmentor`` with a GT-free
    ``forward(mode='tensor')``.

    Training and inference are unchanged. mmdet's ``_forward`` runs the box
    head's *loss* (it needs GT) to get positive infos for the mask head; for
    export we return the raw outputs of both heads, which need no GT and
    trace. The base of :class:`EmbedMask` and :class:`BlendMask`; use it
    directly for a mix of mmembed heads (e.g. ``EmbedMaskBoxHead`` +
    ``BlenderHead``).
    """

    def _forward(self,
                 batch_inputs: Tensor,
                 batch_data_samples: OptSampleList = None) -> Tuple[tuple]:
        """Raw head outputs: ``(bbox_head.forward(x), mask_head.forward(x))``
        (see each head's ``forward`` for the tensors and their shapes)."""
        x = self.extract_feat(batch_inputs)
        return self.bbox_head.forward(x), self.mask_head.forward(x)
