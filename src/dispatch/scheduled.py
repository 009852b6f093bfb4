"""Scheduled campaigns: stored now, decided and queued when their moment comes (SPEC §9 ``--at``).

:func:`schedule_campaign` checks the message type, the data, the templates and every
recipient at once, and stores the campaign (status ``scheduled``, ``release_at``) and
its valid recipients (``scheduled_recipients``, as checked mappings) — nothing is
decided yet. When the moment comes, :func:`release_due` (run every few seconds by
the relaying worker process and by the embedded default's worker) claims the
campaign with a compare-and-set and runs the ordinary campaign pipeline over the
stored recipients *at that moment*: a consent withdrawn or a register loaded in
between wins, and each message still gets its own windows (calling hours, no SMS
marketing at night) from the moment of release. Recipients are deleted as their
batches are recorded; a release cut short by a crash is taken over by the next
round once its claim is stale, and idempotency keys skip what was recorded.

A moment without a UTC offset is read in ``[company] time_zone`` (Europe/Helsinki
by default); a local time that does not exist there (the hour the clocks skip) is
refused. :func:`cancel_campaign` cancels a campaign before its release and deletes
its stored recipients.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, delete, func, or_, select, update

from . import schema
from .campaign import CampaignSummary, ProgressCallback, batches, begin, numbered, preflight, record_batch
from .clock import now_utc
from .errors import DispatchError, InputError
from .intake import Intake, intake_of
from .lifecycle import Status
from .models import Recipient

logger = logging.getLogger("dispatch.scheduled")

#: A release whose claim was not renewed for this long is taken over by another process.
STALE_CLAIM = timedelta(minutes=5)
#: Recipients recorded per batch when a campaign is released.
RELEASE_BATCH = 500
#: What ``campaign list`` shows for each state.
STATES = ("scheduled", "running", "done", "cancelled", "failed")


def parse_at(text: str, time_zone: str) -> datetime:
    """An ISO 8601 moment; without an offset, read in ``time_zone``. Raises :class:`InputError`."""
    raw = text.strip()
    try:
        moment = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    except ValueError:
        raise InputError(
            f"--at {text!r} is not a moment such as 2027-01-04T09:00 ({time_zone}) or 2027-01-04T09:00+02:00"
        ) from None
    if moment.tzinfo is None:
        zone = ZoneInfo(time_zone)
        local = moment.replace(tzinfo=zone)
        try:
            if local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != moment:
                raise InputError(f"--at {text!r} does not exist in {time_zone} (the clocks skip that hour)")
        except OverflowError:
            raise InputError(f"--at {text!r} is out of range") from None
        moment = local
    try:
        moment.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59-23:59 is valid ISO 8601 but past the last representable moment
        raise InputError(f"--at {text!r} is out of range") from None
    return moment


def schedule_campaign(
    d: Intake,
    message_type: str,
    recipients: Iterable[Any],
    data: Mapping[str, Any] | None,
    *,
    at: datetime,
    campaign_id: str | None = None,
    now: datetime | None = None,
    batch_size: int = 500,
    progress: ProgressCallback | None = None,
    source: str | None = None,
    max_errors: int | None = None,
) -> CampaignSummary:
    """Store a campaign and its recipients for release at ``at``; nothing is decided or sent now.

    Invalid recipients are reported now (and not stored). Scheduling again with the same
    ``campaign_id`` before the release resumes an interrupted run (and may move ``at``).
    """
    d = intake_of(d)
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise InputError("at must be a timezone-aware datetime")
    moment = now or now_utc()
    horizon = timedelta(days=d.config.campaigns.schedule_horizon_days)
    try:
        at.astimezone(UTC)
        too_late = at - moment > horizon
    except OverflowError:
        raise InputError("the release moment is out of range") from None
    if at <= moment:
        raise InputError(f"the release moment {at.isoformat()} has passed; leave it out to send at once")
    if too_late:
        raise InputError(
            f"the release moment {at.isoformat()} is more than {horizon.days} days ahead "
            "([campaigns] schedule_horizon_days): the recipients' data would be kept until then"
        )
    store = d.store
    if campaign_id is not None:
        existing = store.campaign(campaign_id) if isinstance(campaign_id, str) else None
        if existing is not None and existing.get("status") != "scheduled":
            raise InputError(f"campaign {campaign_id} exists already ({_state(d, existing)}); choose another id")
    mtype, _values, campaign_id, moment = begin(
        d, message_type, data, campaign_id, moment, source, {"status": "scheduled", "release_at": at}
    )
    t = schema.campaigns
    with store.transaction() as conn:  # scheduling the same id again may move the moment
        conn.execute(update(t).where(t.c.id == campaign_id).values(release_at=at, updated_at=moment))
    started = time.perf_counter()
    summary = CampaignSummary(campaign_id, mtype.name, release_at=at)
    for batch in batches(numbered(recipients), batch_size):
        rows = []
        for line, raw in batch:
            summary.total += 1
            try:
                if isinstance(raw, Mapping) and "__error__" in raw:
                    raise InputError(str(raw["__error__"]))
                person = raw if isinstance(raw, Recipient) else d.parse_recipient(raw)
            except DispatchError as exc:
                summary.invalid += 1
                summary.errors.append(f"line {line}: {exc}")
                continue
            rows.append({"campaign_id": campaign_id, "line": line, "recipient": person.as_dict()})
        summary.scheduled += _store_rows(store, rows)
        if progress is not None:
            progress(len(batch))
        if max_errors is not None and summary.invalid > max_errors:  # nothing of it may go out at its moment
            cancel_campaign(d, campaign_id, moment)
            raise InputError(
                f"campaign stopped: {summary.invalid} invalid recipients; nothing was scheduled", summary.errors[:20]
            )
    summary.seconds = time.perf_counter() - started
    store.set_campaign_stats(campaign_id, {"scheduling": summary.as_dict()}, moment)
    if d.embedded:  # released by this process's worker if it is still open then
        install_releaser(d)
        d.runtime.start_embedded()
    return summary


def _store_rows(store: Any, rows: list[dict[str, Any]]) -> int:
    """Insert recipient rows, skipping lines stored by an earlier run; returns how many are new."""
    if not rows:
        return 0
    if store.dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    r = schema.scheduled_recipients
    stored = select(func.count()).where(r.c.campaign_id == rows[0]["campaign_id"])
    with store.transaction() as conn:  # counted, since an executemany's rowcount is not known everywhere
        before = conn.execute(stored).scalar() or 0
        conn.execute(insert(r).on_conflict_do_nothing(), rows)
        return (conn.execute(stored).scalar() or 0) - before


def install_releaser(d: Intake) -> None:
    """Have ``d``'s runtime release due campaigns while its worker runs (embedded or relaying)."""
    d = intake_of(d)
    if d.runtime.releaser is None:
        d.runtime.releaser = lambda: _release_quietly(d)


def _release_quietly(d: Intake) -> None:
    if not d.closed:
        release_due(d)


def release_due(d: Intake, now: datetime | None = None) -> list[CampaignSummary]:
    """Release every scheduled campaign whose moment has come by ``now`` (and take over stale releases)."""
    d = intake_of(d)
    now = now or now_utc()
    store = d.runtime.existing_store()
    if store is None:
        return []
    t = schema.campaigns
    due = or_(
        and_(t.c.status == "scheduled", t.c.release_at <= now),
        and_(t.c.status == "releasing", t.c.updated_at < now - STALE_CLAIM),
    )
    with store.engine.connect() as conn:
        ids = [i for (i,) in conn.execute(select(t.c.id).where(due).order_by(t.c.release_at))]
    released = []
    for campaign_id in ids:
        with store.transaction() as conn:
            claimed = conn.execute(
                update(t)
                .where(t.c.id == campaign_id, due)
                .values(status="releasing", updated_at=_touch(now), released_at=func.coalesce(t.c.released_at, now))
            ).rowcount
        if claimed:
            summary = _release(d, campaign_id, now)
            if summary is not None:
                released.append(summary)
    return released


def _touch(now: datetime) -> datetime:
    """The claim's renewal moment: the clock given, or the real one if later (a test's clock may be ahead)."""
    return max(now, now_utc())


def _release(d: Intake, campaign_id: str, now: datetime) -> CampaignSummary | None:
    store = d.store
    row = store.campaign(campaign_id)
    assert row is not None
    t, r = schema.campaigns, schema.scheduled_recipients
    try:
        mtype = d.types.get(row["message_type"])
        values = d.validate_data(mtype.name, row["data"])
        preflight(d, mtype.name, values)
    except DispatchError as exc:
        logger.error("scheduled campaign %s cannot be released: %s", campaign_id, exc)
        with store.transaction() as conn:
            conn.execute(delete(r).where(r.c.campaign_id == campaign_id))
            conn.execute(
                update(t)
                .where(t.c.id == campaign_id)
                .values(status="failed", stats={**(row["stats"] or {}), "error": str(exc)}, updated_at=_touch(now))
            )
        return None
    started = time.perf_counter()
    summary = CampaignSummary(campaign_id, mtype.name, release_at=row["release_at"])
    last = -1
    while True:
        with store.engine.connect() as conn:
            batch = [
                (line, recipient)
                for line, recipient in conn.execute(
                    select(r.c.line, r.c.recipient)
                    .where(r.c.campaign_id == campaign_id, r.c.line > last)
                    .order_by(r.c.line)
                    .limit(RELEASE_BATCH)
                )
            ]
        if not batch:
            break
        record_batch(d, mtype, values, batch, campaign_id, now, summary)
        last = batch[-1][0]
        with store.transaction() as conn:  # recorded: the stored inputs go, the claim is renewed
            conn.execute(delete(r).where(r.c.campaign_id == campaign_id, r.c.line <= last))
            conn.execute(update(t).where(t.c.id == campaign_id).values(updated_at=_touch(now)))
    summary.seconds = time.perf_counter() - started
    stats = {**(row["stats"] or {}), **summary.as_dict()}
    with store.transaction() as conn:
        conn.execute(
            update(t)
            .where(t.c.id == campaign_id, t.c.status == "releasing")
            .values(status="released", stats=stats, updated_at=_touch(now))
        )
    logger.warning(
        "scheduled campaign %s released: %d queued, %d suppressed",
        campaign_id,
        summary.queued,
        summary.suppressed,
        extra={"campaign_id": campaign_id},
    )
    return summary


def cancel_campaign(d: Intake, campaign_id: str, now: datetime | None = None) -> int:
    """Cancel a campaign that is still scheduled; its stored recipients are deleted (returns how many).

    Raises :class:`InputError` for an unknown campaign or one already released.
    """
    d = intake_of(d)
    store = d.store
    t, r = schema.campaigns, schema.scheduled_recipients
    with store.transaction() as conn:
        cancelled = conn.execute(
            update(t)
            .where(t.c.id == campaign_id, t.c.status == "scheduled")
            .values(status="cancelled", updated_at=now or now_utc())
        ).rowcount
        removed = conn.execute(delete(r).where(r.c.campaign_id == campaign_id)).rowcount if cancelled else 0
    if not cancelled:
        row = store.campaign(campaign_id)
        if row is None:
            raise InputError(f"no campaign {campaign_id!r}")
        raise InputError(f"campaign {campaign_id} is {_state(d, row)}; only a scheduled campaign can be cancelled")
    return removed or 0


def list_campaigns(d: Intake, *, limit: int = 50, state: str | None = None) -> list[dict[str, Any]]:
    """The newest campaigns (scheduled ones by their moment) with their state (:data:`STATES`) and counts."""
    d = intake_of(d)
    if state is not None and state not in STATES:
        raise InputError(f"unknown campaign state {state!r} (one of {', '.join(STATES)})")
    store = d.store
    t, r = schema.campaigns, schema.scheduled_recipients
    with store.engine.connect() as conn:
        rows = [
            dict(row)
            for row in conn.execute(
                select(t).order_by(func.coalesce(t.c.release_at, t.c.created_at).desc()).limit(limit)
            ).mappings()
        ]
        waiting = dict(
            conn.execute(
                select(r.c.campaign_id, func.count())
                .where(r.c.campaign_id.in_([row["id"] for row in rows]))
                .group_by(r.c.campaign_id)
            ).all()
        )
    out = []
    for row in rows:
        counts = store.status_counts(campaign_id=row["id"])
        item = {
            "id": row["id"],
            "message_type": row["message_type"],
            "state": _state(d, row, counts),
            "release_at": row["release_at"],
            "created_at": row["created_at"],
            "waiting": waiting.get(row["id"], 0),
            "messages": counts,
        }
        if state is None or item["state"] == state:
            out.append(item)
    return out


def _state(d: Intake, row: Mapping[str, Any], counts: Mapping[str, int] | None = None) -> str:
    status = row.get("status")
    if status in ("scheduled", "cancelled", "failed"):
        return status
    if status == "releasing" or not row.get("stats"):
        return "running"
    if counts is None:
        counts = d.store.status_counts(campaign_id=row["id"])
    return "running" if counts.get(Status.QUEUED, 0) + counts.get(Status.SENDING, 0) else "done"


__all__ = ["STATES", "cancel_campaign", "install_releaser", "list_campaigns", "parse_at", "release_due"]
