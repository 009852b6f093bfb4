"""What an operator sees of `dispatch worker`: one start line, a few clear lines while the broker or the
store is down (and delivery once it is back), and SIGTERM finishing what is in flight (SPEC §9)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from scale_helpers import start_worker, stop, wait_until, write_config
from servers import PostgresServer, RedisServer, free_port

from dispatch import Dispatcher
from dispatch.samples import sample_data, sample_recipient

pytestmark = pytest.mark.server
NOW = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)


def people(n: int, prefix: str = "C"):
    base = sample_recipient("fi", "FI")
    return [{**base, "id": f"{prefix}-{i}", "email": f"c{i}@example.fi"} for i in range(n)]


def lines(log: Path) -> list[str]:
    return [line for line in log.read_text(encoding="utf-8").splitlines() if line.strip()] if log.exists() else []


def test_a_worker_started_with_the_broker_down_waits_quietly_and_delivers_once_redis_is_up(tmp_path):
    port = free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    config = write_config(
        tmp_path / "dispatch.toml", store=f"sqlite:///{tmp_path / 'd.db'}", broker=broker, outbox=tmp_path / "out"
    )
    with Dispatcher.from_config(config) as d:  # recorded; the broker refuses them, so the relay will hand them over
        assert d.campaign("price_change", people(5), sample_data("price_change"), campaign_id="pc", now=NOW).queued == 5
    log = tmp_path / "worker.log"
    worker = start_worker(config, processes=1, threads=2, log=log)
    redis = RedisServer(port, tmp_path)
    try:
        wait_until(lambda: any("unreachable" in line for line in lines(log)), 60, what="the outage line")
        start, outage = lines(log)[:2]
        assert start.startswith("dispatch ") and " worker: " in start
        assert f"broker {broker}" in start and "store sqlite:///" in start
        assert "queues email, email.bulk, letter, letter.bulk" in start and "1 process × 2 threads" in start
        assert f"broker {broker} unreachable" in outage and "retrying with back-off" in outage
        threading.Event().wait(8)  # several back-off rounds (1, 2, 4 s) pass without a line each
        assert worker.poll() is None
        assert len(lines(log)) == 2
        redis.start()
        with Dispatcher.from_config(config) as d:
            wait_until(lambda: d.store.status_counts().get("sent") == 5, 60, what="5 deliveries")
        assert any("broker reachable after" in line for line in lines(log))
        before = len(lines(log))
        redis.stop()  # down while serving: Dramatiq's consumers fail every few seconds, one line says so
        wait_until(lambda: any("consumers retry" in line for line in lines(log)), 60, what="the outage line")
        threading.Event().wait(7)
        assert len(lines(log)) == before + 1
        redis.start()
        wait_until(lambda: any("broker reachable again" in line for line in lines(log)), 60, what="the recovery line")
    finally:
        stop(worker)
        redis.stop()
    assert worker.returncode == 0
    text = lines(log)
    assert len(text) <= 6, text  # start, and one line as each outage begins and ends: never a line per retry
    assert not any("Traceback" in line or "CRITICAL" in line for line in text)


def test_a_worker_started_with_the_store_down_waits_and_resumes_by_itself(tmp_path, redis_url):
    folder = Path(tempfile.mkdtemp(prefix="dispatch-pg-late-"))
    os.chmod(folder, 0o755)
    server = PostgresServer(free_port(), folder)
    store = server.url.replace("dispatch@", "dispatch:hunter2@")  # trust auth ignores it; logs must not show it
    config = write_config(tmp_path / "dispatch.toml", store=store, broker=redis_url, outbox=tmp_path / "out")
    log = tmp_path / "worker.log"
    worker = start_worker(config, processes=1, threads=2, log=log)
    try:
        wait_until(lambda: any("store" in line and "unreachable" in line for line in lines(log)), 60, what="outage")
        assert worker.poll() is None
        server.start()
        wait_until(lambda: any("store reachable after" in line for line in lines(log)), 90, what="recovery line")
        with Dispatcher.from_config(config) as d:
            d.campaign("price_change", people(3), sample_data("price_change"), campaign_id="pc", now=NOW)
            wait_until(lambda: d.store.status_counts().get("sent") == 3, 60, what="3 deliveries")
    finally:
        stop(worker)
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    assert worker.returncode == 0
    text = lines(log)
    assert "hunter2" not in "\n".join(text) and "dispatch:***@" in text[0]
    assert len(text) <= 4, text
    assert not any("Traceback" in line for line in text)


class SlowSink:
    """An SMTP server that takes two seconds over each message and notes when one is being received."""

    def __init__(self) -> None:
        self.port = free_port()
        self.receiving = threading.Event()
        self.accepted: list[str] = []
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):
        self.receiving.set()
        await asyncio.sleep(2)
        self.accepted.append(envelope.mail_from)
        return "250 2.0.0 Ok: queued"

    def __enter__(self) -> SlowSink:
        self._controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self._controller.stop()


def test_sigterm_lets_the_sends_in_flight_finish_and_exits_0(tmp_path, redis_url):
    with SlowSink() as sink:
        extra = f'[channels.email]\nhost = "127.0.0.1"\nport = {sink.port}\ntimeout = 30\n[worker]\nbatch_size = 3\n'
        config = write_config(
            tmp_path / "dispatch.toml",
            store=f"sqlite:///{tmp_path / 'd.db'}",
            broker=redis_url,
            outbox=tmp_path / "out",
            extra=extra,
        )
        with Dispatcher.from_config(config) as d:
            d.campaign("price_change", people(12), sample_data("price_change"), campaign_id="pc", now=NOW)
        worker = start_worker(config, processes=1, threads=2, log=tmp_path / "worker.log")
        try:
            assert sink.receiving.wait(60), "no message reached the SMTP server"
            os.killpg(worker.pid, signal.SIGTERM)
            assert worker.wait(timeout=90) == 0
        finally:
            stop(worker)
        with Dispatcher.from_config(config) as d:
            counts = d.store.status_counts()
        assert counts.get("sending", 0) == 0, counts  # nothing left half-way
        assert counts.get("sent", 0) == len(sink.accepted) >= 1  # what the server took is recorded as sent
        assert counts.get("sent", 0) + counts.get("queued", 0) == 12  # the rest waits for the next worker


def test_dispatch_status_shows_queues_lag_dead_letters_suppressions_registers_and_schedules(tmp_path, redis_url):
    from click.testing import CliRunner

    from dispatch.cli import cli
    from dispatch.lifecycle import Status
    from dispatch.store import now_utc

    config = write_config(
        tmp_path / "dispatch.toml", store=f"sqlite:///{tmp_path / 'd.db'}", broker=redis_url, outbox=tmp_path / "out"
    )
    ten_minutes_ago = now_utc() - timedelta(minutes=10)
    with Dispatcher.from_config(config) as d:  # no worker runs: what is recorded stays queued
        d.campaign("price_change", people(3), sample_data("price_change"), campaign_id="pc", now=ten_minutes_ago)
        night = datetime(2099, 1, 12, 21, 30, tzinfo=UTC)  # SMS marketing at night: held until 08:00
        sms = {**people(1, "S")[0], "preferred_channels": {"marketing": "sms"}}
        dead = d.dispatch("marketing", sms, sample_data("marketing"), now=night)
        assert d.store.transition(dead.message_id, Status.DEAD, now_utc(), "test: retries exhausted") is not None
        d.dispatch("marketing", {**sms, "id": "S-2"}, sample_data("marketing"), now=night)
        (tmp_path / "asml.csv").write_text("nimi;katuosoite;postinumero\nA B;Katu 1;00100\n", encoding="utf-8")
        d.registers.import_file("asml", tmp_path / "asml.csv")
        later = dict(campaign_id="later", at=night, now=night - timedelta(days=30))  # within the horizon of 365 days
        d.campaign("price_change", people(2), sample_data("price_change"), **later)
    runner = CliRunner()
    args = ["--config", str(tmp_path / "dispatch.toml"), "status"]
    result = runner.invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    queues = {q["queue"]: q for q in report["queues"]}
    assert (queues["email"]["due"], queues["email"]["held"]) == (3, 0)
    assert 590 <= queues["email"]["lag_seconds"] < 3600
    assert (queues["sms.bulk"]["due"], queues["sms.bulk"]["held"]) == (0, 1)
    assert report["dead_letters"] == 1
    assert report["suppression_list"] == 0
    registers = {r["name"]: r for r in report["registers"]}
    assert registers["asml"]["stale"] is False and registers["nix-telefon"]["loaded_at"] is None
    assert report["scheduled_campaigns"]["count"] == 1
    assert report["broker"]["reachable"] is True

    from dispatch.store import now_utc

    with Dispatcher.from_config(config) as d:
        d.store.suppress("email", "gone@example.fi", "hard_bounce", now_utc())
        d.store.suppress("sms", "+358401234567", "invalid_number", now_utc())
        d.store.suppress("email", "back@example.fi", "manual", now_utc())
        d.store.unsuppress("email", "back@example.fi", "the customer confirmed it", now_utc())  # history only
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "suppression list: 2" in result.output and "dead letters: 1" in result.output
    assert "never loaded" in result.output and "fresh" in result.output
    assert "scheduled campaigns: 1, next at 2099-01-12 21:30 UTC" in result.output


def test_with_json_logs_the_start_and_outage_lines_are_json_records(tmp_path):
    import subprocess

    from scale_helpers import BIN

    broker = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    config = write_config(
        tmp_path / "dispatch.toml", store=f"sqlite:///{tmp_path / 'd.db'}", broker=broker, outbox=tmp_path / "out"
    )
    log = tmp_path / "worker.log"
    with log.open("ab") as out:
        worker = subprocess.Popen(
            [str(BIN), "--log-format", "json", "--config", str(config), "worker"],
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        wait_until(lambda: len(lines(log)) >= 2, 60, what="two lines")
    finally:
        stop(worker)
    assert worker.returncode == 0  # stopped while waiting for the broker: a clean exit
    start, outage = (json.loads(line) for line in lines(log)[:2])
    assert start["logger"] == "dispatch.worker" and " worker: broker " + broker in start["message"]
    assert outage["level"] == "WARNING" and "unreachable" in outage["message"]


def test_a_burst_of_sigterms_still_ends_the_worker_with_0(tmp_path, redis_url):
    """systemd, Kubernetes and a process group each send more than one signal; a second one
    arriving while the first is handled must not leave a process hanging."""
    config = write_config(
        tmp_path / "dispatch.toml",
        store=f"sqlite:///{tmp_path / 'd.db'}",
        broker=redis_url,
        outbox=tmp_path / "out",
        extra='[logging]\nlevel = "info"\n',
    )
    log = tmp_path / "worker.log"
    worker = start_worker(config, processes=2, threads=2, log=log)
    try:
        wait_until(lambda: sum(" threads on " in line for line in lines(log)) == 2, 90, what="both processes up")
        for _ in range(1000):
            try:
                os.killpg(worker.pid, signal.SIGTERM)
            except ProcessLookupError:
                break
        assert worker.wait(timeout=90) == 0
    finally:
        stop(worker)
