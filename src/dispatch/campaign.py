"""Bulk campaigns: one message type and one data set to many recipients, streamed in batches.

Each batch is validated, decided, rendered, recorded in one transaction and then
enqueued in one round trip. Every message gets the idempotency key
``<campaign id>:<recipient id>``, so re-running an interrupted campaign skips what
was already taken. Templates are rendered once for every language and country
before the first message is recorded, so a template error stops the campaign
before anything is queued.

A campaign given a moment (``Dispatcher.campaign(..., at=...)``) is scheduled instead
(:mod:`dispatch.scheduled`): its recipients are checked and stored now, and decided,
recorded and queued when the moment comes, through :func:`record_batch` here.

Every function takes the dispatcher's :class:`~dispatch.intake.Intake` (a
:class:`~dispatch.Dispatcher` is accepted too and gives its own).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any

from .clock import now_utc
from .errors import DispatchError, InputError, InvalidData
from .ids import new_id
from .intake import Intake, intake_of
from .message.pipeline import Inputs
from .messages import country_data_problems
from .models import Recipient
from .serialize import data_to_json

ProgressCallback = Callable[[int], None]


@dataclass
class CampaignSummary:
    """What a campaign run did."""

    campaign_id: str
    message_type: str
    total: int = 0
    queued: int = 0
    suppressed: int = 0
    duplicates: int = 0
    invalid: int = 0
    by_channel_language: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: A scheduled campaign: recipients stored for release at ``release_at``.
    scheduled: int = 0
    release_at: datetime | None = None

    @property
    def rate(self) -> float:
        return self.total / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "message_type": self.message_type,
            "total": self.total,
            "queued": self.queued,
            "suppressed": self.suppressed,
            "duplicates": self.duplicates,
            "invalid": self.invalid,
            "by_channel_language": {f"{c}/{lang}": n for (c, lang), n in sorted(self.by_channel_language.items())},
            "reasons": dict(self.reasons.most_common()),
            "errors": self.errors[:20],
            "seconds": round(self.seconds, 3),
            "messages_per_second": round(self.rate, 1),
        } | ({"scheduled": self.scheduled, "release_at": self.release_at.isoformat()} if self.release_at else {})


def run_campaign(
    d: Intake,
    message_type: str,
    recipients: Iterable[Mapping[str, Any] | Recipient | tuple[int, Mapping[str, Any]]],
    data: Mapping[str, Any] | None,
    *,
    campaign_id: str | None = None,
    now: datetime | None = None,
    batch_size: int = 500,
    progress: ProgressCallback | None = None,
    source: str | None = None,
    max_errors: int | None = None,
) -> CampaignSummary:
    """Send ``message_type`` with ``data`` to every recipient; see the module docstring.

    ``recipients`` may yield mappings, :class:`Recipient` values, or ``(line, mapping)``
    pairs from :func:`dispatch.recipient_files.read_recipients` (errors then name lines).
    Invalid recipients are counted and reported, not fatal, unless more than
    ``max_errors`` occur. (To schedule it for a moment: :func:`dispatch.scheduled.schedule_campaign`.)
    """
    d = intake_of(d)
    mtype, values, campaign_id, moment = begin(d, message_type, data, campaign_id, now, source)
    started = time.perf_counter()
    summary = CampaignSummary(campaign_id, mtype.name)
    for batch in batches(numbered(recipients), batch_size):
        record_batch(d, mtype, values, batch, campaign_id, moment, summary)
        if progress is not None:
            progress(len(batch))
        if max_errors is not None and summary.invalid > max_errors:
            raise InputError(f"campaign stopped: {summary.invalid} invalid recipients", summary.errors[:20])
    summary.seconds = time.perf_counter() - started
    d.store.set_campaign_stats(campaign_id, summary.as_dict(), now_utc())
    return summary


def begin(
    d: Intake,
    message_type: str,
    data,
    campaign_id: str | None,
    now: datetime | None,
    source: str | None,
    extra: Mapping[str, Any] | None = None,
) -> tuple[Any, Any, str, datetime]:
    """Check the input and the templates, and record the campaign (with ``extra`` columns):
    all before the first message."""
    d = intake_of(d)
    mtype = d.types.get(message_type)
    values = d.validate_data(message_type, data)
    campaign_id = campaign_id or f"{message_type}-{new_id()}"
    if not isinstance(campaign_id, str) or ":" in campaign_id or not campaign_id.strip():
        raise InputError("campaign_id must be a non-empty string without ':'")
    moment = now or now_utc()
    preflight(d, mtype.name, values)
    approved(d, mtype, values)
    d.store.save_campaign(
        {
            "id": campaign_id,
            "message_type": mtype.name,
            "data": data_to_json(values),
            "source": source,
            "created_at": moment,
            "updated_at": moment,
            **(extra or {}),
        }
    )
    return mtype, values, campaign_id, moment


def approved(d: Intake, mtype, values) -> None:
    """Four eyes (SPEC §5), checked once before the first recipient: every language and channel
    of the type must be in an approved version when its category requires approval."""
    from .policy.engine import effective_category

    d.approvals.check_all(mtype.name, effective_category(mtype, values), mtype.channels)


def preflight(d: Intake, message_type: str, values) -> None:
    """Render the type for every channel, language and country with the campaign's data.

    Raises the first :class:`TemplateError` before anything is written.
    """
    from .samples import SAMPLE_RECIPIENTS

    mtype = d.types.get(message_type)
    seen: set[tuple[str, str, str]] = set()
    for (language, country), sample in SAMPLE_RECIPIENTS.items():
        if country_data_problems(mtype, values, country):
            continue  # this data cannot go to that country at all: each such recipient is refused in its batch
        for channel in mtype.channels:
            if channel not in d.channels or (channel, language, country) in seen:
                continue
            seen.add((channel, language, country))
            if not d.renderer.has_parts(mtype.name, d.channels[channel].parts, language):
                continue
            d.preview(mtype.name, sample, values, channel=channel, language=language)


def numbered(items: Iterable[Any]) -> Iterator[tuple[int, Any]]:
    """``(line, item)`` pairs: kept as they are when the reader numbered them, else counted from 1."""
    for index, item in enumerate(items, start=1):
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], int):
            yield item
        else:
            yield index, item


def batches(items: Iterator[tuple[int, Any]], size: int) -> Iterator[list[tuple[int, Any]]]:
    """Lists of up to ``size`` items."""
    while True:
        batch = list(islice(items, size))
        if not batch:
            return
        yield batch


def record_batch(d: Intake, mtype, values, batch, campaign_id: str, now: datetime, summary: CampaignSummary) -> None:
    """Validate, decide, render, record and submit one batch of ``(line, recipient)`` pairs at ``now``."""
    d = intake_of(d)
    people: list[Recipient] = []
    for line, raw in batch:
        summary.total += 1
        if isinstance(raw, Mapping) and "__error__" in raw:
            summary.invalid += 1
            summary.errors.append(f"line {line}: {raw['__error__']}")
            continue
        try:
            people.append(d.parse_recipient(raw))
        except DispatchError as exc:
            summary.invalid += 1
            summary.errors.append(f"line {line}: {exc}")
    missing = {}
    for person in people:  # SPEC §2 country data: checked where recipient and data meet, before this batch is written
        missing.setdefault(person.country, country_data_problems(mtype, values, person.country))
    problems = [f"{country}: {text}" for country, texts in missing.items() for text in texts]
    if problems:
        raise InvalidData(
            f"campaign stopped: {mtype.name} data lacks what recipients in these countries need:", problems
        )
    keys = {p.id: f"{campaign_id}:{p.id}" for p in people}
    taken = d.store.existing_keys(list(keys.values()))
    fresh: list[Recipient] = []
    seen: set[str] = set()
    for person in people:
        if keys[person.id] in taken or person.id in seen:
            summary.duplicates += 1
            continue
        seen.add(person.id)
        fresh.append(person)
    if not fresh:
        return
    pipeline = d.pipeline
    facts = pipeline.facts(mtype, values, fresh, now)
    records = []
    decisions = []
    for person in fresh:
        inputs = Inputs(mtype, person, values, now)
        decision = pipeline.decide(inputs, facts.get(person.id))
        records.append(
            pipeline.record(
                inputs, decision, new_id(), idempotency_key=keys[person.id], campaign_id=campaign_id, keep_data=False
            )
        )
        decisions.append(decision)
        if decision.allowed:
            summary.queued += 1
            summary.by_channel_language[(decision.channel, decision.language)] += 1
        else:
            summary.suppressed += 1
            summary.reasons.update(decision.reasons)
    stored = pipeline.submit(d.store, records, decisions, people=fresh, now=now)
    if len(stored) < len(records):  # another process took some of these keys meanwhile
        for record in records:
            if record.id not in stored:
                summary.duplicates += 1
                if record.allowed:
                    summary.queued -= 1
                    summary.by_channel_language[(record.channel, record.language)] -= 1
                else:
                    summary.suppressed -= 1
                    summary.reasons.subtract(record.reasons)


# -- several processes -------------------------------------------------------------------

_worker: tuple[Any, Any, Any, str, datetime] | None = None


def _init_worker(factory, config, message_type: str, data, campaign_id: str, now: datetime) -> None:
    """Each intake process opens its own dispatcher on the same configuration."""
    import atexit

    global _worker
    d = factory(config)
    atexit.register(d.close)
    _worker = (d, d.types.get(message_type), d.validate_data(message_type, data), campaign_id, now)


def _work(batch: list[tuple[int, Any]]) -> dict[str, Any]:
    assert _worker is not None
    d, mtype, values, campaign_id, now = _worker
    return _batch_result(d, mtype, values, batch, campaign_id, now)


def _batch_result(d, mtype, values, batch, campaign_id: str, now: datetime) -> dict[str, Any]:
    part = CampaignSummary(campaign_id, mtype.name)
    record_batch(d, mtype, values, batch, campaign_id, now, part)
    return {
        "total": part.total,
        "queued": part.queued,
        "suppressed": part.suppressed,
        "duplicates": part.duplicates,
        "invalid": part.invalid,
        "errors": part.errors[:20],
        "by_channel_language": dict(part.by_channel_language),
        "reasons": dict(part.reasons),
    }


def run_campaign_parallel(
    d: Intake,
    message_type: str,
    recipients: Iterable[Any],
    data: Mapping[str, Any] | None,
    *,
    processes: int,
    campaign_id: str | None = None,
    now: datetime | None = None,
    batch_size: int = 1000,
    progress: ProgressCallback | None = None,
    source: str | None = None,
    max_errors: int | None = None,
) -> CampaignSummary:
    """:func:`run_campaign` spread over ``processes`` processes (PostgreSQL store and a real broker).

    This process reads the file, takes every ``processes``-th batch itself and hands
    the others to ``processes - 1`` helper processes, at most two each in flight, so
    memory stays flat. Each process decides, renders, records and enqueues its
    batches; idempotency keys make the result the same as a single-process run.
    """
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    d = intake_of(d)
    if d.embedded or d.config.store.url.startswith("sqlite"):
        raise InputError(
            "several intake processes need a real broker and PostgreSQL (the embedded default "
            "has an in-process queue and a single-writer SQLite file)"
        )
    mtype, values, campaign_id, moment = begin(d, message_type, data, campaign_id, now, source)
    plain_data = data_to_json(values)
    summary = CampaignSummary(campaign_id, mtype.name)
    started = time.perf_counter()

    def merge(result: dict[str, Any]) -> None:
        for key in ("total", "queued", "suppressed", "duplicates", "invalid"):
            setattr(summary, key, getattr(summary, key) + result[key])
        summary.errors.extend(result["errors"])
        summary.by_channel_language.update(result["by_channel_language"])
        summary.reasons.update(result["reasons"])
        if progress is not None:
            progress(result["total"])

    context = multiprocessing.get_context("spawn")
    helpers = processes - 1
    with ProcessPoolExecutor(
        helpers,
        mp_context=context,
        initializer=_init_worker,
        initargs=(d.factory, d.config, message_type, plain_data, campaign_id, moment),
    ) as pool:
        pending: set = set()
        for index, batch in enumerate(batches(numbered(recipients), batch_size)):
            if index % processes == 0:
                merge(_batch_result(d, mtype, values, batch, campaign_id, moment))
            else:
                if len(pending) >= 2 * helpers:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        merge(future.result())
                pending.add(pool.submit(_work, batch))
            if max_errors is not None and summary.invalid > max_errors:
                break
        for future in pending:
            merge(future.result())
    summary.seconds = time.perf_counter() - started
    if max_errors is not None and summary.invalid > max_errors:
        raise InputError(f"campaign stopped: {summary.invalid} invalid recipients", summary.errors[:20])
    d.store.set_campaign_stats(campaign_id, summary.as_dict(), now_utc())
    return summary
