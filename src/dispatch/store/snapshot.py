"""What the operator's snapshot (``dispatch status``) reads: open messages per queue, dead letters,
the suppression list's size and the scheduled campaigns, in one connection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select

from .. import schema
from ..campaign_states import CampaignStatus
from ..lifecycle import Status


@dataclass(frozen=True, slots=True)
class OperatorCounts:
    """The store's numbers for the operator's snapshot."""

    #: ``(queue, channel, category, status, due now (1/0), count, first due moment)`` of open messages.
    open_messages: list[tuple[Any, ...]]
    dead_letters: int
    suppressions: int
    scheduled_campaigns: int
    next_release_at: datetime | None


class OperatorReads:
    """The store's part for :mod:`dispatch.status` (mixed into :class:`~dispatch.store.Store`)."""

    def operator_counts(self, now: datetime) -> OperatorCounts:
        """Open messages by queue, channel, category, status and whether due at ``now``; the rest in counts."""
        t, c, s = schema.messages, schema.campaigns, schema.suppressions
        due = func.coalesce(t.c.send_after, t.c.decided_at)
        is_due = case((due <= now, 1), else_=0)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.c.queue, t.c.channel, t.c.category, t.c.status, is_due, func.count(), func.min(due))
                .where(t.c.status.in_([str(Status.QUEUED), str(Status.SENDING)]))
                .group_by(t.c.queue, t.c.channel, t.c.category, t.c.status, is_due)
            ).all()
            dead = conn.execute(select(func.count()).where(t.c.status == str(Status.DEAD))).scalar() or 0
            scheduled, next_release = conn.execute(
                select(func.count(), func.min(c.c.release_at)).where(c.c.status == str(CampaignStatus.SCHEDULED))
            ).one()
            # Addresses on the suppression list now (entries taken off it are history, not counted).
            suppressions = conn.execute(select(func.count()).where(s.c.removed_at.is_(None))).scalar() or 0
        return OperatorCounts([tuple(r) for r in rows], dead, suppressions, scheduled, next_release)
