"""Moved to :mod:`dispatch.message.delivery`; this name keeps older imports working (the same module)."""

import sys

from .message import delivery as _moved

sys.modules[__name__] = _moved
