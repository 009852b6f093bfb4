"""The consent ledger's rows (SPEC §3): appended, never changed; read per recipient."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from .. import schema

_t = schema.consents


class ConsentRows:
    """The store's part for :class:`dispatch.ledger.ConsentLedger` (mixed into :class:`~dispatch.store.Store`)."""

    def add_consent(self, row: dict[str, Any]) -> None:
        """Append one ledger entry."""
        with self.transaction() as conn:
            conn.execute(_t.insert(), [row])

    def consent_history(self, recipient_id: str) -> list[dict[str, Any]]:
        """Every entry for a recipient, oldest first."""
        with self.engine.connect() as conn:
            rows = (
                conn.execute(select(_t).where(_t.c.recipient_id == recipient_id).order_by(_t.c.at, _t.c.id))
                .mappings()
                .all()
            )
        return [dict(r) for r in rows]

    def consent_entries(self, recipient_ids: Iterable[str]) -> list[tuple[Any, ...]]:
        """``(recipient_id, purpose, channel, granted, at, source, wording_version)`` of every entry
        of these recipients, oldest first per recipient."""
        ids = list(dict.fromkeys(recipient_ids))
        out: list[tuple[Any, ...]] = []
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 900):
                chunk = ids[start : start + 900]
                out.extend(
                    tuple(row)
                    for row in conn.execute(
                        select(
                            _t.c.recipient_id,
                            _t.c.purpose,
                            _t.c.channel,
                            _t.c.granted,
                            _t.c.at,
                            _t.c.source,
                            _t.c.wording_version,
                        )
                        .where(_t.c.recipient_id.in_(chunk))
                        .order_by(_t.c.at, _t.c.id)
                    )
                )
        return out
