"""Bulk campaigns: template errors stop them before anything is queued; interrupted runs resume."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from datetime import UTC, datetime

import pytest
from scale_helpers import BIN, wait_until, write_config

from dispatch.errors import TemplateError
from dispatch.samples import sample_data, sample_recipient

NOW = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)


def test_a_template_error_stops_the_campaign_before_the_first_message(make_dispatcher, tmp_path):
    broken = tmp_path / "custom" / "sv" / "price_change"
    broken.mkdir(parents=True)
    (broken / "letter.html").write_text("<p>{{ effective_on | date }} {{ oops }}</p>", encoding="utf-8")
    d = make_dispatcher({"templates": {"paths": [str(tmp_path / "custom")]}})
    people = [{**sample_recipient("fi", "FI"), "id": f"C{i}"} for i in range(50)]  # Finnish: not even affected
    with pytest.raises(TemplateError, match=r"sv/price_change/letter\.html: 'oops' is undefined"):
        d.campaign("price_change", people, sample_data("price_change"), now=NOW)
    assert d.store.status_counts() == {}
    from sqlalchemy import func, select

    from dispatch import schema

    with d.store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.campaigns)).scalar() == 0


def test_the_campaign_summary_counts_what_happened(make_dispatcher):
    d = make_dispatcher()
    people = [{**sample_recipient("fi", "FI"), "id": f"C{i}"} for i in range(10)]
    people += [{**sample_recipient("fi", "FI"), "id": "MINOR", "birth_date": "2012-01-01"}, {"id": "X"}]
    summary = d.campaign("marketing", people, sample_data("marketing"), campaign_id="spring", now=NOW)
    assert (summary.total, summary.queued, summary.suppressed, summary.invalid) == (12, 10, 1, 1)
    assert summary.reasons["minor"] == 1 and summary.by_channel_language[("email", "fi")] == 10
    assert d.store.campaign("spring")["stats"]["queued"] == 10


@pytest.mark.server
def test_an_interrupted_campaign_resumes_without_taking_anyone_twice(tmp_path, redis_url, postgres_url):
    config = write_config(tmp_path / "dispatch.toml", store=postgres_url, broker=redis_url, outbox=tmp_path / "out")
    lines = [
        json.dumps({**sample_recipient("fi", "FI"), "id": f"I-{i}", "email": f"i{i}@example.fi"}) for i in range(30_000)
    ]
    (tmp_path / "people.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "data.json").write_text(json.dumps(sample_data("price_change")), encoding="utf-8")
    command = [
        str(BIN),
        "--config",
        str(config),
        "campaign",
        "price_change",
        "--recipients",
        str(tmp_path / "people.jsonl"),
        "--data",
        str(tmp_path / "data.json"),
        "--id",
        "pc-int",
        "--batch-size",
        "500",
        "--processes",
        "1",
        "--json",
    ]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    from dispatch import Dispatcher

    with Dispatcher.from_config(config) as d:
        wait_until(lambda: d.store.status_counts().get("queued", 0) >= 2000, 120, what="the first batches")
        first.send_signal(signal.SIGINT)
        first.wait(60)
        taken = d.store.status_counts().get("queued", 0)
    assert 0 < taken < 30_000, "interrupt the run in the middle"
    time.sleep(0.5)
    second = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    assert second["duplicates"] == taken and second["queued"] == 30_000 - taken
    with Dispatcher.from_config(config) as d:
        assert d.store.status_counts() == {"queued": 30_000}
