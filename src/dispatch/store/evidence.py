"""The store's side of evidence packs (SPEC §14): the messages of a campaign or a type and period,
read in keyset-paged chunks so that a pack of a million messages needs no more memory than one chunk.

A mixin of :class:`dispatch.store.Store`; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, literal, select, tuple_

from .. import schema
from .engine import chunks

_m = schema.messages
#: The columns a manifest row is built from (never ``address``: the recipient id names the person).
EVIDENCE_COLUMNS = (
    "id",
    "recipient_id",
    "campaign_id",
    "message_type",
    "category",
    "channel",
    "language",
    "locale",
    "country",
    "status",
    "allowed",
    "reasons",
    "notes",
    "legal_basis",
    "rules_version",
    "decided_at",
    "send_after",
    "deadline",
    "finished_at",
    "attempts",
    "fallback_of",
    "template_version",
    "content",
)


class EvidenceReads:
    """Chunks of messages for an evidence pack (needs ``engine``)."""

    def evidence_chunks(
        self,
        *,
        campaign_id: str | None = None,
        message_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        size: int = 1000,
    ) -> Iterator[list[dict[str, Any]]]:
        """Messages of a campaign (in id order), or of a type decided in ``[since, until)`` (in order of
        decision), ``size`` at a time; each page is one index range scan.

        ``content`` is the stored blob (decode it with :meth:`content`).
        """
        columns = [_m.c[name] for name in EVIDENCE_COLUMNS]
        if campaign_id is not None:  # in (campaign_id, id) index order
            conditions = [_m.c.campaign_id == campaign_id]
            if message_type is not None:
                conditions.append(_m.c.message_type == message_type)
            order = (_m.c.id,)
        else:  # in (message_type, decided_at, id) index order
            conditions = [_m.c.message_type == message_type]
            if since is not None:
                conditions.append(_m.c.decided_at >= since)
            if until is not None:
                conditions.append(_m.c.decided_at < until)
            order = (_m.c.decided_at, _m.c.id)
        last: tuple | None = None
        while True:
            after = []
            if last is not None:
                bound = [literal(value, column.type) for column, value in zip(order, last, strict=True)]
                after = [tuple_(*order) > tuple_(*bound)]
            query = select(*columns).where(and_(*conditions, *after)).order_by(*order).limit(size)
            with self.engine.connect() as conn:
                rows = [dict(r) for r in conn.execute(query).mappings()]
            if not rows:
                return
            yield rows
            last = tuple(rows[-1][c.name] for c in order)

    def fallbacks_of(self, message_ids: Sequence[str]) -> dict[str, list[str]]:
        """The messages that re-sent each of ``message_ids`` on another channel (statutory fallback)."""
        out: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(list(message_ids), 900):
                rows = conn.execute(select(_m.c.id, _m.c.fallback_of).where(_m.c.fallback_of.in_(chunk)))
                for mid, original in rows:
                    out.setdefault(original, []).append(mid)
        return out
