"""Moved to :mod:`dispatch.message.group_commit`; this name keeps older imports working (the same module)."""

import sys

from .message import group_commit as _moved

sys.modules[__name__] = _moved
