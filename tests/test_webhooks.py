"""Signed webhooks from a durable outbox (issue 10 item 4, SPEC §10).

Events are POSTed to a real local HTTP receiver (tests/webhook_receiver.py) that checks
each signature with its own code, and are checked again with the ``standardwebhooks``
library. The receiver is down for part of a run, rejects a wrong secret, answers 410,
and the dispatcher restarts in between: nothing is lost, nothing carries personal data.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks
from click.testing import CliRunner
from log_privacy import PERSONAL
from prometheus_client import REGISTRY
from scale_helpers import start_worker, stop, wait_until, write_config
from servers import free_port
from web_helpers import ROOT
from webhook_receiver import Receiver

from dispatch import Dispatcher
from dispatch.cli import cli
from dispatch.errors import ConfigError, StoreError
from dispatch.events import Event
from dispatch.journal import StoreHealth
from dispatch.samples import sample_data, sample_recipient
from dispatch.webhooks import EventOutbox, WebhookVerificationError, counts, generate_secret, sign, verify
from dispatch.webhooks import sender as webhook_sender

SECRET = generate_secret()
FAST = {"min_backoff": 0.05, "max_backoff": 0.3, "poll_interval": 0.05, "timeout": 5.0, "drain_timeout": 2.0}


@pytest.fixture(autouse=True)
def _no_env_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPATCH_WEBHOOK_SECRET", raising=False)


@pytest.fixture
def receiver() -> Any:
    server = Receiver(SECRET).start()
    yield server
    server.stop()


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def webhooks(*endpoints: str, **settings: Any) -> dict[str, Any]:
    return {"webhooks": {"endpoints": list(endpoints), "secret": SECRET, **FAST, **settings}}


def people(count: int, start: int = 0) -> list[dict[str, Any]]:
    base = sample_recipient("fi", "FI")
    return [{**base, "id": f"C-{i}", "email": f"c{i}@example.fi"} for i in range(start, start + count)]


class Recorder:
    """Every event the dispatcher emitted (an EventBus subscriber)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def ids(self) -> set[str]:
        with self._lock:
            return {e.id for e in self.events}


# -- signing ---------------------------------------------------------------------------------


def test_signatures_are_those_of_the_standard_webhooks_library():
    body = b'{"id":"evt_1","type":"message.sent"}'
    headers = sign(SECRET, "evt_1", body)
    assert headers["webhook-signature"].startswith("v1,")
    assert standardwebhooks.Webhook(SECRET).verify(body, headers) == json.loads(body)
    theirs = standardwebhooks.Webhook(SECRET)
    stamp = datetime.now(UTC)
    their_headers = {
        "webhook-id": "evt_2",
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": theirs.sign("evt_2", stamp, body.decode()),
    }
    verify(SECRET, their_headers, body)  # does not raise
    verify(SECRET, {k.upper(): v for k, v in their_headers.items()}, body)  # any header case


@pytest.mark.parametrize(
    "change",
    [
        lambda h, b: (h, b + b" "),  # body changed
        lambda h, b: ({**h, "webhook-id": "evt_other"}, b),  # id changed
        lambda h, b: ({**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) - 1)}, b),
        lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b),
        lambda h, b: ({**h, "webhook-signature": "v2," + h["webhook-signature"][3:]}, b),
    ],
)
def test_a_tampered_webhook_is_refused(change):
    body = b'{"id":"evt_1"}'
    headers, body = change(sign(SECRET, "evt_1", body), body)
    with pytest.raises(WebhookVerificationError):
        verify(SECRET, headers, body)


def test_old_timestamps_and_other_secrets_are_refused():
    body = b"{}"
    old = sign(SECRET, "evt_1", body, timestamp=int(time.time()) - 301)
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify(SECRET, old, body)
    verify(SECRET, old, body, tolerance=600)
    with pytest.raises(WebhookVerificationError, match="matches"):
        verify(generate_secret(), sign(SECRET, "evt_1", body), body)
    rotated = sign(SECRET, "evt_1", body)
    rotated["webhook-signature"] = (
        sign(generate_secret(), "evt_1", body)["webhook-signature"] + " " + (rotated["webhook-signature"])
    )
    verify(SECRET, rotated, body)  # one of several signatures matching is enough


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ({"endpoints": ["http://crm.example.fi/hooks"], "secret": SECRET}, "https"),
        ({"endpoints": ["ftp://crm.example.fi/hooks"], "secret": SECRET}, "http(s) URL"),
        ({"endpoints": ["https://crm.example.fi/hooks"]}, "DISPATCH_WEBHOOK_SECRET"),
        ({"endpoints": ["https://crm.example.fi/hooks"], "secret": "whsec_c2hvcnQ="}, "bytes"),
        ({"endpoints": ["https://crm.example.fi/hooks"], "secret": "whsec_%%%"}, "base64"),
        ({"secret": SECRET, "events": ["message.lost"]}, "message.lost"),
        ({"secret": SECRET, "retries": 3}, "webhooks.retries"),
        ({"secret": SECRET, "min_backoff": 10, "max_backoff": 1}, "max_backoff"),
    ],
)
def test_bad_webhook_settings_are_named(make_dispatcher, section, words):
    with pytest.raises(ConfigError) as caught:
        make_dispatcher({"webhooks": section})
    assert words in str(caught.value)


def test_plain_http_is_for_this_machine_unless_allowed(make_dispatcher, monkeypatch):
    make_dispatcher({"webhooks": {"endpoints": ["http://localhost:9/h", "http://[::1]:9/h"], "secret": SECRET}})
    make_dispatcher({"webhooks": {"endpoints": ["http://crm.internal/h"], "secret": SECRET, "allow_http": True}})
    monkeypatch.setenv("DISPATCH_WEBHOOK_SECRET", SECRET)
    d = make_dispatcher({"webhooks": {"endpoints": ["https://crm.example.fi/h"]}})
    assert d.config.webhooks.secret == SECRET


def test_without_endpoints_nothing_is_written(make_dispatcher, receiver):
    d = make_dispatcher()
    d.dispatch("price_change", people(1)[0], sample_data("price_change"))
    assert d.join(30)
    assert d.runtime.webhooks is None
    assert counts(d.store) == {}
    assert receiver.requests == 0


# -- delivery --------------------------------------------------------------------------------


def test_every_event_reaches_a_receiver_that_was_down_for_part_of_the_run(make_dispatcher, receiver):
    d = make_dispatcher(webhooks(receiver.url))
    recorder = Recorder()
    d.events.subscribe(recorder)
    data = sample_data("price_change")
    for person in people(5):
        d.dispatch("price_change", person, data)
    assert d.join(30)
    wait_for(lambda: set(receiver.ids()) >= recorder.ids())
    receiver.stop()  # the receiver goes away: nothing must be lost
    for person in people(20, start=5):
        d.dispatch("price_change", person, data)
    assert d.join(30)
    wait_for(lambda: counts(d.store).get("pending", 0) > 0)
    wait_for(lambda: d.store.status_counts() == {"sent": 25})
    receiver.start()  # same port, back up
    wait_for(lambda: set(receiver.ids()) >= recorder.ids())
    wait_for(lambda: counts(d.store) == {"delivered": len(recorder.ids())})
    assert set(receiver.ids()) == recorder.ids()
    assert len(recorder.ids()) == 25 * 3  # queued, sending, sent
    # Each body is what the library verifies, with the payload shape of SPEC §10 and ids only.
    library = standardwebhooks.Webhook(SECRET)
    for headers, body, payload in receiver.received:
        assert library.verify(body, headers) == payload
        assert set(payload) == {"id", "type", "timestamp", "data"}
        assert payload["id"] == headers["webhook-id"]
        assert not PERSONAL.search(body.decode()), body
        assert "Virtanen" not in body.decode() and "Aino" not in body.decode()
    by_message: dict[str, list[str]] = {}
    for payload in receiver.payloads():
        by_message.setdefault(payload["data"]["message_id"], []).append(payload["type"])
    assert all(sorted(types) == ["message.queued", "message.sending", "message.sent"] for types in by_message.values())


def test_a_receiver_with_another_secret_rejects_and_the_events_wait(make_dispatcher, receiver):
    stranger = Receiver(generate_secret()).start()
    try:
        d = make_dispatcher(webhooks(receiver.url, stranger.url))
        recorder = Recorder()
        d.events.subscribe(recorder)
        d.dispatch("price_change", people(1)[0], sample_data("price_change"))
        assert d.join(30)
        wait_for(lambda: set(receiver.ids()) == recorder.ids() and len(recorder.ids()) == 3)
        wait_for(lambda: stranger.rejected >= 6)  # each event tried, and retried
        assert stranger.received == []
        assert counts(d.store) == {"delivered": 3, "pending": 3}
    finally:
        stranger.stop()


def test_the_outbox_survives_a_restart(make_dispatcher, receiver):
    receiver.stop()
    d = make_dispatcher(webhooks(receiver.url))
    recorder = Recorder()
    d.events.subscribe(recorder)
    data = sample_data("price_change")
    for person in people(4):
        d.dispatch("price_change", person, data)
    d.close()
    assert not [t for t in threading.enumerate() if t.name.startswith(("dispatch-", "asyncio_"))]
    again = make_dispatcher(webhooks(receiver.url))
    assert counts(again.store) == {"pending": 12}
    receiver.start()
    again.runtime.start_webhooks()  # what a worker or `serve` does
    wait_for(lambda: counts(again.store) == {"delivered": 12})
    assert set(receiver.ids()) == recorder.ids()
    assert len(receiver.ids()) == 12  # each once


def test_events_of_one_message_sent_together_arrive_in_order(make_dispatcher, receiver):
    receiver.stop()
    d = make_dispatcher(webhooks(receiver.url))
    at = datetime(2027, 5, 1, 9, tzinfo=UTC)
    events = [
        Event(kind, at + timedelta(seconds=i), {"message_id": "01JMSG", "status": kind.split(".")[1]})
        for i, kind in enumerate(["message.queued", "message.sending", "message.sent", "message.delivered"])
    ]
    d.events.emit(reversed(events))  # recorded out of order
    d.runtime.webhooks.flush()
    d.runtime.start_webhooks()
    wait_for(lambda: counts(d.store).get("pending") == 4 and d.runtime.webhooks.sender.running)
    time.sleep(0.3)  # a few failed rounds against the closed port
    receiver.start()
    wait_for(lambda: len(receiver.ids()) == 4)
    assert receiver.ids() == [e.id for e in events]


def test_410_gone_ends_that_delivery(make_dispatcher):
    dead_before = REGISTRY.get_sample_value("dispatch_webhooks_total", {"outcome": "dead"}) or 0
    gone = Receiver(SECRET, status=410).start()
    try:
        d = make_dispatcher(webhooks(gone.url))
        d.events.emit([Event("consent.changed", datetime.now(UTC), {"recipient_id": "C-1", "granted": False})])
        d.runtime.start_webhooks()
        wait_for(lambda: counts(d.store) == {"dead": 1})
        assert gone.requests == 1
        assert REGISTRY.get_sample_value("dispatch_webhooks_total", {"outcome": "dead"}) == dead_before + 1
    finally:
        gone.stop()


def test_too_old_events_are_given_up(make_dispatcher, receiver):
    receiver.stop()
    d = make_dispatcher(webhooks(receiver.url, max_age=0.5))
    d.events.emit([Event("notice.late", datetime.now(UTC), {"message_id": "01JLATE"})])
    d.runtime.start_webhooks()
    wait_for(lambda: counts(d.store) == {"dead": 1})


def test_only_the_listed_event_types_are_sent(make_dispatcher, receiver):
    d = make_dispatcher(webhooks(receiver.url, events=["message.sent"]))
    d.dispatch("price_change", people(1)[0], sample_data("price_change"))
    assert d.join(30)
    wait_for(lambda: len(receiver.ids()) == 1)
    d.close()
    assert [p["type"] for p in receiver.payloads()] == ["message.sent"]


def test_personal_data_in_a_cause_never_leaves(make_dispatcher, receiver):
    d = make_dispatcher(webhooks(receiver.url))
    cause = "550 5.1.1 <aino.virtanen@example.fi>: no such user; sms +358401234567 unreachable"
    d.events.emit([Event("message.bounced", datetime.now(UTC), {"message_id": "01JB", "cause": cause})])
    d.runtime.start_webhooks()
    wait_for(lambda: len(receiver.ids()) == 1)
    body = receiver.received[0][1].decode()
    assert not PERSONAL.search(body)
    assert "550 5.1.1" in json.loads(body)["data"]["cause"]


def test_secret_generation_makes_valid_secrets():
    secret = generate_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    standardwebhooks.Webhook(secret)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.server)])
def test_two_senders_on_one_store_post_each_event_once(
    make_dispatcher, receiver, backend, request, tmp_path, monkeypatch
):
    monkeypatch.setattr(webhook_sender, "BATCH", 50)  # many rounds, so that both senders take part
    receiver.delay = 0.05
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else f"sqlite:///{tmp_path / 'two.db'}"
    first = make_dispatcher({**webhooks(receiver.url), "store": {"url": url}})
    second = make_dispatcher({**webhooks(receiver.url), "store": {"url": url}})
    at = datetime.now(UTC)
    events = [Event("message.sent", at, {"message_id": f"01J{i:05d}"}) for i in range(600)]
    first.runtime.start_webhooks()
    second.runtime.start_webhooks()
    first.events.emit(events)
    first.runtime.webhooks.flush()
    wait_for(lambda: counts(first.store) == {"delivered": 600}, timeout=60)
    assert sorted(set(receiver.ids())) == sorted(e.id for e in events)
    # Every POST is one recorded attempt: a row two senders had claimed at once would be POSTed
    # twice but recorded once (only its last claimant's answer counts). Retries after a timeout
    # the receiver did not see are allowed (at least once; receivers drop repeated webhook-ids).
    with first.store.engine.connect() as conn:
        attempts = conn.exec_driver_sql("SELECT SUM(attempts) FROM webhook_deliveries").scalar()
    assert receiver.requests == attempts
    shares = [first.runtime.webhooks.sender.sent, second.runtime.webhooks.sender.sent]
    assert sum(shares) == 600 and min(shares) > 0  # both took part


def test_events_wait_in_memory_and_in_a_file_while_the_store_is_down(make_dispatcher, receiver, tmp_path):
    def unreachable() -> Any:
        raise StoreError("cannot open the store at postgresql://db/dispatch: connection refused")

    folder = tmp_path / ".dispatch-journal"  # [worker] journal
    outbox = EventOutbox([receiver.url], [], unreachable, StoreHealth(), folder)
    events = [Event("message.sent", datetime.now(UTC), {"message_id": f"01JD{i}"}) for i in range(5)]
    for event in events:
        outbox.add(event)
    assert outbox.flush() == 0 and len(outbox) == 5  # kept in memory
    outbox.close()  # the process ends while the store is still down: the rows go to a file
    assert len(list(folder.glob("webhooks-*.jsonl"))) == 1
    d = make_dispatcher(webhooks(receiver.url))
    d.runtime.start_webhooks()  # the next sending process finds the file once the store answers
    wait_for(lambda: sorted(receiver.ids()) == sorted(e.id for e in events))
    wait_for(lambda: counts(d.store) == {"delivered": 5})
    assert not list(folder.glob("webhooks-*"))


def test_a_dispatcher_that_recorded_nothing_opens_no_store(make_dispatcher, tmp_path):
    d = make_dispatcher(webhooks("https://crm.example.fi/hooks"))
    d.close()
    assert not (tmp_path / "dispatch.db").exists()


def test_the_receiver_check_in_the_docs_works():
    """docs/webhooks.md's ten-line check accepts dispatch's webhooks and refuses forgeries."""
    docs = (Path(__file__).parents[1] / "docs" / "webhooks.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", docs, flags=re.DOTALL)
    standalone = next(b for b in blocks if "def genuine" in b)
    namespace: dict[str, Any] = {}
    exec(standalone, namespace)
    body = b'{"id":"evt_1","type":"consent.changed"}'
    headers = sign(SECRET, "evt_1", body)
    assert namespace["genuine"](SECRET, headers, body)
    assert not namespace["genuine"](SECRET, headers, body.replace(b"consent", b"CONSENT"))
    assert not namespace["genuine"](generate_secret(), headers, body)
    stale = sign(SECRET, "evt_1", body, timestamp=int(time.time()) - 3600)
    assert not namespace["genuine"](SECRET, stale, body)


def test_a_consent_change_is_a_webhook(make_dispatcher, receiver):
    d = make_dispatcher(webhooks(receiver.url))
    d.consents.record("C-77", "marketing", False, channel="email", source="preference_centre")
    d.runtime.start_webhooks()
    wait_for(lambda: len(receiver.ids()) == 1)
    payload = receiver.payloads()[0]
    assert payload["type"] == "consent.changed"
    assert payload["data"]["recipient_id"] == "C-77" and payload["data"]["granted"] is False


@pytest.mark.server
@pytest.mark.slow
def test_worker_processes_send_what_every_process_recorded(tmp_path, redis_url, postgres_url, receiver):
    """Scale-out: a campaign's process records ``queued``, `dispatch worker` processes the rest, and POST all."""
    receiver.stop()
    extra = (
        f'[webhooks]\nendpoints = ["{receiver.url}"]\nsecret = "{SECRET}"\n'
        "min_backoff = 0.05\nmax_backoff = 0.5\npoll_interval = 0.05\n"
    )
    config = write_config(
        tmp_path / "dispatch.toml", store=postgres_url, broker=redis_url, outbox=tmp_path / "o", extra=extra
    )
    with Dispatcher.from_config(config) as d:
        d.campaign("price_change", people(30), sample_data("price_change"), campaign_id="pc")
    worker = start_worker(config, processes=2, threads=4, log=tmp_path / "worker.log")
    try:
        with Dispatcher.from_config(config) as d:
            wait_until(lambda: d.store.status_counts() == {"sent": 30}, 60, what="30 deliveries")
            wait_until(lambda: counts(d.store) == {"pending": 90}, 30, what="90 webhooks waiting")
    finally:
        stop(worker)
    assert worker.returncode == 0
    receiver.start()
    worker = start_worker(config, processes=1, threads=2, log=tmp_path / "worker.log")
    try:
        with Dispatcher.from_config(config) as d:
            wait_until(lambda: counts(d.store) == {"delivered": 90}, 60, what="90 webhooks delivered")
    finally:
        stop(worker)
    assert len(set(receiver.ids())) == 90
    types: dict[str, list[str]] = {}
    for payload in receiver.payloads():
        types.setdefault(payload["data"]["message_id"], []).append(payload["type"])
    assert len(types) == 30
    assert all(sorted(t) == ["message.queued", "message.sending", "message.sent"] for t in types.values())
    assert "Traceback" not in (tmp_path / "worker.log").read_text(encoding="utf-8")


@pytest.mark.slow
def test_dispatch_serve_sends_what_other_processes_recorded(tmp_path, receiver):
    port = free_port()
    config = tmp_path / "dispatch.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "d.db"}"\n[links]\nbase_url = "http://127.0.0.1:{port}"\n'
        f'[webhooks]\nendpoints = ["{receiver.url}"]\nsecret = "{SECRET}"\npoll_interval = 0.1\n',
        encoding="utf-8",
    )
    with Dispatcher.from_config(config) as d:  # a process that records, but does not send
        d.consents.record("C-5", "newsletter", True, channel="email", source="web_form")
    assert receiver.requests == 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("src", "plugins"))}
    command = [sys.executable, "-c", "from dispatch.cli import main; main()", "--config", str(config), "serve"]
    process = subprocess.Popen(
        [*command, "--port", str(port)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        wait_for(lambda: len(receiver.ids()) == 1 or process.poll() is not None, timeout=60)
        assert process.poll() is None, process.stdout.read().decode()
        assert receiver.payloads()[0]["type"] == "consent.changed"
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0].decode()
        assert process.returncode == 0 and "Traceback" not in output, output
    finally:
        if process.poll() is None:
            process.kill()


def test_operators_see_and_retry_what_was_given_up(tmp_path, receiver):
    receiver.stop()
    config = tmp_path / "dispatch.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "d.db"}"\n'
        f'[webhooks]\nendpoints = ["{receiver.url}"]\nsecret = "{SECRET}"\n'
        "min_backoff = 0.05\nmax_backoff = 0.1\nmax_age = 0.3\npoll_interval = 0.05\n",
        encoding="utf-8",
    )
    event = Event("message.bounced", datetime.now(UTC), {"message_id": "01JBOUNCE"})
    with Dispatcher.from_config(config) as d:
        d.events.emit([event])
        d.runtime.start_webhooks()
        wait_for(lambda: counts(d.store) == {"dead": 1})
    runner = CliRunner()
    shown = runner.invoke(cli, ["--config", str(config), "webhooks", "status"])
    assert shown.exit_code == 0, shown.output
    assert event.id in shown.output and "message.bounced" in shown.output and "ClientConnectorError" in shown.output
    receiver.start()
    again = runner.invoke(cli, ["--config", str(config), "webhooks", "retry", "--event", event.id])
    assert again.exit_code == 0 and "1 webhook" in again.output, again.output
    with Dispatcher.from_config(config) as d:
        assert counts(d.store) == {"pending": 1}
        d.runtime.start_webhooks()
        wait_for(lambda: counts(d.store) == {"delivered": 1})
    assert receiver.ids() == [event.id]
    made = runner.invoke(cli, ["webhooks", "secret"])
    assert made.exit_code == 0 and standardwebhooks.Webhook(made.output.strip())


def test_a_later_event_of_a_message_waits_for_an_earlier_one_that_failed(make_dispatcher, receiver):
    receiver.status = 503
    d = make_dispatcher(webhooks(receiver.url))
    d.runtime.start_webhooks()
    at = datetime.now(UTC)
    queued = Event("message.queued", at, {"message_id": "01JORDER"})
    sent = Event("message.sent", at + timedelta(seconds=1), {"message_id": "01JORDER"})
    other = Event("message.sent", at + timedelta(seconds=1), {"message_id": "01JOTHER"})
    d.events.emit([queued])
    wait_for(lambda: receiver.attempted.count(queued.id) >= 1)  # refused: it will be retried
    d.events.emit([sent, other])
    wait_for(lambda: receiver.attempted.count(queued.id) >= 3 and other.id in receiver.attempted)
    assert sent.id not in receiver.attempted  # held behind the failing earlier event of its message
    receiver.status = 204
    wait_for(lambda: len(receiver.ids()) == 3)
    assert receiver.ids().index(queued.id) < receiver.ids().index(sent.id)
    assert receiver.attempted.count(sent.id) == 1


def test_the_example_request_in_the_docs_is_signed_with_the_example_secret():
    docs = (Path(__file__).parents[1] / "docs" / "webhooks.md").read_text(encoding="utf-8")
    secret = re.search(r'secret = "(whsec_[^"]+)"', docs).group(1)
    request = re.search(r"```http\n(.*?)```", docs, flags=re.DOTALL).group(1)
    head, body = request.split("\n\n", 1)
    headers = dict(line.split(": ", 1) for line in head.splitlines()[1:])
    raw = body.strip().encode()
    verify(secret, headers, raw, now=int(headers["webhook-timestamp"]))
    payload = json.loads(raw)
    assert set(payload) == {"id", "type", "timestamp", "data"} and payload["id"] == headers["webhook-id"]
