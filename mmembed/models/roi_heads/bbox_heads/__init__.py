# Copyright (c) mmembed authors. All rights reserved.
from .istr_stage_head import ISTRStageHead

__all__ = ['ISTRStageHead']
