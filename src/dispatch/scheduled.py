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

from .campaign import CampaignSummary, ProgressCallback, batches, begin, numbered, preflight, record_batch
from .campaign_states import CampaignState, CampaignStatus, campaign_state
from .clock import now_utc
from .errors import DispatchError, InputError
from .intake import Intake, intake_of
from .models import Recipient

logger = logging.getLogger("dispatch.scheduled")

#: A release whose claim was not renewed for this long is taken over by another process.
STALE_CLAIM = timedelta(minutes=5)
#: Recipients recorded per batch when a campaign is released.
RELEASE_BATCH = 500
#: What ``campaign list`` shows for each state.
STATES = tuple(str(state) for state in CampaignState)


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
        if existing is not None and existing.get("status") != CampaignStatus.SCHEDULED:
            raise InputError(f"campaign {campaign_id} exists already ({_state(d, existing)}); choose another id")
    mtype, _values, campaign_id, moment = begin(
        d, message_type, data, campaign_id, moment, source, {"status": str(CampaignStatus.SCHEDULED), "release_at": at}
    )
    store.move_release(campaign_id, at, moment)  # scheduling the same id again may move the moment
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
        summary.scheduled += store.keep_scheduled_recipients(rows)
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
    released = []
    for campaign_id in store.due_campaigns(now, STALE_CLAIM):
        if store.claim_release(campaign_id, now, STALE_CLAIM, _touch(now)):
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
    try:
        mtype = d.types.get(row["message_type"])
        values = d.validate_data(mtype.name, row["data"])
        preflight(d, mtype.name, values)
    except DispatchError as exc:
        logger.error("scheduled campaign %s cannot be released: %s", campaign_id, exc)
        store.fail_release(campaign_id, {**(row["stats"] or {}), "error": str(exc)}, _touch(now))
        return None
    started = time.perf_counter()
    summary = CampaignSummary(campaign_id, mtype.name, release_at=row["release_at"])
    last = -1
    while True:
        batch = store.scheduled_batch(campaign_id, last, RELEASE_BATCH)
        if not batch:
            break
        record_batch(d, mtype, values, batch, campaign_id, now, summary)
        last = batch[-1][0]
        store.release_progress(campaign_id, last, _touch(now))  # recorded: the stored inputs go, the claim renewed
    summary.seconds = time.perf_counter() - started
    store.finish_release(campaign_id, {**(row["stats"] or {}), **summary.as_dict()}, _touch(now))
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
    removed = store.cancel_scheduled(campaign_id, now or now_utc())
    if removed is None:
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
    rows = store.newest_campaigns(limit)
    waiting = store.waiting_recipients(row["id"] for row in rows)
    out = []
    for row in rows:
        counts = store.status_counts(campaign_id=row["id"])
        item = {
            "id": row["id"],
            "message_type": row["message_type"],
            "state": str(_state(d, row, counts)),
            "release_at": row["release_at"],
            "created_at": row["created_at"],
            "waiting": waiting.get(row["id"], 0),
            "messages": counts,
        }
        if state is None or item["state"] == state:
            out.append(item)
    return out


def _state(d: Intake, row: Mapping[str, Any], counts: Mapping[str, int] | None = None) -> CampaignState:
    def messages() -> Mapping[str, int]:
        return counts if counts is not None else d.store.status_counts(campaign_id=row["id"])

    return campaign_state(row.get("status"), bool(row.get("stats")), messages)


__all__ = ["STATES", "cancel_campaign", "install_releaser", "list_campaigns", "parse_at", "release_due"]
