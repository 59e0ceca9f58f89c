# Copyright (c) mmembed authors. All rights reserved.
from .embedmask_head import EmbedMaskBoxHead, EmbedMaskHead
from .fcos_code_head import FCOSCodeHead

__all__ = ['FCOSCodeHead', 'EmbedMaskBoxHead', 'EmbedMaskHead']
