"""The ``webhook_deliveries`` table: writing events in batches, claiming due rows, recording answers.

Rows are claimed with one compare-and-set statement (``UPDATE … WHERE lease expired …
RETURNING``; PostgreSQL also skips rows another sender has locked), so two senders —
threads or processes on any machine — never POST the same row at the same time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, delete, func, or_, select, update

from .. import schema
from .engine import chunks

if TYPE_CHECKING:
    from . import Store

_t = schema.webhook_deliveries

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"


@dataclass(frozen=True, slots=True)
class Due:
    """A claimed delivery: what to POST where."""

    id: int
    event_id: str
    endpoint: str
    subject: str | None
    body: str
    occurred_at: datetime
    created_at: datetime
    attempts: int


@dataclass(frozen=True, slots=True)
class Result:
    """The end of one attempt: ``delivered``, ``retry`` (at ``retry_at``) or ``dead``; ``counted``: a real POST."""

    id: int
    status: str
    retry_at: datetime | None = None
    http_status: int | None = None
    error: str | None = None
    counted: bool = True


def insert_rows(store: Store, rows: Sequence[dict[str, Any]]) -> None:
    """Write outbox rows in one transaction; a row already there (same event and endpoint) is kept."""
    if not rows:
        return
    if store.dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(_t).on_conflict_do_nothing(index_elements=[_t.c.event_id, _t.c.endpoint])
    with store.transaction() as conn:
        for chunk in chunks(list(rows), 500):
            conn.execute(statement, chunk)


def claim(
    store: Store, endpoints: Sequence[str], worker: str, now: datetime, lease: timedelta, limit: int
) -> list[Due]:
    """Take up to ``limit`` due rows for ``endpoints`` under a lease until ``now + lease`` (oldest due first).

    A row waits while an earlier event of the same subject (message or recipient) for the same
    endpoint is still pending: a receiver gets ``message.queued`` before ``message.sent``.
    """
    free = or_(_t.c.lease_until.is_(None), _t.c.lease_until < now)
    earlier = _t.alias("earlier")
    waits = (
        select(earlier.c.id)
        .where(
            earlier.c.endpoint == _t.c.endpoint,
            earlier.c.subject == _t.c.subject,
            earlier.c.status == PENDING,
            or_(
                earlier.c.occurred_at < _t.c.occurred_at,
                and_(earlier.c.occurred_at == _t.c.occurred_at, earlier.c.id < _t.c.id),
            ),
        )
        .exists()
    )
    due = (
        select(_t.c.id)
        .where(_t.c.status == PENDING, _t.c.next_attempt_at <= now, free, _t.c.endpoint.in_(list(endpoints)), ~waits)
        .order_by(_t.c.next_attempt_at, _t.c.id)
        .limit(limit)
    )
    if store.dialect == "postgresql":
        # A CTE runs once; as an IN subquery the planner may run it again per row, and each run
        # of ``LIMIT … SKIP LOCKED`` finds other rows (more than ``limit`` would be taken).
        picked = due.with_for_update(skip_locked=True, of=_t).cte("due")
        which = _t.c.id == picked.c.id
    else:
        which = _t.c.id.in_(due.scalar_subquery())
    statement = (
        update(_t)
        .where(which, _t.c.status == PENDING, free)
        .values(lease_until=now + lease, claimed_by=worker)
        .returning(
            _t.c.id,
            _t.c.event_id,
            _t.c.endpoint,
            _t.c.subject,
            _t.c.body,
            _t.c.occurred_at,
            _t.c.created_at,
            _t.c.attempts,
        )
    )
    with store.transaction() as conn:
        rows = conn.execute(statement).all()
    return [Due(*row) for row in rows]


def record(store: Store, results: Sequence[Result], worker: str, now: datetime) -> None:
    """Write the answers of one round: delivered rows in one statement, the others one by one."""
    delivered = [r for r in results if r.status == DELIVERED]
    others = [
        {
            "b_id": r.id,
            "b_status": PENDING if r.status == "retry" else DEAD,
            "b_next": r.retry_at or now,
            "b_http": r.http_status,
            "b_error": (r.error or "")[:255] or None,
            "b_add": 1 if r.counted else 0,
        }
        for r in results
        if r.status != DELIVERED
    ]
    mine = _t.c.claimed_by == worker
    with store.transaction() as conn:
        for status, chunk in _by_status(delivered):
            conn.execute(
                update(_t)
                .where(_t.c.id.in_([r.id for r in chunk]), mine)
                .values(
                    status=DELIVERED,
                    delivered_at=now,
                    attempts=_t.c.attempts + 1,
                    last_status=status,
                    last_error=None,
                    lease_until=None,
                    claimed_by=None,
                )
            )
        if others:
            conn.execute(
                update(_t)
                .where(_t.c.id == bindparam("b_id"), mine)
                .values(
                    status=bindparam("b_status"),
                    next_attempt_at=bindparam("b_next"),
                    last_status=bindparam("b_http"),
                    last_error=bindparam("b_error"),
                    attempts=_t.c.attempts + bindparam("b_add"),
                    lease_until=None,
                    claimed_by=None,
                ),
                others,
            )


def _by_status(results: Sequence[Result]):
    groups: dict[int | None, list[Result]] = {}
    for result in results:
        groups.setdefault(result.http_status, []).append(result)
    for status, group in groups.items():
        for chunk in chunks(group, 900):
            yield status, chunk


def purge_delivered(store: Store, before: datetime) -> int:
    """Forget delivered rows older than ``before``; returns how many."""
    with store.transaction() as conn:
        return conn.execute(delete(_t).where(_t.c.status == DELIVERED, _t.c.delivered_at < before)).rowcount


def counts(store: Store) -> dict[str, int]:
    """Rows per status (``pending``, ``delivered``, ``dead``)."""
    with store.engine.connect() as conn:
        return {status: n for status, n in conn.execute(select(_t.c.status, func.count()).group_by(_t.c.status))}


def next_due(store: Store, endpoints: Sequence[str], now: datetime) -> datetime | None:
    """When the next pending row that no sender holds is due (None: none); a row due now returns ``now``."""
    free = or_(_t.c.lease_until.is_(None), _t.c.lease_until < now)
    with store.engine.connect() as conn:
        when = conn.execute(
            select(func.min(_t.c.next_attempt_at)).where(
                and_(_t.c.status == PENDING, free, _t.c.endpoint.in_(list(endpoints)))
            )
        ).scalar()
    return None if when is None else max(when, now)


def dead(store: Store, limit: int = 20) -> list[dict[str, Any]]:
    """The newest deliveries given up (``dead``): event id, type, endpoint, attempts, last answer."""
    columns = (_t.c.event_id, _t.c.event_type, _t.c.endpoint, _t.c.attempts, _t.c.last_status, _t.c.last_error)
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(*columns, _t.c.next_attempt_at)
            .where(_t.c.status == DEAD)
            .order_by(_t.c.next_attempt_at.desc(), _t.c.id.desc())
            .limit(limit)
        ).mappings()
        return [dict(row) for row in rows]


def retry_dead(store: Store, now: datetime, event_ids: Sequence[str] = ()) -> int:
    """Send dead deliveries again from ``now`` (all, or those of ``event_ids``), with a fresh ``max_age``."""
    where = [_t.c.status == DEAD]
    if event_ids:
        where.append(_t.c.event_id.in_(list(event_ids)))
    with store.transaction() as conn:
        return conn.execute(
            update(_t).where(*where).values(status=PENDING, next_attempt_at=now, created_at=now, attempts=0)
        ).rowcount
