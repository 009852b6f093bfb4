"""A message's life, written in one place (SPEC §7).

Every message is one state machine::

    (new) ──► suppressed                                  (decided against; final)
    (new) ──► queued ──► sending ──► sent ──► delivered   (the provider confirmed)
                 ▲          │          ├────► bounced ──► fallback
                 └──────────┤          └────► complained
                 (transient │
                  failure,  ├────► failed ──► fallback   (permanent; a statutory message is re-sent
                  lease     │                              on the next channel: the new message is queued)
                  expired)  └────► dead                   (retries exhausted; an operator may re-queue it)

:data:`TRANSITIONS` is the whole table: a change that is not in it raises
:class:`IllegalTransition`. :class:`Status` is the only vocabulary of states; the
store writes ``status`` only for a :class:`Transition` made here, and every
transition goes through :meth:`Lifecycle.record`, which counts it and emits its
event (``message.<status>``, SPEC §10).

The retry count has one owner too: ``attempts`` is raised by the store when a worker
claims a message, and :meth:`RetryPolicy.after_transient` alone decides whether a
transient failure is retried (and when) or ends the message as ``dead``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from .errors import DispatchError

logger = logging.getLogger("dispatch.lifecycle")


class Status(StrEnum):
    """The states of a message (SPEC §7)."""

    SUPPRESSED = "suppressed"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    FAILED = "failed"
    FALLBACK = "fallback"
    DEAD = "dead"

    @property
    def is_open(self) -> bool:
        """Still on its way: a worker will (again) try to send it."""
        return self in OPEN

    @property
    def is_final(self) -> bool:
        """Nothing can follow it."""
        return not TRANSITIONS.get(self)


#: States in which a message still waits for a worker.
OPEN: frozenset[Status] = frozenset({Status.QUEUED, Status.SENDING})
#: States in which the provider has taken the message (what "went out" means for reports and caps).
HANDED_OVER: frozenset[Status] = frozenset({Status.SENT, Status.DELIVERED, Status.BOUNCED, Status.COMPLAINED})

#: Every allowed change: state → the states it may move to. ``None`` is a message not yet stored.
TRANSITIONS: Mapping[Status | None, frozenset[Status]] = {
    None: frozenset({Status.QUEUED, Status.SUPPRESSED}),
    # queued → sent/delivered: a provider's acceptance recorded late (the store was down, the
    # lease ran out and the relay put the message back before the outcome could be written).
    Status.QUEUED: frozenset({Status.SENDING, Status.SENT, Status.DELIVERED, Status.DEAD}),
    # sending → sending: a worker renews its lease (not a state change; not recorded as one).
    Status.SENDING: frozenset({Status.SENT, Status.DELIVERED, Status.QUEUED, Status.FAILED, Status.DEAD}),
    Status.SENT: frozenset({Status.DELIVERED, Status.BOUNCED, Status.COMPLAINED, Status.FAILED}),
    Status.DELIVERED: frozenset({Status.BOUNCED, Status.COMPLAINED}),
    Status.BOUNCED: frozenset({Status.FALLBACK, Status.COMPLAINED}),
    Status.COMPLAINED: frozenset(),
    Status.FAILED: frozenset({Status.FALLBACK}),
    Status.FALLBACK: frozenset(),
    Status.DEAD: frozenset({Status.QUEUED, Status.FALLBACK}),
    Status.SUPPRESSED: frozenset(),
}


class IllegalTransition(DispatchError):
    """A state change the lifecycle does not allow (a bug, or a stale report)."""


def check(source: Status | None, target: Status) -> None:
    """Raise :class:`IllegalTransition` unless ``source`` → ``target`` is in :data:`TRANSITIONS`."""
    if target not in TRANSITIONS.get(source, frozenset()):
        raise IllegalTransition(f"a message cannot go from {source or 'new'} to {target}")


def sources_of(target: Status) -> frozenset[Status]:
    """The states a message may be in to move to ``target`` (for compare-and-set updates)."""
    return frozenset(s for s, targets in TRANSITIONS.items() if s is not None and target in targets)


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of one message's state, with its moment and cause."""

    message_id: str
    source: Status | None
    target: Status
    at: datetime
    #: Why: ``decided``, ``claimed``, ``provider accepted``, ``550 5.1.1``, ``lease expired``, ...
    cause: str = ""
    channel: str | None = None
    message_type: str | None = None
    recipient_id: str | None = None
    #: Extra, non-personal facts for the event (``attempt``, ``fallback_id``, ``code``...).
    detail: Mapping[str, Any] = field(default_factory=dict)
    #: The message's template version (SPEC §5), carried by its ``message.*`` events.
    template_version: str | None = None

    def __post_init__(self) -> None:
        check(self.source, self.target)

    @property
    def event_type(self) -> str:
        """The event name of SPEC §10: ``message.<state>``."""
        return f"message.{self.target}"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a transient failure is tried again, and when it is given up (the one owner of retries)."""

    max_retries: int = 8
    min_backoff: timedelta = timedelta(seconds=2)
    max_backoff: timedelta = timedelta(hours=1)

    def after_transient(self, attempts: int, now: datetime) -> tuple[Status, datetime | None]:
        """``(queued, retry at)`` while retries remain after ``attempts`` tries, else ``(dead, None)``."""
        if attempts > self.max_retries:
            return Status.DEAD, None
        delay = min(self.min_backoff * (2 ** max(0, attempts - 1)), self.max_backoff)
        return Status.QUEUED, now + delay


#: Called with each batch of transitions after it is stored (events, metrics).
Listener = Callable[[list[Transition]], None]


class Lifecycle:
    """The one place transitions are announced: counted, logged at debug level, handed to listeners.

    The store performs the writes (a compare-and-set per message, in batches) and
    hands back the :class:`Transition` values that took effect; this class tells
    everyone else. Listeners are :mod:`dispatch.events` and :mod:`dispatch.metrics`.
    """

    def __init__(self, listeners: Iterable[Listener] = ()) -> None:
        self._listeners: list[Listener] = list(listeners)

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def record(self, transitions: Iterable[Transition]) -> None:
        """Announce transitions that the store has written."""
        batch = list(transitions)
        if not batch:
            return
        for listener in self._listeners:
            try:
                listener(batch)
            except Exception:  # an observer must never change a delivery's outcome
                logger.exception("a lifecycle listener failed on %d transition(s)", len(batch))


__all__ = [
    "HANDED_OVER",
    "OPEN",
    "TRANSITIONS",
    "IllegalTransition",
    "Lifecycle",
    "RetryPolicy",
    "Status",
    "Transition",
    "check",
    "sources_of",
]
