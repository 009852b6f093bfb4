"""Moved to :mod:`dispatch.message.journal`; this name keeps older imports working (the same module)."""

import sys

from .message import journal as _moved

sys.modules[__name__] = _moved
