# Copyright (c) mmembed authors. All rights reserved.
from .resnet_with_stem import ResNetWithStem

__all__ = ['ResNetWithStem']
