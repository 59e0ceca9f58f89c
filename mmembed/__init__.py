# Copyright (c) mmembed authors. All rights reserved.
"""mmembed: EmbedMask, BlendMask, ISTR and SharpMask for MMDetection 3.x.

``import mmembed`` (or ``custom_imports=dict(imports=['mmembed'])`` in a
config) checks the OpenMMLab stack, makes checkpoint loading work safely on
torch >= 2.6 and refuse checkpoints of other models, registers every mmembed
component into mmdet's registries and makes ``mmembed::`` config paths
resolve (mmengine's package table, see :mod:`mmembed.utils.mim`; the
configs ship in ``mmembed/.mim/configs``).
"""
from .utils.env_check import check_dependencies

check_dependencies()

from .utils.checkpoint import install_safe_checkpoint_loading  # noqa: E402

install_safe_checkpoint_loading()

from .utils.load_check import install_load_check  # noqa: E402

# every checkpoint load says how much of the model it filled and refuses a
# checkpoint of another model (mmembed.utils.load_check)
install_load_check()

from .utils.mim import register_mim_package  # noqa: E402

register_mim_package()

from . import models  # noqa: E402,F401  (registers into mmdet.registry)
from . import datasets, engine, evaluation  # noqa: E402,F401
# the 'mmembed' scope that mmengine uses for dicts inherited through
# mmembed:: bases (see mmembed/registry.py)
from . import registry  # noqa: E402,F401
from .version import __version__, version_info  # noqa: E402

__all__ = ['__version__', 'version_info']
