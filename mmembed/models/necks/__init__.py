# Copyright (c) mmembed authors. All rights reserved.
from .sharpmask_neck import RefinementModule, SharpMaskNeck, upsample_to

__all__ = ['RefinementModule', 'SharpMaskNeck', 'upsample_to']
