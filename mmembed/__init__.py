# Copyright (c) mmembed authors. All rights reserved.
"""mmembed: EmbedMask, BlendMask, ISTR and SharpMask for MMDetection 3.x.

``import mmembed`` (or ``custom_imports=dict(imports=['mmembed'])`` in a
config) checks the OpenMMLab stack, makes checkpoint loading work safely on
torch >= 2.6, and registers every mmembed component into mmdet's registries.
"""
from .utils.env_check import check_dependencies

check_dependencies()

from .utils.checkpoint import install_safe_checkpoint_loading  # noqa: E402

install_safe_checkpoint_loading()

from . import models  # noqa: E402,F401  (registers into mmdet.registry)
from .version import __version__, version_info  # noqa: E402

__all__ = ['__version__', 'version_info']
