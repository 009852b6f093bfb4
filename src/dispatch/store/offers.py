"""The SQL of written offers (SPEC §13): the ``offers`` table and its append-only ``offer_states``.

An offer's ``state`` leaves ``open`` once, by compare-and-set in the same transaction
as the ``offer_states`` row that records it; a state reached twice is refused by the
table's unique (offer, state) constraint, so an acceptance is recorded exactly once
however many browsers, workers or retries race for it. Rows of ``offer_states`` are
never updated or deleted here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from .. import schema


class OfferBook:
    """Reads and writes offers over a :class:`~dispatch.store.Store` (its engine and write lock)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def insert(self, offer: Mapping[str, Any], state: Mapping[str, Any]) -> None:
        """A new offer and its first state row, in one transaction."""
        with self.store.transaction() as conn:
            conn.execute(schema.offers.insert().values(**offer))
            conn.execute(schema.offer_states.insert().values(offer_id=offer["id"], **state))

    def sent(self, offer_id: str, message_id: str, channel: str | None, language: str | None) -> None:
        """Record the message that carried the offer (once: a message id already set stays)."""
        t = schema.offers
        with self.store.transaction() as conn:
            conn.execute(
                update(t)
                .where(t.c.id == offer_id, t.c.message_id.is_(None))
                .values(message_id=message_id, channel=channel, language=language)
            )

    def get(self, offer_id: str) -> dict[str, Any] | None:
        t = schema.offers
        with self.store.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.id == offer_id)).mappings().first()
        return dict(row) if row else None

    def by_message(self, message_id: str) -> dict[str, Any] | None:
        t = schema.offers
        with self.store.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.message_id == message_id)).mappings().first()
        return dict(row) if row else None

    def states(self, offer_id: str) -> list[dict[str, Any]]:
        """The offer's state rows, oldest first."""
        s = schema.offer_states
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(s).where(s.c.offer_id == offer_id).order_by(s.c.id)).mappings().all()
        return [dict(r) for r in rows]

    def move(self, offer_id: str, source: str, target: str, row: Mapping[str, Any]) -> bool:
        """Compare-and-set the offer from ``source`` to ``target`` and append its state row.

        Returns False (and writes nothing) when the offer was not in ``source`` any more.
        """
        t = schema.offers
        try:
            with self.store.transaction() as conn:
                moved = conn.execute(
                    update(t).where(t.c.id == offer_id, t.c.state == source).values(state=target)
                ).rowcount
                if not moved:
                    return False
                conn.execute(schema.offer_states.insert().values(offer_id=offer_id, state=target, **row))
        except IntegrityError:  # the state was reached by someone else in between: rolled back
            return False
        return True

    def set_copy(self, offer_id: str, message_id: str) -> None:
        """Record the durable copy of an offer sent by SMS (once)."""
        t = schema.offers
        with self.store.transaction() as conn:
            conn.execute(
                update(t).where(t.c.id == offer_id, t.c.copy_message_id.is_(None)).values(copy_message_id=message_id)
            )

    def chain(self, message_id: str) -> list[dict[str, Any]]:
        """The message and the statutory fallbacks sent in its place (email → letter), in order."""
        t = schema.messages
        out: list[dict[str, Any]] = []
        frontier = [message_id]
        with self.store.engine.connect() as conn:
            first = conn.execute(select(t.c.id, t.c.channel, t.c.status).where(t.c.id == message_id)).mappings().all()
            out.extend(dict(r) for r in first)
            while frontier and len(out) < 20:
                rows = conn.execute(
                    select(t.c.id, t.c.channel, t.c.status)
                    .where(t.c.fallback_of.in_(frontier))
                    .order_by(t.c.decided_at)
                ).mappings()
                found = [dict(r) for r in rows]
                out.extend(found)
                frontier = [r["id"] for r in found]
        return out

    def set_contract(self, offer_id: str, message_id: str) -> None:
        """Record the contract confirmation sent for an accepted offer (once)."""
        t = schema.offers
        with self.store.transaction() as conn:
            conn.execute(
                update(t)
                .where(t.c.id == offer_id, t.c.contract_message_id.is_(None))
                .values(contract_message_id=message_id)
            )

    def due(self, now: datetime, limit: int = 500) -> list[str]:
        """Open offers whose moment to lapse has come by ``now``."""
        t = schema.offers
        with self.store.engine.connect() as conn:
            query = (
                select(t.c.id).where(t.c.state == "open", t.c.valid_until <= now).order_by(t.c.valid_until).limit(limit)
            )
            return [i for (i,) in conn.execute(query)]

    def unconfirmed(self, limit: int = 100) -> list[str]:
        """Accepted offers whose contract confirmation is not recorded (a crash in between)."""
        t = schema.offers
        with self.store.engine.connect() as conn:
            query = select(t.c.id).where(t.c.state == "accepted", t.c.contract_message_id.is_(None)).limit(limit)
            return [i for (i,) in conn.execute(query)]

    def listing(
        self, *, state: str | None = None, recipient_id: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """The newest offers, optionally of one state or one recipient."""
        t = schema.offers
        query = select(t).order_by(t.c.created_at.desc(), t.c.id.desc()).limit(limit)
        if state is not None:
            query = query.where(t.c.state == state)
        if recipient_id is not None:
            query = query.where(t.c.recipient_id == recipient_id)
        with self.store.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def counts(self) -> dict[str, int]:
        """How many offers are in each state."""
        t = schema.offers
        with self.store.engine.connect() as conn:
            return dict(conn.execute(select(t.c.state, func.count()).group_by(t.c.state)).all())


__all__ = ["OfferBook"]
