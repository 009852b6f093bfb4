"""One snapshot of a deployment for its operator (``dispatch status``): queues and lag, dead letters,
the suppression list, register freshness, scheduled campaigns and whether the broker answers.

Everything is read from the store (the source of truth for what is queued), except the
broker check. Read-only: nothing is created or changed.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from .clock import now_utc
from .lifecycle import Status
from .queue import queue_name

if TYPE_CHECKING:
    from .dispatcher import Dispatcher


def snapshot(d: Dispatcher, now: datetime | None = None) -> dict[str, Any]:
    """The state of ``d``'s deployment at ``now`` as plain data (see the module docstring)."""
    now = now or now_utc()
    counts = d.store.operator_counts(now)
    queues: dict[str, dict[str, Any]] = {
        name: {"queue": name, "due": 0, "held": 0, "sending": 0, "lag_seconds": 0.0} for name in d.queues.queue_names
    }
    for queue, channel, category, status, due_now, count, first in counts.open_messages:
        name = queue or queue_name(channel or "-", category)
        item = queues.setdefault(name, {"queue": name, "due": 0, "held": 0, "sending": 0, "lag_seconds": 0.0})
        if status == str(Status.SENDING):
            item["sending"] += count
        elif due_now:
            item["due"] += count
        else:
            item["held"] += count
        if due_now and first is not None:
            lag = (now - _aware(first)).total_seconds()
            item["lag_seconds"] = max(item["lag_seconds"], round(lag, 1))
    return {
        "at": now,
        "broker": _broker(d),
        "queues": sorted(queues.values(), key=lambda q: q["queue"]),
        "dead_letters": counts.dead_letters,
        "suppression_list": counts.suppressions,
        "registers": [
            {k: r[k] for k in ("name", "country", "loaded_at", "age_days", "refresh_days", "stale")}
            for r in d.registers.status()
        ],
        "scheduled_campaigns": {
            "count": counts.scheduled_campaigns,
            "next_release_at": _aware(counts.next_release_at),
        },
    }


def _broker(d: Dispatcher) -> dict[str, Any]:
    from .store import safe_url
    from .worker import probe_broker

    if d.embedded:
        return {"url": "in-process (embedded default)", "reachable": True, "error": None}
    try:
        probe_broker(d.broker)
    except Exception as exc:  # report, never raise: the rest of the status is still worth seeing
        return {"url": safe_url(d.config.broker.url), "reachable": False, "error": " ".join(str(exc).split())[:200]}
    return {"url": safe_url(d.config.broker.url), "reachable": True, "error": None}


def _aware(value: Any) -> Any:
    from datetime import UTC

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


__all__ = ["snapshot"]
