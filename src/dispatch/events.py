"""Events (SPEC §10): every change of a message's state and of a consent, told to plugins.

An :class:`Event` is small and carries ids only. :class:`EventBus` turns the
lifecycle's transitions into ``message.<state>`` events and passes every event to
the ``dispatch_event`` plugin hook (and to any subscriber in this process).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pluggy

from .ids import new_id
from .lifecycle import Transition

logger = logging.getLogger("dispatch.events")

#: The event types of SPEC §10.
EVENT_TYPES: tuple[str, ...] = (
    "message.suppressed",
    "message.queued",
    "message.sending",
    "message.sent",
    "message.delivered",
    "message.bounced",
    "message.complained",
    "message.failed",
    "message.fallback",
    "message.dead",
    "notice.late",
    "consent.changed",
    "offer.accepted",  # a written offer after a phone sale (SPEC §13, dispatch.offers)
    "offer.declined",
    "offer.lapsed",
)


@dataclass(frozen=True, slots=True)
class Event:
    """One event: ``type`` (e.g. ``message.sent``), when it happened, and ids-only ``data``."""

    type: str
    occurred_at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: f"evt_{new_id()}")

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape sent to webhooks: ``{id, type, timestamp, data}``."""
        return {"id": self.id, "type": self.type, "timestamp": self.occurred_at.isoformat(), "data": dict(self.data)}


def from_transition(transition: Transition) -> Event:
    """The event of one lifecycle transition."""
    data: dict[str, Any] = {
        "message_id": transition.message_id,
        "status": str(transition.target),
        "previous_status": str(transition.source) if transition.source else None,
        "cause": transition.cause,
    }
    for key in ("channel", "message_type", "recipient_id"):
        value = getattr(transition, key)
        if value is not None:
            data[key] = value
    data.update(transition.detail)
    return Event(transition.event_type, transition.at, data)


class EventBus:
    """Hands events to the ``dispatch_event`` hook and to in-process subscribers."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._hook = pm.hook.dispatch_event
        self._subscribers: list[Callable[[Event], None]] = []

    def subscribe(self, subscriber: Callable[[Event], None]) -> None:
        self._subscribers.append(subscriber)

    @property
    def listened(self) -> bool:
        """True when anyone listens (saves building events nobody reads)."""
        return bool(self._subscribers) or bool(self._hook.get_hookimpls())

    def emit(self, events: Iterable[Event]) -> None:
        for event in events:
            for subscriber in self._subscribers:
                try:
                    subscriber(event)
                except Exception:
                    logger.exception("an event subscriber failed on %s %s", event.type, event.id)
            try:
                self._hook(event=event)
            except Exception:
                logger.exception("a dispatch_event hook failed on %s %s", event.type, event.id)

    def on_transitions(self, transitions: list[Transition]) -> None:
        """The lifecycle's listener."""
        if self.listened:
            self.emit(from_transition(t) for t in transitions)
