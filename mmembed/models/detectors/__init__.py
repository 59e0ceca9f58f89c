# Copyright (c) mmembed authors. All rights reserved.
from .embedmask import EmbedMask

__all__ = ['EmbedMask']
