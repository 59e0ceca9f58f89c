"""An example project that builds on mmembed (docs/use_in_your_project.md).

Importing it registers its modules into mmdet's registries, next to
mmembed's: configs name them with ``custom_imports=dict(imports=[...,
'my_project'])``.
"""
from .models import LovaszDiceLoss, RefinedEmbedMaskHead

__all__ = ['LovaszDiceLoss', 'RefinedEmbedMaskHead']
