# Copyright (c) mmembed authors. All rights reserved.
from .freeze_except_hook import FreezeExceptHook, freeze_except

__all__ = ['FreezeExceptHook', 'freeze_except']
