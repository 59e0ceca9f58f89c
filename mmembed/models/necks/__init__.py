# Copyright (c) mmembed authors. All rights reserved.
__all__ = []
