# Copyright (c) mmembed authors. All rights reserved.
from .blendmask import BlendMask
from .embedmask import EmbedMask

__all__ = ['EmbedMask', 'BlendMask']
