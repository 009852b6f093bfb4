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
transition is written *and* announced by one call of :class:`Lifecycle` —
:meth:`~Lifecycle.admit`, :meth:`~Lifecycle.claim`, :meth:`~Lifecycle.finish`,
:meth:`~Lifecycle.move`, :meth:`~Lifecycle.release_expired`, :meth:`~Lifecycle.requeue_dead` —
which runs the store's compare-and-set and hands what took effect to the listeners (events
``message.<status>`` of SPEC §10, metrics), so no caller can write a state and forget its event.

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
from typing import Any, Protocol

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


class TransitionStore(Protocol):
    """The store's state-changing writes (:class:`dispatch.store.Store`), each a compare-and-set
    that returns what took effect. Only :class:`Lifecycle` calls them."""

    def insert_messages(self, records: list[Any], variants: Mapping[str, Any] | None = None) -> set[str]: ...

    def insert_message(self, record: Any, variants: Mapping[str, Any] | None = None) -> None: ...

    def claim(self, message_ids: Any, worker: str, now: datetime, lease: timedelta) -> list[Any]: ...

    def finish(self, outcomes: Iterable[Any], worker: str) -> list[Transition]: ...

    def transition(
        self,
        message_id: str,
        target: Status,
        now: datetime,
        cause: str,
        *,
        detail: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> Transition | None: ...

    def release_expired(self, now: datetime) -> list[Transition]: ...

    def requeue_dead(self, message_ids: Any = None, *, now: datetime) -> list[Transition]: ...


class Lifecycle:
    """The one place a message's state is moved: the store's compare-and-set, then the announcement.

    Each method below runs one of the store's writes and hands the :class:`Transition` values
    that took effect to the listeners (:mod:`dispatch.events`, :mod:`dispatch.metrics`).
    """

    def __init__(self, listeners: Iterable[Listener] = ()) -> None:
        self._listeners: list[Listener] = list(listeners)

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    # -- the writes, each announced ---------------------------------------------------------

    def admit(self, store: TransitionStore, records: list[Any], variants: Mapping[str, Any] | None = None) -> set[str]:
        """Store decided messages (``queued`` or ``suppressed``) in one transaction and announce
        each one's first state; returns the ids stored (a key another process took is left out)."""
        stored = store.insert_messages(records, variants)
        self.record(_first(r) for r in records if r.id in stored)
        return stored

    def admit_one(self, store: TransitionStore, record: Any, variants: Mapping[str, Any] | None = None) -> None:
        """Store one decided message and announce it (raises the store's ``DuplicateKey`` for a used key)."""
        store.insert_message(record, variants)
        self.record([_first(record)])

    def claim(
        self, store: TransitionStore, message_ids: Any, worker: str, now: datetime, lease: timedelta
    ) -> list[Any]:
        """Claim the queued ones of ``message_ids`` for ``worker`` (``queued`` → ``sending``); returns the claims."""
        claimed = store.claim(message_ids, worker, now, lease)
        self.record(
            Transition(
                c.id,
                Status.QUEUED,
                Status.SENDING,
                now,
                "claimed",
                c.channel,
                c.message_type,
                c.recipient_id,
                template_version=c.template_version,
            )
            for c in claimed
        )
        return claimed

    def finish(self, store: TransitionStore, outcomes: Iterable[Any], worker: str) -> list[Transition]:
        """Record how ``worker``'s attempts ended and announce the transitions that took effect.

        The store's errors (an outage) pass through before anything is announced."""
        transitions = store.finish(outcomes, worker)
        self.record(transitions)
        return transitions

    def move(
        self,
        store: TransitionStore,
        message_id: str,
        target: Status,
        at: datetime,
        cause: str,
        *,
        detail: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> Transition | None:
        """Move one message to ``target`` from whichever state allows it, and announce it;
        None (nothing announced) when its state allows no such move."""
        moved = store.transition(message_id, target, at, cause, detail=detail, error=error)
        if moved is not None:
            self.record([moved])
        return moved

    def release_expired(self, store: TransitionStore, now: datetime) -> list[Transition]:
        """Claims whose lease ran out go back to ``queued``; announced."""
        released = store.release_expired(now)
        self.record(released)
        return released

    def requeue_dead(self, store: TransitionStore, message_ids: Any = None, *, now: datetime) -> list[Transition]:
        """An operator's re-queue of dead letters (``dead`` → ``queued``); announced."""
        moved = store.requeue_dead(message_ids, now=now)
        self.record(moved)
        return moved

    # -- the announcement -------------------------------------------------------------------

    def record(self, transitions: Iterable[Transition]) -> None:
        """Announce transitions that the store has written (the methods above call it)."""
        batch = list(transitions)
        if not batch:
            return
        for listener in self._listeners:
            try:
                listener(batch)
            except Exception:  # an observer must never change a delivery's outcome
                logger.exception("a lifecycle listener failed on %d transition(s)", len(batch))


def _first(record: Any) -> Transition:
    """A stored decision's first state: ``queued`` (allowed) or ``suppressed`` (with its reasons)."""
    return Transition(
        record.id,
        None,
        record.status,
        record.decided_at,
        "decided" if record.allowed else "suppressed: " + ", ".join(record.reasons),
        record.channel,
        record.message_type,
        record.recipient_id,
        {"reasons": list(record.reasons)} if record.reasons else {},
        template_version=record.template_version,
    )


__all__ = [
    "HANDED_OVER",
    "OPEN",
    "TRANSITIONS",
    "IllegalTransition",
    "Lifecycle",
    "RetryPolicy",
    "Status",
    "Transition",
    "TransitionStore",
    "check",
    "sources_of",
]
