"""Nothing lost, nothing doubled: real worker processes killed, Redis restarted, SMTP down (SPEC §7)."""

from __future__ import annotations

import signal
import subprocess
from datetime import UTC, datetime

import pytest
from scale_helpers import start_worker, stop, wait_until, write_config
from servers import RedisServer, free_port
from smtp_sink import SmtpSink

from dispatch import Dispatcher
from dispatch.samples import sample_data, sample_recipient

pytestmark = [pytest.mark.server, pytest.mark.slow]
NOW = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)


def people(n: int):
    base = sample_recipient("fi", "FI")
    return [{**base, "id": f"C-{i}", "email": f"c{i}@example.fi"} for i in range(n)]


def smtp_config(tmp_path, store: str, broker: str, port: int, *, lease: float | None = None):
    extra = f'[channels.email]\nhost = "127.0.0.1"\nport = {port}\ntimeout = 5\npool_size = 4\n'
    if lease is not None:  # a short lease: a killed worker's claims come back in seconds (test_faults uses the default)
        extra += f"[worker]\nlease = {lease}\n"
    return write_config(tmp_path / "dispatch.toml", store=store, broker=broker, outbox=tmp_path / "out", extra=extra)


def expected_ids(d: Dispatcher, prefix: str = "pc") -> dict[str, str]:
    """Message-ID header → message id, for every message of the campaign."""
    ids = {}
    for i in range(100_000):
        rows = d.store.messages_for(f"C-{i}")
        if not rows:
            break
        for row in rows:
            ids[f"<{row['id']}@example.fi>"] = row["id"]
    return ids


def test_sigkill_of_a_worker_mid_campaign_loses_nothing_and_doubles_at_most_what_was_in_flight(
    tmp_path, redis_url, postgres_url
):
    sink = SmtpSink().start()
    try:
        config = smtp_config(tmp_path, postgres_url, redis_url, sink.port, lease=6)
        with Dispatcher.from_config(config) as d:
            assert (
                d.campaign("price_change", people(2000), sample_data("price_change"), campaign_id="pc", now=NOW).queued
                == 2000
            )
        first = start_worker(config, processes=2, threads=4, log=tmp_path / "w1.log")
        try:
            wait_until(lambda: len(sink.recorder.message_ids) >= 400, 120, interval=0.05, what="400 emails")
        finally:
            stop(first, signal.SIGKILL)
        at_kill = len(sink.recorder.message_ids)
        assert at_kill < 2000, "the worker finished before it could be killed; make the campaign bigger"
        second = start_worker(config, processes=2, threads=4, log=tmp_path / "w2.log")
        try:
            with Dispatcher.from_config(config) as d:
                wait_until(lambda: d.store.status_counts().get("sent") == 2000, 240, what="2000 deliveries")
                expected = expected_ids(d)
                flagged = {
                    row_id
                    for row_id in expected.values()
                    if d.store.message(row_id, content=False)["possible_duplicate"]
                }
        finally:
            stop(second)
        counts = sink.recorder.counts()
        assert set(counts) == set(expected), "every message arrived, and nothing else"
        doubled = {expected[mid] for mid, n in counts.items() if n > 1}
        print(
            f"\nSIGKILL of 2 worker processes after {at_kill} sends: {len(doubled)} sent twice, {len(flagged)} flagged"
        )
        assert all(n <= 2 for n in counts.values())
        assert doubled <= flagged, "a message sent twice must be recorded as a possible duplicate"
        # In flight at the kill: the SMTP transactions under way on each process's 4 pooled connections
        # (a send whose 250 came back is in the accepted-outcome log at once, whatever the store write
        # waits for). Bound: 2 processes x 4 connections, doubled for a 250 that was on its way to the
        # worker at the moment of the kill. Recording a whole batch of 100 at its end would double hundreds.
        assert len(doubled) <= 2 * 2 * 4, "only what was in flight at the kill can go twice"
    finally:
        sink.stop()


def test_a_redis_restart_without_persistence_mid_campaign_loses_nothing(tmp_path, postgres_url):
    redis = RedisServer(free_port(), tmp_path / "redis")
    (tmp_path / "redis").mkdir()
    redis.start()
    redis_binary_args = None  # noqa: F841 - documents that this server keeps nothing on restart
    sink = SmtpSink().start()
    worker = None
    try:
        subprocess.run(
            ["redis-cli", "-p", str(redis.port), "config", "set", "appendonly", "no"], capture_output=True, check=False
        )
        config = smtp_config(tmp_path, postgres_url, redis.url, sink.port)
        worker = start_worker(config, processes=1, threads=4, log=tmp_path / "w.log")
        with Dispatcher.from_config(config) as d:
            first = d.campaign(
                "price_change", people(1000)[:500], sample_data("price_change"), campaign_id="pc", now=NOW
            )
            redis.stop()  # the queue, and whatever was on it, is gone
            redis.start()
            second = d.campaign(
                "price_change", people(1000)[500:], sample_data("price_change"), campaign_id="pc", now=NOW
            )
            assert first.queued + second.queued == 1000
            wait_until(lambda: d.store.status_counts().get("sent") == 1000, 240, what="1000 deliveries")
            expected = expected_ids(d)
        assert set(sink.recorder.counts()) == set(expected)
    finally:
        if worker is not None:
            stop(worker)
        sink.stop()
        redis.stop()


def test_smtp_down_for_a_while_then_everything_is_delivered(tmp_path, redis_url, postgres_url):
    sink = SmtpSink()  # not started: connections are refused
    config = smtp_config(tmp_path, postgres_url, redis_url, sink.port)
    worker = start_worker(config, processes=1, threads=4, log=tmp_path / "w.log")
    try:
        with Dispatcher.from_config(config) as d:
            d.campaign("price_change", people(300), sample_data("price_change"), campaign_id="pc", now=NOW)
            wait_until(
                lambda: any(a for a in d.store.attempts_for([m["id"] for m in d.store.messages_for("C-0")]).values()),
                60,
                what="a failed first attempt",
            )
            assert d.store.status_counts().get("sent", 0) == 0
            sink.start()
            wait_until(lambda: d.store.status_counts().get("sent") == 300, 240, what="300 deliveries")
            assert d.store.dead_letters() == []
            expected = expected_ids(d)
        counts = sink.recorder.counts()
        assert set(counts) == set(expected) and max(counts.values()) == 1
    finally:
        stop(worker)
        sink.stop()
