# Copyright (c) mmembed authors. All rights reserved.
from typing import Tuple

from mmdet.models.detectors.single_stage_instance_seg import \
    SingleStageInstanceSegmentor
from mmdet.registry import MODELS
from mmdet.structures import OptSampleList
from torch import Tensor


@MODELS.register_module()
class BlendMask(SingleStageInstanceSegmentor):
    """BlendMask detector: backbone + FPN + :class:`BlendMaskBoxHead` +
    :class:`BlenderHead` (AdelaiDet ``adet/modeling/blendmask``).

    Training and inference are mmdet's ``SingleStageInstanceSegmentor``
    unchanged. Only ``forward(mode='tensor')`` differs, as for
    :class:`EmbedMask`: mmdet's version runs the box head's *loss* (it needs
    GT) to get positive infos; for export we return the raw outputs of both
    heads, which need no GT and trace.
    """

    def _forward(self,
                 batch_inputs: Tensor,
                 batch_data_samples: OptSampleList = None) -> Tuple[tuple]:
        """Raw head outputs.

        Returns:
            ``(bbox_outs, mask_outs)``: ``bbox_outs`` = (cls_scores,
            bbox_preds, centernesses, attentions), lists over levels;
            ``mask_outs`` = (bases (B, K, H/4, W/4),) in eval mode.
        """
        x = self.extract_feat(batch_inputs)
        return self.bbox_head.forward(x), self.mask_head.forward(x)
