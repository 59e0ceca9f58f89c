# Copyright (c) mmembed authors. All rights reserved.
from .blendmask_head import BlenderHead, BlendMaskBoxHead, blend_bases
from .embedmask_head import EmbedMaskBoxHead, EmbedMaskHead
from .fcos_code_head import FCOSCodeHead

__all__ = [
    'FCOSCodeHead', 'EmbedMaskBoxHead', 'EmbedMaskHead', 'BlendMaskBoxHead',
    'BlenderHead', 'blend_bases'
]
