# Copyright (c) mmembed authors. All rights reserved.
from ._utils import (get_config_root, get_detector_cfg, get_repo_root,
                     get_shared_data_root, tiny_embedmask_cfg)
from .op_count import HostSyncRecorder, count_aten_ops

__all__ = [
    'get_config_root', 'get_detector_cfg', 'get_repo_root',
    'get_shared_data_root', 'tiny_embedmask_cfg', 'HostSyncRecorder',
    'count_aten_ops'
]
