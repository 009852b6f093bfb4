"""Moved to :mod:`dispatch.message.aftersend`; this name keeps older imports working (the same module)."""

import sys

from .message import aftersend as _moved

sys.modules[__name__] = _moved
