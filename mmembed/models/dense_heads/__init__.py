# Copyright (c) mmembed authors. All rights reserved.
from .blender_head import BlenderHead, blend_bases
from .blendmask_head import BlendMaskBoxHead
from .embedmask_head import EmbedMaskBoxHead, EmbedMaskHead
from .fcos_code_head import FCOSCodeHead

__all__ = [
    'FCOSCodeHead', 'EmbedMaskBoxHead', 'EmbedMaskHead', 'BlendMaskBoxHead',
    'BlenderHead', 'blend_bases'
]
from .istr_rpn_head import ISTREmbeddingRPNHead  # noqa: E402

__all__ += ['ISTREmbeddingRPNHead']
from .deepmask_head import DeepMaskHead  # noqa: E402
from .sharpmask_refinement_head import (  # noqa: E402
    SharpMaskRefinementHead, crop_windows)

__all__ += ['DeepMaskHead', 'SharpMaskRefinementHead', 'crop_windows']
from .fpn_levels_rpn_head import FPNLevelsRPNHead  # noqa: E402

__all__ += ['FPNLevelsRPNHead']
