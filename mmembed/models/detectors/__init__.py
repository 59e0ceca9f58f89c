# Copyright (c) mmembed authors. All rights reserved.
from .blendmask import BlendMask
from .embedmask import EmbedMask
from .traceable_segmentor import TraceableInstanceSegmentor

__all__ = ['EmbedMask', 'BlendMask', 'TraceableInstanceSegmentor']
