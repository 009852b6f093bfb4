"""Message writes: storing decided messages and moving them through their lifecycle.

Every write of ``status`` is here, and each is a compare-and-set for a
:class:`~dispatch.lifecycle.Transition` that the lifecycle allows: two workers
never hold the same message, a worker whose lease ran out cannot overwrite what
another worker did since, and every change is kept in ``message_transitions``
(with its moment and cause) in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, and_, bindparam, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from .. import schema
from ..errors import StoreError
from ..lifecycle import Status, Transition, check, sources_of
from .engine import COPY_OVER, chunks, copy_rows, encode_content
from .rows import Claimed, MessageRecord, Outcome

_m = schema.messages
_CLAIM_COLUMNS = (
    "id",
    "message_type",
    "category",
    "channel",
    "language",
    "locale",
    "country",
    "recipient_id",
    "address",
    "content",
    "send_after",
    "deadline",
    "attempts",
    "meta",
    "campaign_id",
    "queue",
    "fallback_of",
    "decided_at",
    "template_version",
)
#: Prepared once: building statements per batch costs more than running them.
_CLAIM = (
    update(_m)
    .where(_m.c.id.in_(bindparam("ids", expanding=True)), _m.c.status == str(Status.QUEUED))
    .values(
        status=str(Status.SENDING),
        claimed_at=bindparam("now"),
        claimed_by=bindparam("worker"),
        lease_expires_at=bindparam("until"),
        attempts=_m.c.attempts + 1,
    )
    .returning(*(_m.c[name] for name in _CLAIM_COLUMNS))
)
_RENEW = (
    update(_m)
    .where(_m.c.claimed_by == bindparam("worker"), _m.c.status == str(Status.SENDING))
    .values(lease_expires_at=bindparam("until"))
)


def _finish_statement(source: Status, retry: bool, with_meta: bool, own_claim: bool):
    values: dict[str, Any] = {
        "status": bindparam("target"),
        "error": bindparam("error"),
        "provider_id": func.coalesce(bindparam("provider_id", type_=String), _m.c.provider_id),
        "lease_expires_at": None,
    }
    if retry:
        values.update(
            claimed_at=None,
            claimed_by=None,
            send_after=bindparam("retry_at", type_=schema.UTCDateTime),
            # Not handed over yet: the worker enqueues it (with its delay) and marks it, or the
            # relay finds it when it is due.
            enqueued_at=None,
        )
    else:
        values["finished_at"] = bindparam("now", type_=schema.UTCDateTime)
    if with_meta:
        values["meta"] = bindparam("meta", type_=schema.JSON)
    conditions = [_m.c.id == bindparam("mid"), _m.c.status == str(source), _m.c.attempts == bindparam("attempt")]
    if own_claim:
        conditions.append(_m.c.claimed_by == bindparam("worker"))
    return update(_m).where(*conditions).values(**values)


_FINISH = {
    (retry, meta): _finish_statement(Status.SENDING, retry, meta, True)
    for retry in (False, True)
    for meta in (False, True)
}
#: A known outcome written after the lease ran out and the relay put the message back, but before
#: anyone claimed it again: the outcome still wins (the message must not be sent twice).
_LATE = {meta: _finish_statement(Status.QUEUED, False, meta, False) for meta in (False, True)}
_TRANSITION = schema.message_transitions.insert()
#: PostgreSQL: the plain successes of a group in one round trip — the compare-and-set to ``sent``, an
#: attempt row for each, and the claim and outcome transitions of the messages it moved (in that order).
_SENT_IN_ONE_STATEMENT = text(
    """
    WITH v AS (
        SELECT * FROM unnest(
            CAST(:ids AS varchar[]), CAST(:attempts AS integer[]), CAST(:providers AS varchar[]),
            CAST(:started AS timestamptz[]), CAST(:finished AS timestamptz[]), CAST(:details AS text[]),
            CAST(:causes AS text[])
        ) WITH ORDINALITY AS v(mid, attempt, provider_id, started_at, finished_at, detail, cause, n)
    ),
    moved AS (
        UPDATE messages AS m
        SET status = 'sent', finished_at = v.finished_at, lease_expires_at = NULL, error = NULL,
            provider_id = COALESCE(v.provider_id, m.provider_id)
        FROM v
        WHERE m.id = v.mid AND m.status = 'sending' AND m.claimed_by = :worker AND m.attempts = v.attempt
        RETURNING m.id
    ),
    attempts AS (
        INSERT INTO delivery_attempts
            (message_id, attempt, worker, started_at, finished_at, outcome, provider_id, error, detail)
        SELECT mid, attempt, :worker, started_at, finished_at, 'sent', provider_id, NULL, CAST(detail AS json)
        FROM v ORDER BY n
    ),
    history AS (
        INSERT INTO message_transitions (message_id, source, target, at, cause, detail)
        SELECT v.mid, s.source, s.target,
               CASE WHEN s.step = 1 THEN v.started_at ELSE v.finished_at END,
               CASE WHEN s.step = 1 THEN CAST(:claimed AS text) ELSE v.cause END,
               CASE WHEN s.step = 1 THEN NULL ELSE json_build_object('attempt', v.attempt) END
        FROM v JOIN moved ON moved.id = v.mid
        CROSS JOIN (VALUES (1, 'queued', 'sending'), (2, 'sending', 'sent')) AS s(step, source, target)
        ORDER BY v.n, s.step
    )
    SELECT id FROM moved
    """
)


class DuplicateKey(StoreError):
    """A message with this idempotency key is already stored."""

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} is already used")
        self.key = key


class MessageWrites:
    """Writes of the ``messages`` table (a mixin of :class:`dispatch.store.Store`)."""

    # -- storing decisions ---------------------------------------------------------------

    def find_by_key(self, idempotency_key: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(_m).where(_m.c.idempotency_key == idempotency_key)).mappings().first()
        return dict(row) if row else None

    def existing_keys(self, keys: Sequence[str]) -> dict[str, str]:
        """Which of ``keys`` are already used: key → message id."""
        out: dict[str, str] = {}
        if not keys:
            return out
        with self.engine.connect() as conn:
            for chunk in chunks(list(keys), 900):
                rows = conn.execute(select(_m.c.idempotency_key, _m.c.id).where(_m.c.idempotency_key.in_(chunk)))
                out.update({k: i for k, i in rows})
        return out

    def insert_message(self, record: MessageRecord, variants: Mapping[str, Any] | None = None) -> None:
        """Store one message; raises :class:`DuplicateKey` if its idempotency key is taken."""
        row = self._prepare(record)
        try:
            with self.transaction() as conn:
                saved = self._save_variants(conn, [row], variants)
                conn.execute(_m.insert(), [self._encoded(row)])
            self._known_variants |= saved
        except IntegrityError:
            key = record.idempotency_key
            if key and self.find_by_key(key):
                raise DuplicateKey(key) from None
            raise

    def insert_messages(self, records: list[MessageRecord], variants: Mapping[str, Any] | None = None) -> set[str]:
        """Store a batch in one transaction; returns the ids stored.

        The caller has removed keys already used; if another process took one of them
        meanwhile, the batch is stored without the taken ones, which are left out of the
        returned ids (they must not be enqueued).
        """
        if not records:
            return set()
        rows = [self._prepare(r) for r in records]
        encoded = [self._encoded(r) for r in rows]
        try:
            with self.transaction() as conn:
                saved = self._save_variants(conn, rows, variants)
                self._insert_rows(conn, _m, encoded)
            self._known_variants |= saved
            return {r["id"] for r in rows}
        except IntegrityError:
            statement = (
                self._insert(_m).on_conflict_do_nothing(index_elements=[_m.c.idempotency_key]).returning(_m.c.id)
            )
            inserted: set[str] = set()
            with self.transaction() as conn:
                saved = self._save_variants(conn, rows, variants)
                for row in encoded:
                    inserted.update(conn.execute(statement, row).scalars())
            self._known_variants |= saved
            return inserted

    @staticmethod
    def _prepare(record: MessageRecord) -> dict[str, Any]:
        check(None, record.status)
        row = record.as_row()
        row.setdefault("attempts", 0)
        row.setdefault("possible_duplicate", False)
        return row

    def _encoded(self, row: dict[str, Any]) -> dict[str, Any]:
        return {**row, "content": encode_content(row.get("content"), self.compress)}

    # -- the queue's bookkeeping ---------------------------------------------------------

    def mark_enqueued(self, ids: Sequence[str], at: datetime) -> None:
        with self.transaction() as conn:
            for chunk in chunks(list(ids), 900):
                conn.execute(
                    update(_m).where(_m.c.id.in_(chunk), _m.c.status == str(Status.QUEUED)).values(enqueued_at=at)
                )

    def clear_enqueued(self, ids: Sequence[str]) -> None:
        """Forget that messages were enqueued (the broker refused them): the relay takes them next."""
        with self.transaction() as conn:
            for chunk in chunks(list(ids), 900):
                conn.execute(
                    update(_m).where(_m.c.id.in_(chunk), _m.c.status == str(Status.QUEUED)).values(enqueued_at=None)
                )

    # -- claims and leases ---------------------------------------------------------------

    def claim(self, message_ids: Sequence[str], worker: str, now: datetime, lease: timedelta) -> list[Claimed]:
        """Move the queued ones of ``message_ids`` to ``sending`` for ``worker``, in one statement.

        A compare-and-set: of two workers handed the same message, exactly one gets it.
        The claim holds until ``now + lease`` unless the worker renews it.
        """
        if not message_ids:
            return []
        params = {"ids": list(message_ids), "now": now, "worker": worker, "until": now + lease}
        # The claim's own queued → sending row is written with the outcome (or the release), in
        # the transaction that ends the claim: one statement here, one write per message saved.
        with self.transaction() as conn:
            rows = [dict(r) for r in conn.execute(_CLAIM, params).mappings()]
        out = []
        for row in rows:
            row["content"] = self.content(row["content"]) or {}
            row["meta"] = dict(row["meta"] or {})
            out.append(Claimed(**row))
        return out

    def renew_leases(self, worker: str, now: datetime, lease: timedelta) -> int:
        """Extend every claim ``worker`` holds to ``now + lease`` (the worker's heartbeat)."""
        with self.transaction() as conn:
            return conn.execute(_RENEW, {"worker": worker, "until": now + lease}).rowcount

    def release_expired(self, now: datetime, *, limit: int = 5000) -> list[Transition]:
        """Claims whose lease ran out (their worker died or hung) go back to ``queued``.

        They are marked ``possible_duplicate``: the worker may have sent one just before it died.
        """
        with self.transaction() as conn:
            rows = conn.execute(
                select(
                    _m.c.id,
                    _m.c.channel,
                    _m.c.message_type,
                    _m.c.recipient_id,
                    _m.c.claimed_by,
                    _m.c.claimed_at,
                    _m.c.template_version,
                )
                .where(
                    _m.c.status == str(Status.SENDING),
                    or_(_m.c.lease_expires_at < now, _m.c.lease_expires_at.is_(None)),
                )
                .limit(limit)
            ).all()
            released: list[Transition] = []
            claims: list[dict[str, Any]] = []
            for mid, channel, mtype, rid, who, claimed_at, version in rows:
                count = conn.execute(
                    update(_m)
                    .where(_m.c.id == mid, _m.c.status == str(Status.SENDING), _m.c.claimed_by == who)
                    .values(
                        status=str(Status.QUEUED),
                        claimed_by=None,
                        claimed_at=None,
                        lease_expires_at=None,
                        enqueued_at=None,
                        possible_duplicate=True,
                    )
                ).rowcount
                if count:
                    claims.append(
                        _transition_row(mid, Status.QUEUED, Status.SENDING, claimed_at or now, f"claimed by {who}")
                    )
                    released.append(
                        Transition(
                            mid,
                            Status.SENDING,
                            Status.QUEUED,
                            now,
                            "lease expired",
                            channel,
                            mtype,
                            rid,
                            template_version=version,
                        )
                    )
            if claims:
                conn.execute(_TRANSITION, claims)
            self._write_transitions(conn, released)
        return released

    # -- outcomes ------------------------------------------------------------------------

    def finish(self, outcomes: Iterable[Outcome], worker: str) -> list[Transition]:
        """Record how attempts ended, in one transaction; returns the transitions that took effect.

        Each is a compare-and-set on (message, ``sending``, this worker, this attempt). A
        provider's acceptance that arrives after the relay put the message back in the queue
        (but before anyone claimed it again) still wins: the message is not sent twice.
        Every outcome is kept as a ``delivery_attempts`` row; every change it made, with the
        claim that preceded it, in ``message_transitions``.
        """
        outcomes = list(outcomes)
        for o in outcomes:
            check(Status.SENDING, o.target)
        plain: list[Outcome] = []
        if self.dialect == "postgresql":
            plain = [o for o in outcomes if o.target == Status.SENT and o.meta is None and o.error is None]
        with self.transaction() as conn:
            recorded = self._finish_sent_in_one_statement(conn, plain, worker) if plain else set()
            done = [_finished(o, Status.SENDING) for o in plain if o.message_id in recorded]
            rest = [o for o in outcomes if o.message_id not in recorded]
            started = {o.message_id: o.started_at for o in rest}
            changed: list[Transition] = []
            for o in rest:
                retry = o.target == Status.QUEUED
                params = {
                    "mid": o.message_id,
                    "attempt": o.attempt,
                    "worker": worker,
                    "target": str(o.target),
                    "error": o.error,
                    "provider_id": o.provider_id,
                    "now": o.finished_at,
                    "retry_at": o.retry_at,
                }
                if o.meta is not None:  # a parameter named like a column would be SET even when not asked for
                    params["meta"] = o.meta
                source = Status.SENDING
                count = conn.execute(_FINISH[(retry, o.meta is not None)], params).rowcount
                if not count and o.target in (Status.SENT, Status.DELIVERED):
                    count = conn.execute(_LATE[o.meta is not None], params).rowcount
                    source = Status.QUEUED
                if count:
                    changed.append(_finished(o, source))
            # The claim's queued → sending row goes before the outcome's own.
            claimed_by = f"claimed by {worker}"
            history = [
                _transition_row(t.message_id, Status.QUEUED, Status.SENDING, started[t.message_id], claimed_by)
                for t in changed
                if t.source == Status.SENDING
            ]
            history += [_transition_row(t.message_id, t.source, t.target, t.at, t.cause, t.detail) for t in changed]
            in_statement = {o.message_id for o in plain}  # their attempt rows went with the statement
            attempts = [_attempt_row(o, worker) for o in rest if o.message_id not in in_statement]
            self._insert_rows(conn, schema.delivery_attempts, attempts)
            self._insert_rows(conn, schema.message_transitions, history)
        return done + changed

    def _insert_rows(self, conn, table, rows: list[dict[str, Any]]) -> None:
        """Insert rows: with COPY on PostgreSQL when there are many (far less work per row)."""
        if not rows:
            return
        if self.dialect == "postgresql" and len(rows) >= COPY_OVER:
            copy_rows(conn, table, rows)
        else:
            conn.execute(table.insert(), rows)

    @staticmethod
    def _finish_sent_in_one_statement(conn, plain: list[Outcome], worker: str) -> set[str]:
        """PostgreSQL: "the provider took it" outcomes in one statement, their history rows included.

        Returns the ids it moved to ``sent``; the others (a lease that ran out meanwhile) go row by
        row. Every outcome's attempt row is written here, whether its compare-and-set took or not.
        """
        params = {
            "ids": [o.message_id for o in plain],
            "attempts": [o.attempt for o in plain],
            "providers": [o.provider_id for o in plain],
            "started": [o.started_at for o in plain],
            "finished": [o.finished_at for o in plain],
            "details": [json.dumps(o.detail, default=str) if o.detail else None for o in plain],
            "causes": [o.cause[:500] for o in plain],
            "worker": worker,
            "claimed": f"claimed by {worker}"[:500],
        }
        return {mid for (mid,) in conn.execute(_SENT_IN_ONE_STATEMENT, params)}

    def transition(
        self,
        message_id: str,
        target: Status,
        now: datetime,
        cause: str,
        *,
        detail: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> Transition | None:
        """Move one message to ``target`` from whichever state allows it; None if none does.

        For what happens outside a worker's claim: a provider's later report (sent →
        bounced), a fallback (failed → fallback), an operator's re-queue (dead → queued).
        """
        sources = sources_of(target)
        values: dict[str, Any] = {"status": str(target)}
        if error is not None:
            values["error"] = error
        if target == Status.QUEUED:
            values.update(enqueued_at=None, claimed_by=None, claimed_at=None, lease_expires_at=None)
        with self.transaction() as conn:
            row = conn.execute(
                select(_m.c.status, _m.c.channel, _m.c.message_type, _m.c.recipient_id, _m.c.template_version).where(
                    _m.c.id == message_id
                )
            ).first()
            if row is None or Status(row[0]) not in sources:
                return None
            count = conn.execute(
                update(_m).where(_m.c.id == message_id, _m.c.status == row[0]).values(**values)
            ).rowcount
            if not count:
                return None
            done = Transition(
                message_id,
                Status(row[0]),
                target,
                now,
                cause,
                row[1],
                row[2],
                row[3],
                dict(detail or {}),
                template_version=row[4],
            )
            self._write_transitions(conn, [done])
        return done

    def record_provider_status(self, message_id: str, status: str, code: str | None, now: datetime) -> None:
        """A provider's later report on a message (e.g. Twilio's status callback), kept as an attempt row."""
        t = _m
        with self.transaction() as conn:
            attempts = conn.execute(select(t.c.attempts, t.c.meta).where(t.c.id == message_id)).first()
            if attempts is None:
                return
            meta = {**(attempts[1] or {}), "provider_status": status}
            if code:
                meta["provider_error"] = code
            conn.execute(update(t).where(t.c.id == message_id).values(meta=meta))
            conn.execute(
                schema.delivery_attempts.insert(),
                [
                    {
                        "message_id": message_id,
                        "attempt": attempts[0],
                        "worker": "provider",
                        "started_at": now,
                        "finished_at": now,
                        "outcome": "callback",
                        "provider_id": None,
                        "error": code,
                        "detail": {"status": status, "code": code},
                    }
                ],
            )

    def requeue_dead(self, message_ids: Sequence[str] | None = None, *, now: datetime) -> list[Transition]:
        """Make dead letters queued again (an operator's decision; the relay then enqueues them)."""
        condition = _m.c.status == str(Status.DEAD)
        if message_ids:
            condition = and_(condition, _m.c.id.in_(list(message_ids)))
        with self.engine.connect() as conn:
            ids = [mid for (mid,) in conn.execute(select(_m.c.id).where(condition))]
        out = []
        for mid in ids:
            done = self.transition(mid, Status.QUEUED, now, "re-queued by an operator")
            if done:
                out.append(done)
        return out

    def due_for_relay(
        self, now: datetime, *, stuck_after: timedelta, horizon: timedelta = timedelta(0), limit: int = 5000
    ) -> list[dict[str, Any]]:
        """Queued messages the broker may not have: never handed to it (or refused), or handed
        over longer than ``stuck_after`` ago, and due within ``horizon``."""
        due = or_(_m.c.send_after.is_(None), _m.c.send_after <= now + horizon)
        columns = (_m.c.id, _m.c.channel, _m.c.category, _m.c.queue, _m.c.send_after)
        queued = _m.c.status == str(Status.QUEUED)
        with self.engine.connect() as conn:
            # Two lookups, each on its own index: never handed to the queue, and handed over long ago.
            rows = [
                dict(r)
                for r in conn.execute(
                    select(*columns).where(queued, _m.c.enqueued_at.is_(None), due).order_by(_m.c.id).limit(limit)
                ).mappings()
            ]
            if len(rows) < limit and stuck_after < timedelta(days=3650):
                rows += [
                    dict(r)
                    for r in conn.execute(
                        select(*columns)
                        .where(queued, _m.c.enqueued_at < now - stuck_after, due)
                        .order_by(_m.c.enqueued_at)
                        .limit(limit - len(rows))
                    ).mappings()
                ]
        return rows

    @staticmethod
    def _write_transitions(conn, transitions: list[Transition]) -> None:
        if transitions:
            conn.execute(
                _TRANSITION,
                [_transition_row(t.message_id, t.source, t.target, t.at, t.cause, t.detail) for t in transitions],
            )


def _transition_row(
    message_id: str, source: Status | None, target: Status, at: datetime, cause: str, detail: Any = None
) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "source": str(source) if source else None,
        "target": str(target),
        "at": at,
        "cause": cause[:500],
        "detail": dict(detail) if detail else None,
    }


def _finished(o: Outcome, source: Status) -> Transition:
    detail: dict[str, Any] = {"attempt": o.attempt}
    if o.retry_at:
        detail["retry_at"] = o.retry_at.isoformat()
    return Transition(
        o.message_id,
        source,
        o.target,
        o.finished_at,
        o.cause,
        o.channel,
        o.message_type,
        o.recipient_id,
        detail,
        template_version=o.template_version,
    )


def _attempt_row(o: Outcome, worker: str) -> dict[str, Any]:
    outcome = {
        Status.SENT: "sent",
        Status.DELIVERED: "delivered",
        Status.QUEUED: "transient",
        Status.DEAD: "transient",
    }.get(o.target, "permanent")
    return {
        "message_id": o.message_id,
        "attempt": o.attempt,
        "worker": worker,
        "started_at": o.started_at,
        "finished_at": o.finished_at,
        "outcome": outcome,
        "provider_id": o.provider_id,
        "error": o.error,
        "detail": dict(o.detail) or None,
    }
