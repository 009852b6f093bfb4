"""The clock: the one way dispatch reads the current moment (timezone-aware, UTC).

A neutral module (it imports nothing of dispatch), so that a channel plugin or the
policy's callers need not import the store just to know the time.
"""

from __future__ import annotations

from datetime import UTC, datetime


def now_utc() -> datetime:
    """The current moment, timezone-aware, in UTC."""
    return datetime.now(UTC)


__all__ = ["now_utc"]
