"""The store's read side: a person's messages and their history, reports, dead letters.

A mixin of :class:`dispatch.store.Store`; nothing here writes ``status``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Text, and_, cast, func, select

from .. import schema
from ..lifecycle import OPEN, Status
from ..policy.facts import Contact
from .engine import chunks


class MessageReads:
    """Queries over messages and attempts (needs ``engine``, ``transaction()`` and ``content()``)."""

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        """Messages that failed for good or ran out of retries, newest first."""
        t = schema.messages
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(t.c.id, t.c.recipient_id, t.c.message_type, t.c.channel, t.c.status, t.c.attempts, t.c.error)
                    .where(t.c.status.in_((str(Status.DEAD), str(Status.FAILED))))
                    .order_by(t.c.finished_at.desc())
                    .limit(limit)
                )
                .mappings()
                .all()
            )
        return [dict(r) for r in rows]

    def message_by_provider_id(self, provider_id: str) -> dict[str, Any] | None:
        t = schema.messages
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.provider_id == provider_id)).mappings().first()
        if not row:
            return None
        out = dict(row)
        out["content"] = None
        return out

    def open_message_ids(self, message_ids: Sequence[str]) -> set[str]:
        """Those of ``message_ids`` that are ``sending`` or ``queued`` (not yet recorded as sent or ended)."""
        t = schema.messages
        out: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(message_ids)), 900):
                rows = conn.execute(
                    select(t.c.id).where(t.c.id.in_(chunk), t.c.status.in_([str(Status.SENDING), str(Status.QUEUED)]))
                )
                out.update(rows.scalars())
        return out

    def recipients_by_address(self, channel: str, address: str) -> list[str]:
        """Recipients we have sent to at ``address`` on ``channel`` (e.g. who owns a phone number)."""
        t = schema.messages
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.c.recipient_id)
                .distinct()
                .where(t.c.channel == channel, cast(t.c.address, Text) == json.dumps(address))
            )
            return [r for (r,) in rows]

    # -- reading -----------------------------------------------------------------------

    def message(self, message_id: str, *, content: bool = True) -> dict[str, Any] | None:
        t = schema.messages
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.id == message_id)).mappings().first()
        if not row:
            return None
        out = dict(row)
        out["content"] = self.content(out["content"]) if content else None
        return out

    def messages_for(self, recipient_id: str) -> list[dict[str, Any]]:
        t = schema.messages
        with self.engine.connect() as conn:
            rows = (
                conn.execute(select(t).where(t.c.recipient_id == recipient_id).order_by(t.c.decided_at, t.c.id))
                .mappings()
                .all()
            )
        out = []
        for row in rows:
            item = dict(row)
            item["content"] = self.content(item["content"])
            out.append(item)
        return out

    def attempts_for(self, message_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        t = schema.delivery_attempts
        out: dict[str, list[dict[str, Any]]] = {m: [] for m in message_ids}
        with self.engine.connect() as conn:
            for chunk in chunks(list(message_ids), 900):
                rows = conn.execute(select(t).where(t.c.message_id.in_(chunk)).order_by(t.c.id)).mappings().all()
                for row in rows:
                    out[row["message_id"]].append(dict(row))
        return out

    def transitions_for(self, message_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Each message's state changes, oldest first: source, target, moment, cause."""
        t = schema.message_transitions
        out: dict[str, list[dict[str, Any]]] = {m: [] for m in message_ids}
        with self.engine.connect() as conn:
            for chunk in chunks(list(message_ids), 900):
                for row in conn.execute(select(t).where(t.c.message_id.in_(chunk)).order_by(t.c.id)).mappings():
                    out[row["message_id"]].append(dict(row))
        return out

    def history(self, recipient_ids: Iterable[str], since: datetime) -> dict[str, tuple[Contact, ...]]:
        """Marketing messages that went (or are going) out since ``since``, per recipient."""
        ids = list(dict.fromkeys(recipient_ids))
        t = schema.messages
        out: dict[str, list[Contact]] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(ids, 900):
                rows = conn.execute(
                    select(t.c.recipient_id, t.c.decided_at, t.c.send_after, t.c.message_type, t.c.channel).where(
                        t.c.recipient_id.in_(chunk),
                        t.c.category == "marketing",
                        t.c.allowed.is_(True),
                        t.c.status.notin_((str(Status.FAILED), str(Status.DEAD), str(Status.FALLBACK))),
                        t.c.decided_at >= since,
                    )
                )
                for rid, decided_at, send_after, mtype, channel in rows:
                    at = max(decided_at, send_after) if send_after else decided_at
                    out.setdefault(rid, []).append(Contact(at, mtype, channel or "", "marketing"))
        return {rid: tuple(contacts) for rid, contacts in out.items()}

    def status_counts(self, *, campaign_id: str | None = None) -> dict[str, int]:
        t = schema.messages
        query = select(t.c.status, func.count()).group_by(t.c.status)
        if campaign_id:
            query = query.where(t.c.campaign_id == campaign_id)
        with self.engine.connect() as conn:
            return {status: count for status, count in conn.execute(query)}

    def pending_counts(self, now: datetime) -> tuple[int, int]:
        """(messages due and not yet delivered, messages held until a later send_after)."""
        t = schema.messages
        held = and_(t.c.status == str(Status.QUEUED), t.c.send_after.is_not(None), t.c.send_after > now)
        with self.engine.connect() as conn:
            open_total = conn.execute(select(func.count()).where(t.c.status.in_([str(s) for s in OPEN]))).scalar() or 0
            scheduled = conn.execute(select(func.count()).where(held)).scalar() or 0
        return open_total - scheduled, scheduled

    def next_retry_at(self, now: datetime) -> datetime | None:
        """When the next message waiting after a transient failure is due (None if there is none)."""
        t = schema.messages
        with self.engine.connect() as conn:
            value = conn.execute(
                select(func.min(t.c.send_after)).where(
                    t.c.status == str(Status.QUEUED), t.c.attempts > 0, t.c.send_after > now
                )
            ).scalar()
        return _aware(value)

    def queue_depth(self, now: datetime) -> tuple[dict[str, int], datetime | None]:
        """Open messages per channel, and the moment the oldest one due now became due."""
        t = schema.messages
        open_states = [str(s) for s in OPEN]
        with self.engine.connect() as conn:
            counts = {
                channel or "-": n
                for channel, n in conn.execute(
                    select(t.c.channel, func.count()).where(t.c.status.in_(open_states)).group_by(t.c.channel)
                )
            }
            due = func.coalesce(t.c.send_after, t.c.decided_at)
            oldest = conn.execute(select(func.min(due)).where(t.c.status.in_(open_states), due <= now)).scalar()
        return counts, _aware(oldest)

    def summary(
        self,
        *,
        since: datetime | None = None,
        campaign_id: str | None = None,
        campaign_prefix: str | None = None,
    ) -> list[dict[str, Any]]:
        """Counts per (status, channel, language, reasons), for reports."""
        t = schema.messages
        conditions = []
        if since is not None:
            conditions.append(t.c.decided_at >= since)
        if campaign_id is not None:
            conditions.append(t.c.campaign_id == campaign_id)
        if campaign_prefix is not None:
            conditions.append(t.c.campaign_id.startswith(campaign_prefix, autoescape=True))
        query = select(t.c.status, t.c.channel, t.c.language, t.c.reasons, func.count()).group_by(
            t.c.status, t.c.channel, t.c.language, t.c.reasons
        )
        if conditions:
            query = query.where(and_(*conditions))
        with self.engine.connect() as conn:
            return [
                {"status": s, "channel": c, "language": lang, "reasons": r, "count": n}
                for s, c, lang, r, n in conn.execute(query)
            ]


def _aware(value: Any) -> datetime | None:
    """An aggregate of a timestamp column as an aware datetime (SQLite returns text, naive)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
