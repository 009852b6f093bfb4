"""Moved to :mod:`dispatch.message.pipeline`; this name keeps older imports working (the same module)."""

import sys

from .message import pipeline as _moved

sys.modules[__name__] = _moved
