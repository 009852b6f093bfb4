"""Scheduled campaigns in the store: the campaign's stored status (a compare-and-set for each
change :mod:`dispatch.campaign_states` allows) and the recipients kept until the release."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update

from .. import schema
from ..campaign_states import CampaignStatus, campaign_sources, check_campaign

_c = schema.campaigns
_r = schema.scheduled_recipients


def _from(target: CampaignStatus) -> Any:
    """The compare half of a compare-and-set: the campaign is in a state that may move to ``target``."""
    return _c.c.status.in_([str(s) for s in sorted(campaign_sources(target))])


class ScheduledCampaigns:
    """The store's part for :mod:`dispatch.scheduled` (mixed into :class:`~dispatch.store.Store`)."""

    def move_release(self, campaign_id: str, release_at: datetime, now: datetime) -> None:
        """Set (or move, when scheduled again before the release) a campaign's release moment."""
        with self.transaction() as conn:
            conn.execute(update(_c).where(_c.c.id == campaign_id).values(release_at=release_at, updated_at=now))

    def keep_scheduled_recipients(self, rows: list[dict[str, Any]]) -> int:
        """Insert recipient rows (``campaign_id``, ``line``, ``recipient``), skipping lines stored by
        an earlier run; returns how many are new."""
        if not rows:
            return 0
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stored = select(func.count()).where(_r.c.campaign_id == rows[0]["campaign_id"])
        with self.transaction() as conn:  # counted, since an executemany's rowcount is not known everywhere
            before = conn.execute(stored).scalar() or 0
            conn.execute(insert(_r).on_conflict_do_nothing(), rows)
            return (conn.execute(stored).scalar() or 0) - before

    def _due(self, now: datetime, stale_after: timedelta) -> Any:
        return or_(
            and_(_c.c.status == str(CampaignStatus.SCHEDULED), _c.c.release_at <= now),
            and_(_c.c.status == str(CampaignStatus.RELEASING), _c.c.updated_at < now - stale_after),
        )

    def due_campaigns(self, now: datetime, stale_after: timedelta) -> list[str]:
        """Scheduled campaigns whose moment has come, and releases whose claim went stale, by moment."""
        with self.engine.connect() as conn:
            query = select(_c.c.id).where(self._due(now, stale_after)).order_by(_c.c.release_at)
            return [i for (i,) in conn.execute(query)]

    def claim_release(self, campaign_id: str, now: datetime, stale_after: timedelta, touched: datetime) -> bool:
        """Compare-and-set: take a due campaign's release (``scheduled``/stale ``releasing`` → ``releasing``)."""
        check_campaign(CampaignStatus.SCHEDULED, CampaignStatus.RELEASING)
        with self.transaction() as conn:
            return bool(
                conn.execute(
                    update(_c)
                    .where(_c.c.id == campaign_id, self._due(now, stale_after))
                    .values(
                        status=str(CampaignStatus.RELEASING),
                        updated_at=touched,
                        released_at=func.coalesce(_c.c.released_at, now),
                    )
                ).rowcount
            )

    def fail_release(self, campaign_id: str, stats: dict[str, Any], touched: datetime) -> None:
        """A release that cannot run: its kept recipients go, the campaign is ``failed`` with ``stats``."""
        with self.transaction() as conn:
            conn.execute(delete(_r).where(_r.c.campaign_id == campaign_id))
            conn.execute(
                update(_c)
                .where(_c.c.id == campaign_id, _from(CampaignStatus.FAILED))
                .values(status=str(CampaignStatus.FAILED), stats=stats, updated_at=touched)
            )

    def scheduled_batch(self, campaign_id: str, after_line: int, limit: int) -> list[tuple[int, Any]]:
        """The next ``limit`` kept ``(line, recipient)`` pairs of a campaign after ``after_line``."""
        with self.engine.connect() as conn:
            return [
                (line, recipient)
                for line, recipient in conn.execute(
                    select(_r.c.line, _r.c.recipient)
                    .where(_r.c.campaign_id == campaign_id, _r.c.line > after_line)
                    .order_by(_r.c.line)
                    .limit(limit)
                )
            ]

    def release_progress(self, campaign_id: str, through_line: int, touched: datetime) -> None:
        """Recorded up to ``through_line``: those kept recipients go, the release's claim is renewed."""
        with self.transaction() as conn:
            conn.execute(delete(_r).where(_r.c.campaign_id == campaign_id, _r.c.line <= through_line))
            conn.execute(update(_c).where(_c.c.id == campaign_id).values(updated_at=touched))

    def finish_release(self, campaign_id: str, stats: dict[str, Any], touched: datetime) -> None:
        """Compare-and-set ``releasing`` → ``released``, with the release's ``stats``."""
        check_campaign(CampaignStatus.RELEASING, CampaignStatus.RELEASED)
        with self.transaction() as conn:
            conn.execute(
                update(_c)
                .where(_c.c.id == campaign_id, _c.c.status == str(CampaignStatus.RELEASING))
                .values(status=str(CampaignStatus.RELEASED), stats=stats, updated_at=touched)
            )

    def cancel_scheduled(self, campaign_id: str, now: datetime) -> int | None:
        """Compare-and-set ``scheduled`` → ``cancelled`` and delete its kept recipients; returns how many
        were deleted, or None when the campaign was not scheduled (unknown, or released already)."""
        with self.transaction() as conn:
            cancelled = conn.execute(
                update(_c)
                .where(_c.c.id == campaign_id, _from(CampaignStatus.CANCELLED))
                .values(status=str(CampaignStatus.CANCELLED), updated_at=now)
            ).rowcount
            if not cancelled:
                return None
            return conn.execute(delete(_r).where(_r.c.campaign_id == campaign_id)).rowcount or 0

    def newest_campaigns(self, limit: int) -> list[dict[str, Any]]:
        """The newest campaigns (scheduled ones by their moment), as rows."""
        with self.engine.connect() as conn:
            return [
                dict(row)
                for row in conn.execute(
                    select(_c).order_by(func.coalesce(_c.c.release_at, _c.c.created_at).desc()).limit(limit)
                ).mappings()
            ]

    def waiting_recipients(self, campaign_ids: Iterable[str]) -> dict[str, int]:
        """Kept recipients still waiting for their release, per campaign."""
        with self.engine.connect() as conn:
            return dict(
                conn.execute(
                    select(_r.c.campaign_id, func.count())
                    .where(_r.c.campaign_id.in_(list(campaign_ids)))
                    .group_by(_r.c.campaign_id)
                ).all()
            )
