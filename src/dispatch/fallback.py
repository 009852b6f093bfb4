"""Moved to :mod:`dispatch.message.fallback`; this name keeps older imports working (the same module)."""

import sys

from .message import fallback as _moved

sys.modules[__name__] = _moved
