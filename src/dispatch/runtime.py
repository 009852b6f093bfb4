"""Moved to :mod:`dispatch.message.runtime`; this name keeps older imports working (the same module)."""

import sys

from .message import runtime as _moved

sys.modules[__name__] = _moved
