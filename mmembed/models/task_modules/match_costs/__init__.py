# Copyright (c) mmembed authors. All rights reserved.
from .mask_code_cost import MaskCodeCost

__all__ = ['MaskCodeCost']
