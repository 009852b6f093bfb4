"""A person's stored history, read for an access request and deleted past retention (GDPR Art 5(1)(e), 15)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select

from .. import schema


class HistoryRows:
    """The store's part for :mod:`dispatch.history` (mixed into :class:`~dispatch.store.Store`)."""

    def has_consents(self, recipient_id: str) -> bool:
        """Whether the consent ledger holds an entry for ``recipient_id``."""
        c = schema.consents
        with self.engine.connect() as conn:
            return conn.execute(select(c.c.id).where(c.c.recipient_id == recipient_id).limit(1)).first() is not None

    def recipient_row(self, recipient_id: str) -> dict[str, Any] | None:
        """The stored facts of one recipient (``recipients``), or None."""
        r = schema.recipients
        with self.engine.connect() as conn:
            row = conn.execute(select(r).where(r.c.id == recipient_id)).mappings().first()
        return dict(row) if row else None

    def retention_candidates(self) -> list[tuple[str, str, Any, Any, Any]]:
        """``(id, status, last_invoice_paid_on, data_verified_on, last_seen_at)`` of every prospect and
        former customer (the retention rule is applied by the caller)."""
        t = schema.recipients
        with self.engine.connect() as conn:
            return [
                tuple(row)
                for row in conn.execute(
                    select(t.c.id, t.c.status, t.c.last_invoice_paid_on, t.c.data_verified_on, t.c.last_seen_at).where(
                        t.c.status.in_(("prospect", "former"))
                    )
                ).all()
            ]

    def purge_history(self, ids: list[str], statutory_until: datetime, *, dry_run: bool = False) -> dict[str, int]:
        """Delete the messages (with attempts and transitions), consent grants and recipient rows of
        ``ids`` in one transaction, except statutory messages decided at or after ``statutory_until``
        (and a recipient row such a message still needs); objections (withdrawals) are kept.
        Returns the counts (``messages``, ``kept_statutory``, ``consents``, ``attempts``);
        ``dry_run`` only counts."""
        m, a, c, r = schema.messages, schema.delivery_attempts, schema.consents, schema.recipients
        t = schema.message_transitions
        removable = and_(
            m.c.recipient_id.in_(ids),
            or_(m.c.category != "statutory", m.c.decided_at < statutory_until),
        )
        counts = {"messages": 0, "kept_statutory": 0, "consents": 0, "attempts": 0}
        with self.transaction() as conn:
            message_ids = [row[0] for row in conn.execute(select(m.c.id).where(removable))]
            counts["messages"] = len(message_ids)
            kept_statutory = select(m.c.id).where(
                m.c.recipient_id.in_(ids), m.c.category == "statutory", m.c.decided_at >= statutory_until
            )
            counts["kept_statutory"] = len(conn.execute(kept_statutory).all())
            grants = and_(c.c.recipient_id.in_(ids), c.c.granted.is_(True))
            counts["consents"] = len(conn.execute(select(c.c.id).where(grants)).all())
            for start in range(0, len(message_ids), 900):
                chunk = message_ids[start : start + 900]
                counts["attempts"] += len(conn.execute(select(a.c.id).where(a.c.message_id.in_(chunk))).all())
                if not dry_run:
                    conn.execute(delete(a).where(a.c.message_id.in_(chunk)))
                    conn.execute(delete(t).where(t.c.message_id.in_(chunk)))
                    conn.execute(delete(m).where(m.c.id.in_(chunk)))
            if not dry_run:
                conn.execute(delete(c).where(grants))
                kept = {row[0] for row in conn.execute(select(m.c.recipient_id).where(m.c.recipient_id.in_(ids)))}
                gone = [rid for rid in ids if rid not in kept]
                for start in range(0, len(gone), 900):
                    conn.execute(delete(r).where(r.c.id.in_(gone[start : start + 900])))
        return counts
