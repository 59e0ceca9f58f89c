# Copyright (c) mmembed authors. All rights reserved.
from .sharpmask_fpn import SharpMaskFPN
from .sharpmask_neck import RefinementModule, SharpMaskNeck, upsample_to

__all__ = ['RefinementModule', 'SharpMaskFPN', 'SharpMaskNeck', 'upsample_to']
