"""Whether the store answered lately (one per process): the workers, the relay and the webhook
sender hold work while it is down, and an outage is logged once when it starts and once when it ends."""

from __future__ import annotations

import logging
import threading
import time

#: The name operators' log filters know (it lived in dispatch.journal).
logger = logging.getLogger("dispatch.journal")


class StoreHealth:
    """Whether the store answered lately; logs once when it goes and once when it comes back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._up_since = time.monotonic()
        self._failures = 0

    def failed(self, exc: BaseException, doing: str) -> None:
        with self._lock:
            self._failures += 1
            if self._down_since is None:
                self._down_since = time.monotonic()
                logger.warning("store unreachable while %s (%s); holding work and retrying", doing, _short(exc))

    def ok(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            if self._down_since is not None:
                logger.warning(
                    "store reachable again after %.0f s (%d operations waited)",
                    time.monotonic() - self._down_since,
                    self._failures,
                )
                self._down_since = None
                self._failures = 0
                self._up_since = time.monotonic()

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def healthy_for(self) -> float:
        """Seconds since the store last came back (or since this process started); 0 while down."""
        return 0.0 if self._down_since is not None else time.monotonic() - self._up_since


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
