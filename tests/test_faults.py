"""Faults an operator meets, with real processes and servers (issue 8, SPEC §7).

A worker SIGKILLed (Redis and RabbitMQ), PostgreSQL stopped for 20 s, the SMTP
server stopped for 20 s, a script without a main guard, threads left after
``close()``, ``decide()`` in an empty folder, and a bug in a channel hit by a
whole batch. No timing decides pass or fail except generous bounds; waits are
on conditions. The recovery times are printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from scale_helpers import start_worker, stop, wait_until, write_config
from smtp_sink import SmtpSink
from sqlalchemy import select

from dispatch import Channel, Dispatcher, hookimpl, schema
from dispatch.samples import sample_data, sample_recipient

NOW = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]
MESSAGE_ID = re.compile(r"<([^@>]+)@")


def people(n: int) -> list[dict]:
    base = sample_recipient("fi", "FI")
    return [{**base, "id": f"C-{i}", "email": f"c{i}@example.fi"} for i in range(n)]


def smtp_config(tmp_path: Path, store: str, broker: str, port: int, *, defaults: bool = False, extra: str = "") -> Path:
    """Workers sending to ``port``; ``defaults`` keeps dispatch's own lease, relay and stuck_after."""
    email = f'[channels.email]\nhost = "127.0.0.1"\nport = {port}\ntimeout = 5\npool_size = 4\n'
    return write_config(
        tmp_path / "dispatch.toml",
        store=store,
        broker=broker,
        outbox=tmp_path / "out",
        extra=email + extra,
        stuck_after=None if defaults else 5,
    )


def stored_ids(d: Dispatcher) -> set[str]:
    with d.store.engine.connect() as conn:
        return set(conn.execute(select(schema.messages.c.id)).scalars())


def received(sink: SmtpSink) -> Counter:
    """Dispatch message id → how many times the SMTP server accepted it."""
    return Counter(MESSAGE_ID.match(mid).group(1) for mid in sink.recorder.message_ids)


def flagged_ids(d: Dispatcher) -> set[str]:
    m = schema.messages
    with d.store.engine.connect() as conn:
        return set(conn.execute(select(m.c.id).where(m.c.possible_duplicate.is_(True))).scalars())


def claimers(d: Dispatcher) -> set[str]:
    """The workers that have claimed messages so far."""
    m = schema.messages
    with d.store.engine.connect() as conn:
        return set(conn.execute(select(m.c.claimed_by).where(m.c.claimed_by.is_not(None)).distinct()).scalars())


def log_lines(path: Path, start: int = 0) -> list[str]:
    data = path.read_bytes()[start:] if path.exists() else b""
    return data.decode("utf-8", "replace").splitlines()


# -- 1. a worker SIGKILLed mid-run: its batches come back, on Redis and on RabbitMQ ---------------


@pytest.mark.server
@pytest.mark.slow
@pytest.mark.parametrize("broker", ["redis_url", "rabbitmq_url"])
def test_a_killed_workers_messages_are_delivered_soon_after_another_worker_starts(
    tmp_path, request, postgres_url, broker
):
    """Default lease, relay interval and Redis heartbeat timeout: issue 8 asks for ≤ 60 s; the bound is 120 s."""
    broker_url = request.getfixturevalue(broker)
    total = 800
    sink = SmtpSink(delay=0.01).start()  # about 400 messages/s per process: the kill lands mid-run
    try:
        config = smtp_config(tmp_path, postgres_url, broker_url, sink.port, defaults=True)
        with Dispatcher.from_config(config) as d:
            summary = d.campaign("price_change", people(total), sample_data("price_change"), campaign_id="k", now=NOW)
            assert summary.queued == total
        first = start_worker(config, processes=1, threads=4, relay_interval=None, log=tmp_path / "w1.log")
        try:
            wait_until(lambda: len(sink.recorder.message_ids) >= 150, 120, interval=0.02, what="150 emails")
        finally:
            stop(first, signal.SIGKILL)
        at_kill = len(sink.recorder.message_ids)
        assert at_kill < total, "the worker finished before it could be killed; make the campaign bigger"
        started = time.monotonic()
        second = start_worker(config, processes=1, threads=4, relay_interval=None, log=tmp_path / "w2.log")
        try:
            with Dispatcher.from_config(config) as d:
                wait_until(lambda: d.store.status_counts().get("sent") == total, 180, what=f"{total} deliveries")
                recovered = time.monotonic() - started
                expected, flagged = stored_ids(d), flagged_ids(d)
                counts = d.store.status_counts()
        finally:
            stop(second)
        got = received(sink)
        doubled = {mid for mid, n in got.items() if n > 1}
        print(
            f"\n{broker}: {at_kill} sent before SIGKILL; all {total} delivered {recovered:.1f} s after a new worker "
            f"started; {len(doubled)} sent twice, {len(flagged)} flagged as possible duplicates"
        )
        assert set(got) == expected and counts == {"sent": total}
        assert max(got.values()) <= 2 and doubled <= flagged, "a re-sent message is flagged as a possible duplicate"
        assert recovered <= 120, f"the killed worker's messages took {recovered:.0f} s (issue 8 asks for 60 s)"
    finally:
        sink.stop()


# -- 2. PostgreSQL down for 20 s while two workers deliver ------------------------------------------


@pytest.mark.server
@pytest.mark.slow
def test_postgresql_down_for_20_s_loses_nothing_sends_nothing_twice_and_logs_a_handful_of_lines(
    tmp_path, redis_url, postgres_server
):
    """Two workers; one of them is stopped during the outage (it keeps its outcomes on disk) and replaced."""
    total = 1500
    store_url = postgres_server.new_database()
    sink = SmtpSink(delay=0.02).start()  # sends are in flight when the store goes away
    log = tmp_path / "workers.log"
    journal = tmp_path / ".dispatch-journal"
    workers: list[subprocess.Popen] = []
    try:
        config = smtp_config(tmp_path, store_url, redis_url, sink.port)
        with Dispatcher.from_config(config) as d:
            summary = d.campaign("price_change", people(total), sample_data("price_change"), campaign_id="pg", now=NOW)
            assert summary.queued == total
        workers = [start_worker(config, processes=1, threads=4, log=log) for _ in range(2)]
        try:
            with Dispatcher.from_config(config) as d:  # both workers are delivering when the store goes
                wait_until(lambda: len(claimers(d)) == 2, 120, interval=0.05, what="both workers claiming")
            wait_until(lambda: len(sink.recorder.message_ids) >= 200, 120, interval=0.02, what="200 emails")
            before = log.stat().st_size if log.exists() else 0
            with postgres_server.outage():
                at_stop = len(sink.recorder.message_ids)
                down = time.monotonic()
                time.sleep(3)  # what was in flight is sent by now, and its outcomes wait for the store
                stop(workers[1])  # SIGTERM: the worker exits and must keep its outcomes on local disk
                kept = sum(len(f.read_text().splitlines()) for f in journal.glob("outcomes-*.jsonl"))
                time.sleep(max(0.0, 20 - (time.monotonic() - down)))
                during = len(sink.recorder.message_ids) - at_stop
            outage_log = log_lines(log, before)
            resumed = time.monotonic()
            workers.append(start_worker(config, processes=1, threads=4, log=log))  # takes the journal in
            with Dispatcher.from_config(config) as d:
                wait_until(lambda: d.store.status_counts().get("sent") == total, 180, what=f"{total} deliveries")
                back = time.monotonic() - resumed
                expected = stored_ids(d)
                counts = d.store.status_counts()
            wait_until(lambda: not list(journal.glob("outcomes-*")), 30, what="the journal file taken in")
        finally:
            for worker in workers:
                stop(worker)
        got = received(sink)
        doubled = sum(1 for n in got.values() if n > 1)
        lost = len(expected - set(got))
        tracebacks = sum(1 for line in log_lines(log) if line.startswith("Traceback"))
        print(
            f"\nPostgreSQL outage: {at_stop} sent before, {during} accepted by SMTP while the store was down "
            f"({kept} outcomes kept on disk by the worker stopped meanwhile); all delivered {back:.1f} s after it "
            f"was back: {len(got)} delivered, {lost} lost, {doubled} doubled, statuses {counts}; "
            f"{len(outage_log)} log lines during the outage, {tracebacks} tracebacks in the whole run"
        )
        assert kept > 0, "the worker stopped during the outage kept its outcomes in the journal"
        assert lost == 0 and set(got) == expected
        assert doubled == 0, "what SMTP accepted while the store was down must not be sent again"
        assert counts == {"sent": total}, "nothing stuck in sending or queued"
        assert len(outage_log) < 50, "\n".join(outage_log[:60])
        assert tracebacks <= 2, "\n".join(log_lines(log)[:80])
    finally:
        sink.stop()


@pytest.mark.server
@pytest.mark.slow
def test_claims_whose_lease_ran_out_during_an_outage_are_not_sent_again(tmp_path, redis_url, postgres_server):
    """A 4 s lease and an 8 s outage: every claim expires while the store is down, yet what SMTP
    accepted is written first and the relay releases nothing that was sent."""
    total = 400
    store_url = postgres_server.new_database()
    sink = SmtpSink(delay=0.02).start()
    try:
        config = smtp_config(tmp_path, store_url, redis_url, sink.port, extra="[worker]\nlease = 4\n")
        with Dispatcher.from_config(config) as d:
            d.campaign("price_change", people(total), sample_data("price_change"), campaign_id="l", now=NOW)
        # The relay runs every 0.2 s: it is the first to find the store back, before the heartbeat
        # renews the claims and the journal writes the outcomes.
        worker = start_worker(config, processes=1, threads=4, relay_interval=0.2, log=tmp_path / "w.log")
        try:
            wait_until(lambda: len(sink.recorder.message_ids) >= 50, 120, interval=0.02, what="50 emails")
            with postgres_server.outage():
                time.sleep(8)
            with Dispatcher.from_config(config) as d:
                wait_until(lambda: d.store.status_counts().get("sent") == total, 120, what=f"{total} deliveries")
                expected, flagged = stored_ids(d), flagged_ids(d)
        finally:
            stop(worker)
        got = received(sink)
        assert set(got) == expected and max(got.values()) == 1, "nothing sent twice"
        assert not flagged, "no claim of a live worker was released as if it had died"
    finally:
        sink.stop()


# -- 3. the SMTP server down for 20 s mid-run --------------------------------------------------------


@pytest.mark.server
@pytest.mark.slow
def test_smtp_down_for_20_s_mid_run_then_everything_is_delivered(tmp_path, redis_url, postgres_url):
    total = 400
    sink = SmtpSink(delay=0.02).start()
    backoff = "min_backoff_ms = 1000\nmax_backoff_ms = 5000\nmax_retries = 30\n"
    try:
        config = smtp_config(tmp_path, postgres_url, redis_url, sink.port)
        text = config.read_text(encoding="utf-8")
        text = re.sub(r"min_backoff_ms = \d+\nmax_backoff_ms = \d+\nmax_retries = \d+\n", backoff, text)
        config.write_text(text, encoding="utf-8")
        worker = start_worker(config, processes=1, threads=4, log=tmp_path / "w.log")
        try:
            with Dispatcher.from_config(config) as d:
                d.campaign("price_change", people(total), sample_data("price_change"), campaign_id="s", now=NOW)
                wait_until(lambda: len(sink.recorder.message_ids) >= 50, 120, interval=0.02, what="50 emails")
                sink.stop()
                time.sleep(20)
                sink.start()
                wait_until(lambda: d.store.status_counts().get("sent") == total, 180, what=f"{total} deliveries")
                expected, flagged = stored_ids(d), flagged_ids(d)
                assert d.store.dead_letters() == []
                retried = sum(1 for a in d.store.attempts_for(sorted(expected)).values() if len(a) > 1)
        finally:
            stop(worker)
        got = received(sink)
        assert set(got) == expected
        doubled = {mid for mid, n in got.items() if n > 1}
        # Only a message whose 250 was lost as the server stopped can arrive twice.
        assert len(doubled) <= 4 and max(got.values()) <= 2
        assert retried > 0, "some messages met the outage and were retried"
        print(f"\nSMTP outage: {retried} messages retried, {len(doubled)} doubled, flagged {len(flagged)}")
    finally:
        sink.stop()


# -- 4. scripts without a main guard on the embedded default ------------------------------------------


EMAIL_SCRIPT = """
import dispatch
from dispatch.samples import sample_data, sample_recipient

for i in range(2):
    person = {**sample_recipient("fi", "FI"), "id": f"C-{i}"}
    receipt = dispatch.dispatch("price_change", person, sample_data("price_change"), idempotency_key=f"guardless-{i}")
    print(receipt.status, receipt.channel)
"""


@pytest.mark.slow
def test_a_script_without_a_main_guard_sends_one_email_per_call_and_exits(tmp_path):
    (tmp_path / "dispatch.toml").write_text('[links]\nsecret = "s"\n', encoding="utf-8")
    (tmp_path / "send.py").write_text(textwrap.dedent(EMAIL_SCRIPT), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")}
    env["PYTHONPATH"] = os.pathsep.join(str(ROOT / p) for p in ("src", "plugins"))
    done = subprocess.run(
        [sys.executable, "send.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["queued", "email"] * 2
    with sqlite3.connect(tmp_path / "dispatch.db") as db:
        rows = db.execute("SELECT recipient_id, channel, status FROM messages ORDER BY recipient_id").fetchall()
    assert rows == [("C-0", "email", "sent"), ("C-1", "email", "sent")]
    assert len(list((tmp_path / "outbox" / "email").glob("*.eml"))) == 2


# -- 5. no thread of a dispatcher outlives close() ----------------------------------------------------


LETTER_ADDRESS = {"name": "Matti Meikäläinen", "street": "Mannerheimintie 12", "postal_code": "00100", "city": "Turku"}


def _cycles(make: Callable[[], Dispatcher], channel: str = "email", times: int = 5) -> list[threading.Thread]:
    """Threads alive after ``times`` × (create, dispatch one message, close) that were not alive before."""
    before = set(threading.enumerate())
    for i in range(times):
        d = make()
        try:
            person = {**sample_recipient("fi", "FI"), "id": f"C-{i}"}
            if channel == "letter":
                person |= {"email": None, "address": LETTER_ADDRESS, "preferred_channels": {"default": "letter"}}
            receipt = d.dispatch("price_change", person, sample_data("price_change"), now=NOW)
            assert (receipt.status, receipt.channel) == ("queued", channel)
        finally:
            d.close()
    deadline = time.monotonic() + 10  # a thread told to stop may take a moment to end
    while time.monotonic() < deadline:
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not left:
            return []
        time.sleep(0.1)
    return left


@pytest.mark.parametrize(("channel", "made"), [("email", "*.eml"), ("letter", "*.pdf")])
def test_no_thread_outlives_close_on_the_embedded_default(tmp_path, channel, made):
    """Letters are typeset on threads of their own: those end with close() too."""

    def make() -> Dispatcher:
        return Dispatcher.from_config(
            overrides={"links": {"secret": "s"}, "store": {"url": f"sqlite:///{tmp_path / 'dispatch.db'}"}}
        )

    left = _cycles(make, channel)
    assert not left, f"threads alive after close(): {sorted(t.name for t in left)}"
    assert len(list((tmp_path / "outbox" / channel).glob(made))) == 5


@pytest.mark.server
def test_no_thread_outlives_close_on_redis_and_postgresql(tmp_path, redis_url, postgres_url):
    def make() -> Dispatcher:
        return Dispatcher.from_config(
            overrides={"links": {"secret": "s"}, "store": {"url": postgres_url}, "broker": {"url": redis_url}}
        )

    left = _cycles(make)
    assert not left, f"threads alive after close(): {sorted(t.name for t in left)}"


# -- 6. decide() has no side effects -------------------------------------------------------------------


def test_decide_in_an_empty_folder_leaves_it_empty(tmp_path):
    with Dispatcher.from_config() as d:  # the embedded default, in this (empty) folder
        decision = d.decide("price_change", sample_recipient("fi", "FI"), sample_data("price_change"), now=NOW)
        assert decision.allowed and decision.channel == "email"
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_decide_does_not_deliver_what_an_earlier_run_left_but_join_does(tmp_path):
    from servers import free_port

    store = {"url": f"sqlite:///{tmp_path / 'dispatch.db'}"}
    # An earlier run whose broker was unreachable: its message stays queued in the store.
    with Dispatcher.from_config(
        overrides={"store": store, "broker": {"url": f"redis://127.0.0.1:{free_port()}/0"}, "links": {"secret": "s"}}
    ) as earlier:
        left = earlier.dispatch("price_change", sample_recipient("fi", "FI"), sample_data("price_change"), now=NOW)
        assert left.status == "queued"
    outbox = tmp_path / "outbox" / "email"
    d = Dispatcher.from_config(overrides={"store": store, "links": {"secret": "s"}})
    try:
        person = {**sample_recipient("fi", "FI"), "id": "C-2"}
        assert d.decide("price_change", person, sample_data("price_change"), now=NOW).allowed
        time.sleep(1)  # a worker started by decide() would have delivered by now
        assert not outbox.exists(), "decide() delivered a message left by an earlier run"
        assert d.join(60)
        assert d.store.message(left.message_id, content=False)["status"] == "sent"
        assert [p.name for p in outbox.glob("*.eml")] != []
    finally:
        d.close()


# -- 7. a bug in a channel, hit by a whole batch -------------------------------------------------------


class Broken(Channel):
    """A channel with a programming error: every delivery raises TypeError."""

    name = "broken"
    parts = {"text": "broken.txt"}  # noqa: RUF012
    address_kind = "email"
    calls = 0

    async def deliver(self, message):
        Broken.calls += 1
        await asyncio.sleep(0.05 * Broken.calls)  # the failures come in one by one, not all at once
        return 1 + "1"  # the bug


class BrokenPlugin:
    @hookimpl
    def dispatch_channels(self, register):
        register(Broken)


def test_a_bug_in_a_channel_fails_a_whole_batch_once_with_one_traceback(tmp_path, caplog):
    Broken.calls = 0
    for language in ("fi", "en"):
        folder = tmp_path / "tpl" / language / "reminder"
        folder.mkdir(parents=True)
        (folder / "broken.txt").write_text("Reminder to {{ recipient.id }}", encoding="utf-8")
    d = Dispatcher.from_config(
        overrides={
            "store": {"url": f"sqlite:///{tmp_path / 'dispatch.db'}"},
            "outbox": str(tmp_path / "outbox"),
            "links": {"secret": "s"},
            "templates": {"paths": [str(tmp_path / "tpl")]},
            "message_types": {"reminder": {"category": "service", "channels": ["broken"]}},
        },
        plugins=[BrokenPlugin()],
    )
    try:
        caplog.set_level(logging.WARNING)
        summary = d.campaign("reminder", people(6), {}, campaign_id="bug", now=NOW)
        assert summary.queued == 6
        assert d.join(60)
        counts = d.store.status_counts()
        rows = [d.store.message(m["id"], content=False) for i in range(6) for m in d.store.messages_for(f"C-{i}")]
    finally:
        d.close()
    assert counts == {"failed": 6}
    assert all(r["attempts"] == 1 and "TypeError" in r["error"] for r in rows)
    assert Broken.calls == 6, "a bug is not retried"
    tracebacks = [r for r in caplog.records if r.exc_info and r.name.startswith("dispatch")]
    assert len(tracebacks) == 1, [r.getMessage() for r in tracebacks]
