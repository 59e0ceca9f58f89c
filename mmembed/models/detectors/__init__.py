# Copyright (c) mmembed authors. All rights reserved.
from .blendmask import BlendMask
from .embedmask import EmbedMask
from .sharpmask_proposer import SharpMaskProposer
from .traceable_segmentor import TraceableInstanceSegmentor

__all__ = [
    'EmbedMask', 'BlendMask', 'SharpMaskProposer', 'TraceableInstanceSegmentor'
]
