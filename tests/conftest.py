# Copyright (c) mmembed authors. All rights reserved.
"""Shared pytest setup: mmdet's default scope, so dict(type='X') configs
resolve in mmdet's registry (into which mmembed registers)."""
from mmembed.utils import register_all_modules

register_all_modules(init_default_scope=True)
