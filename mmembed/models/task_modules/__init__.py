# Copyright (c) mmembed authors. All rights reserved.
__all__ = []
from .codecs import *  # noqa: F401,F403,E402
from .match_costs import *  # noqa: F401,F403,E402
