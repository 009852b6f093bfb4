"""Messages a worker hands back to the queue (a rate limit, a retry later), each with its delay."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ..clock import now_utc

if TYPE_CHECKING:
    from ..message.runtime import Runtime


class Requeue:
    """``DeliveryHooks.requeue``: ``(queue, message id, delay ms)`` items go to the queue again."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def __call__(self, items: list[tuple[str, str, int | None]]) -> None:
        self.runtime.enqueue(
            [{"id": mid, "queue": queue, "send_after": due(delay)} for queue, mid, delay in items],
            now_utc(),
            fresh=False,
        )


def due(delay_ms: int | None) -> datetime | None:
    """The moment ``delay_ms`` from now (None for no delay)."""
    return now_utc() + timedelta(milliseconds=delay_ms) if delay_ms else None
