# Copyright (c) mmembed authors. All rights reserved.
from .efficientnet_lite import (EfficientNetLite,
                                convert_efficientnet_lite_keys,
                                efficientnet_lite_package_file)
from .resnet_with_stem import ResNetWithStem

__all__ = [
    'ResNetWithStem', 'EfficientNetLite', 'convert_efficientnet_lite_keys',
    'efficientnet_lite_package_file'
]
