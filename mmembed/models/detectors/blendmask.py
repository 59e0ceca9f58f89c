# Copyright (c) mmembed authors. All rights reserved.
from mmdet.registry import MODELS

from .traceable_segmentor import TraceableInstanceSegmentor


@MODELS.register_module()
class BlendMask(TraceableInstanceSegmentor):
    """BlendMask detector: backbone + FPN + :class:`BlendMaskBoxHead` +
    :class:`BlenderHead` (AdelaiDet ``adet/modeling/blendmask``).

    ``forward(mode='tensor')`` returns ``(bbox_outs, mask_outs)``:
    ``bbox_outs`` = (cls_scores, bbox_preds, centernesses, attentions),
    lists over levels; ``mask_outs`` = (bases (B, K, H/4, W/4),) in eval
    mode.
    """
