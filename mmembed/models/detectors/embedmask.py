# Copyright (c) mmembed authors. All rights reserved.
from mmdet.registry import MODELS

from .traceable_segmentor import TraceableInstanceSegmentor


@MODELS.register_module()
class EmbedMask(TraceableInstanceSegmentor):
    """EmbedMask detector: backbone + FPN + :class:`EmbedMaskBoxHead` +
    :class:`EmbedMaskHead`.

    ``forward(mode='tensor')`` returns ``(bbox_outs, mask_outs)``:
    ``bbox_outs`` = (cls_scores, bbox_preds, centernesses, code_preds), lists
    over levels; ``mask_outs`` = (pixel_embeds (B, D, H/4, W/4),).
    """
