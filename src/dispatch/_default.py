"""The process-wide default dispatcher behind ``dispatch.dispatch()``."""

from __future__ import annotations

import atexit
import threading

from .dispatcher import Dispatcher

_default: Dispatcher | None = None
_lock = threading.Lock()


def default_dispatcher() -> Dispatcher:
    """The default :class:`Dispatcher`, created on first use and closed at exit."""
    global _default
    if _default is None or _default.closed:
        with _lock:
            if _default is None or _default.closed:
                _default = Dispatcher.from_config()
                atexit.register(close_default)
    return _default


def close_default() -> None:
    """Close the default dispatcher (delivering what it queued). Safe to call twice."""
    global _default
    with _lock:
        if _default is not None:
            _default.close()
            _default = None
