# Copyright (c) mmembed authors. All rights reserved.
from .checkpoint import (CorruptCheckpointError, UnsafeCheckpointError,
                         install_safe_checkpoint_loading, safe_torch_load)
from .config_utils import (config_test_metainfo, missing_file_message,
                           update_data_root)
from .env_check import check_dependencies, find_dependency_problems
from .load_check import (CheckpointMismatchError, allow_partial_load,
                         compare_state_dict)
from .setup_env import register_all_modules

__all__ = [
    'CorruptCheckpointError', 'UnsafeCheckpointError', 'install_safe_checkpoint_loading',
    'safe_torch_load', 'check_dependencies', 'find_dependency_problems',
    'register_all_modules', 'update_data_root', 'CheckpointMismatchError',
    'allow_partial_load', 'compare_state_dict', 'missing_file_message',
    'config_test_metainfo'
]
