"""Scheduled campaigns (SPEC §9 ``--at``): stored now, decided and queued at their moment, cancellable."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from scale_helpers import start_worker, stop, wait_until, write_config
from sqlalchemy import func, select

from dispatch import Dispatcher, schema
from dispatch.cli import cli
from dispatch.errors import InputError
from dispatch.scheduled import cancel_campaign, list_campaigns, parse_at, release_due
from dispatch.store import now_utc

HELSINKI = ZoneInfo("Europe/Helsinki")
SCHEDULED_ON = datetime(2027, 1, 3, 12, 0, tzinfo=UTC)  # a Sunday
AT = datetime(2027, 1, 4, 9, 0, tzinfo=HELSINKI)  # Monday 09:00 in Helsinki


def people(n: int, prefix: str = "C", **extra):
    from dispatch.samples import sample_recipient

    base = sample_recipient("fi", "FI")
    return [{**base, "id": f"{prefix}-{i}", "email": f"c{i}@example.fi", **extra} for i in range(n)]


def data(message_type: str = "price_change"):
    from dispatch.samples import sample_data

    return sample_data(message_type)


def waiting_rows(d: Dispatcher) -> int:
    with d.store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(schema.scheduled_recipients)).scalar()


def test_a_scheduled_campaign_is_released_at_its_moment_and_not_before(dispatcher):
    summary = dispatcher.campaign("price_change", people(4), data(), campaign_id="pc", now=SCHEDULED_ON, at=AT)
    assert (summary.scheduled, summary.queued, summary.release_at) == (4, 0, AT)
    assert dispatcher.store.status_counts(campaign_id="pc") == {}  # nothing decided yet
    assert [c["state"] for c in list_campaigns(dispatcher)] == ["scheduled"]

    assert release_due(dispatcher, now=AT - timedelta(seconds=1)) == []
    assert dispatcher.store.status_counts(campaign_id="pc") == {}

    released = release_due(dispatcher, now=AT)
    assert [(s.campaign_id, s.queued) for s in released] == [("pc", 4)]
    assert release_due(dispatcher, now=AT + timedelta(minutes=1)) == []  # once only
    rows = dispatcher.store.messages_for("C-0")
    assert [r["decided_at"] for r in rows] == [AT.astimezone(UTC)]  # decided at the release, not before
    assert waiting_rows(dispatcher) == 0  # the stored inputs are gone once recorded
    assert dispatcher.join(60)
    assert dispatcher.store.status_counts(campaign_id="pc") == {"sent": 4}
    [item] = list_campaigns(dispatcher)
    assert (item["state"], item["messages"]) == ("done", {"sent": 4})


def test_a_consent_withdrawn_before_the_release_wins(dispatcher):
    dispatcher.campaign("marketing", people(2), data("marketing"), campaign_id="m", now=SCHEDULED_ON, at=AT)
    dispatcher.consents.record("C-1", "marketing", False, channel="all", at=SCHEDULED_ON + timedelta(hours=1))
    [summary] = release_due(dispatcher, now=AT)
    assert (summary.queued, summary.suppressed) == (1, 1)
    [suppressed] = dispatcher.store.messages_for("C-1")
    assert suppressed["status"] == "suppressed" and suppressed["reasons"]


def test_each_message_keeps_its_own_window_from_the_moment_of_release(dispatcher):
    """SMS marketing released at 23:00 in Helsinki waits until 08:00 the next morning."""
    late = datetime(2027, 1, 4, 23, 0, tzinfo=HELSINKI)
    sms = people(1, preferred_channels={"marketing": "sms"})
    dispatcher.campaign("marketing", sms, data("marketing"), campaign_id="night", now=SCHEDULED_ON, at=late)
    release_due(dispatcher, now=late)
    [row] = dispatcher.store.messages_for("C-0")
    assert (row["channel"], row["status"]) == ("sms", "queued")
    assert row["send_after"] == datetime(2027, 1, 5, 8, 0, tzinfo=HELSINKI)


def test_a_scheduled_campaign_survives_a_restart(make_dispatcher):
    first = make_dispatcher()
    first.campaign("price_change", people(3), data(), campaign_id="later", now=SCHEDULED_ON, at=AT)
    first.close()
    second = make_dispatcher()
    [summary] = release_due(second, now=AT + timedelta(hours=2))  # nobody was running at 09:00: released late
    assert summary.queued == 3
    assert second.join(60)
    assert second.store.status_counts(campaign_id="later") == {"sent": 3}


def test_cancel_before_the_release_deletes_the_stored_recipients(dispatcher):
    dispatcher.campaign("price_change", people(3), data(), campaign_id="x", now=SCHEDULED_ON, at=AT)
    assert waiting_rows(dispatcher) == 3
    assert cancel_campaign(dispatcher, "x") == 3
    assert waiting_rows(dispatcher) == 0
    assert release_due(dispatcher, now=AT) == []
    assert dispatcher.store.status_counts(campaign_id="x") == {}
    assert [c["state"] for c in list_campaigns(dispatcher)] == ["cancelled"]
    with pytest.raises(InputError, match="is cancelled; only a scheduled campaign"):
        cancel_campaign(dispatcher, "x")
    with pytest.raises(InputError, match="no campaign 'nope'"):
        cancel_campaign(dispatcher, "nope")


def test_a_released_campaign_cannot_be_cancelled_or_scheduled_again(dispatcher):
    dispatcher.campaign("price_change", people(1), data(), campaign_id="r", now=SCHEDULED_ON, at=AT)
    release_due(dispatcher, now=AT)
    with pytest.raises(InputError, match="only a scheduled campaign can be cancelled"):
        cancel_campaign(dispatcher, "r")
    with pytest.raises(InputError, match="exists already"):
        dispatcher.campaign("price_change", people(1), data(), campaign_id="r", now=AT, at=AT + timedelta(days=1))


def test_bad_moments_and_bad_recipients_are_refused_at_scheduling(dispatcher):
    with pytest.raises(InputError, match="has passed"):
        dispatcher.campaign("price_change", people(1), data(), now=AT, at=AT - timedelta(minutes=1))
    with pytest.raises(InputError, match="timezone-aware"):
        dispatcher.campaign("price_change", people(1), data(), now=SCHEDULED_ON, at=datetime(2027, 1, 4, 9))
    mixed = [*people(2), {"id": "broken"}]
    summary = dispatcher.campaign("price_change", mixed, data(), campaign_id="m", now=SCHEDULED_ON, at=AT)
    assert (summary.scheduled, summary.invalid) == (2, 1)
    assert summary.errors[0].startswith("line 3:")
    assert waiting_rows(dispatcher) == 2
    with pytest.raises(InputError, match="nothing was scheduled"):  # --max-errors: none of it goes out later
        dispatcher.campaign("price_change", mixed, data(), campaign_id="n", now=SCHEDULED_ON, at=AT, max_errors=0)
    assert waiting_rows(dispatcher) == 2
    assert [s.campaign_id for s in release_due(dispatcher, now=AT)] == ["m"]


def test_at_without_an_offset_is_read_in_the_company_time_zone():
    assert parse_at("2027-01-04T09:00", "Europe/Helsinki") == datetime(2027, 1, 4, 7, 0, tzinfo=UTC)
    assert parse_at("2027-07-05T09:00", "Europe/Oslo") == datetime(2027, 7, 5, 7, 0, tzinfo=UTC)  # summer time
    assert parse_at("2027-01-04T09:00+01:00", "Europe/Helsinki") == datetime(2027, 1, 4, 8, 0, tzinfo=UTC)
    assert parse_at("2027-01-04T09:00Z", "Europe/Helsinki") == datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
    with pytest.raises(InputError, match="clocks skip"):
        parse_at("2027-03-28T03:30", "Europe/Helsinki")
    with pytest.raises(InputError, match="is not a moment"):
        parse_at("next monday", "Europe/Helsinki")


def test_the_command_line_schedules_lists_and_cancels(tmp_path):
    (tmp_path / "dispatch.toml").write_text(
        f'outbox = "{tmp_path / "out"}"\n[store]\nurl = "sqlite:///{tmp_path / "d.db"}"\n'
        '[links]\nsecret = "s"\n[company]\ntime_zone = "Europe/Stockholm"\n',
        encoding="utf-8",
    )
    (tmp_path / "r.jsonl").write_text("\n".join(json.dumps(p) for p in people(2)) + "\n", encoding="utf-8")
    (tmp_path / "data.json").write_text(json.dumps(data(), default=str), encoding="utf-8")
    runner = CliRunner()
    base = ["--config", str(tmp_path / "dispatch.toml"), "campaign"]
    files = ["price_change", "--recipients", str(tmp_path / "r.jsonl"), "--data", str(tmp_path / "data.json")]
    day = (now_utc() + timedelta(days=200)).date()  # ahead, within [campaigns] schedule_horizon_days
    result = runner.invoke(cli, [*base, *files, "--at", f"{day}T09:00", "--id", "pc", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    stockholm = datetime.combine(day, time(9), ZoneInfo("Europe/Stockholm")).isoformat()
    assert (summary["scheduled"], summary["release_at"]) == (2, stockholm)  # read in the company's time zone
    listed = json.loads(runner.invoke(cli, [*base, "list", "--json"]).output)
    assert [(c["id"], c["state"], c["waiting"]) for c in listed] == [("pc", "scheduled", 2)]
    result = runner.invoke(cli, [*base, "cancel", "pc"])
    assert result.exit_code == 0 and "2 stored recipients deleted" in result.output
    result = runner.invoke(cli, [*base, "cancel", "pc"])
    assert result.exit_code == 2 and "only a scheduled campaign" in result.output
    result = runner.invoke(cli, [*base, *files, "--at", "2001-01-01T09:00"])
    assert result.exit_code == 2 and "has passed" in result.output
    result = runner.invoke(cli, [*base, *files, "--id", "now"])  # without --at: sent at once, as before
    assert result.exit_code == 0, result.output
    states = {c["id"]: c["state"] for c in json.loads(runner.invoke(cli, [*base, "list", "--json"]).output)}
    assert states["pc"] == "cancelled" and states["now"] in ("running", "done")


def test_an_open_embedded_dispatcher_releases_the_campaign_when_its_moment_comes(dispatcher):
    at = now_utc() + timedelta(seconds=2)
    dispatcher.campaign("price_change", people(2), data(), campaign_id="soon", at=at)
    wait_until(
        lambda: dispatcher.store.status_counts(campaign_id="soon").get("sent") == 2, 60, what="release and delivery"
    )
    assert min(r["decided_at"] for r in dispatcher.store.messages_for("C-0")) >= at


@pytest.mark.server
def test_a_worker_process_releases_a_scheduled_campaign(tmp_path, redis_url):
    config = write_config(
        tmp_path / "dispatch.toml", store=f"sqlite:///{tmp_path / 'd.db'}", broker=redis_url, outbox=tmp_path / "out"
    )
    at = now_utc() + timedelta(seconds=3)
    with Dispatcher.from_config(config) as d:
        d.campaign("price_change", people(3), data(), campaign_id="w", at=at)
    worker = start_worker(config, log=tmp_path / "worker.log")
    try:
        with Dispatcher.from_config(config) as d:
            wait_until(lambda: d.store.status_counts(campaign_id="w").get("sent") == 3, 60, what="3 deliveries")
            [item] = list_campaigns(d)
            assert item["state"] == "done"
    finally:
        stop(worker)
    assert len(list((tmp_path / "out" / "email").glob("*.eml"))) == 3


@pytest.mark.server
def test_scheduling_and_release_on_postgresql(make_dispatcher, postgres_url):
    d = make_dispatcher({"store": {"url": postgres_url}})
    summary = d.campaign("price_change", people(3), data(), campaign_id="pg", now=SCHEDULED_ON, at=AT)
    again = d.campaign("price_change", people(4), data(), campaign_id="pg", now=SCHEDULED_ON, at=AT)  # resumed
    assert (summary.scheduled, again.scheduled) == (3, 1)  # lines stored by the first run are not stored twice
    assert release_due(d, now=AT - timedelta(seconds=1)) == []
    [released] = release_due(d, now=AT)
    assert released.queued == 4 and waiting_rows(d) == 0
    assert d.join(60)
    assert d.store.status_counts(campaign_id="pg") == {"sent": 4}


def test_a_release_cut_short_by_a_crash_is_taken_over_once_its_claim_is_stale(dispatcher):
    from sqlalchemy import update

    dispatcher.campaign("price_change", people(3), data(), campaign_id="c", now=SCHEDULED_ON, at=AT)
    t = schema.campaigns
    with dispatcher.store.transaction() as conn:  # a process claimed it at AT and died before recording
        conn.execute(update(t).where(t.c.id == "c").values(status="releasing", updated_at=AT))
    assert release_due(dispatcher, now=AT + timedelta(minutes=1)) == []  # its claim still holds
    assert [item["state"] for item in list_campaigns(dispatcher)] == ["running"]
    [summary] = release_due(dispatcher, now=AT + timedelta(minutes=6))
    assert (summary.queued, summary.duplicates) == (3, 0)
    assert dispatcher.join(60)
    assert dispatcher.store.status_counts(campaign_id="c") == {"sent": 3}
