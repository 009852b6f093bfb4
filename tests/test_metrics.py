"""Prometheus metrics (SPEC §12) scraped over HTTP after a small run: `dispatch serve` and worker processes."""

from __future__ import annotations

import json
import socket
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from scale_helpers import stop, wait_until, write_config
from servers import free_port
from web_helpers import LiveServer

from dispatch import Dispatcher
from dispatch.feedback import FeedbackKind, ProviderEvent
from dispatch.samples import sample_data, sample_recipient
from dispatch.store import now_utc
from dispatch.web import create_app

NOW = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)
DASHBOARD = Path(__file__).resolve().parents[1] / "docs" / "grafana" / "dispatch.json"


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return response.read().decode("utf-8")


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels`` (0 when there are none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def person(i: int, **extra):
    return {**sample_recipient("fi", "FI"), "id": f"C-{i}", "email": f"c{i}@example.fi", **extra}


def test_serve_metrics_count_decisions_suppressions_sends_latency_and_queue_depth(dispatcher):
    server = LiveServer(create_app(dispatcher)).start()
    try:
        before = scrape(f"{server.base}/metrics")
        receipts = [
            dispatcher.dispatch("price_change", person(i), sample_data("price_change"), now=NOW) for i in range(3)
        ]
        dispatcher.dispatch("newsletter", person(9, newsletter=False), sample_data("newsletter"), now=NOW)
        assert dispatcher.join(60)
        for receipt, kind in zip(receipts, (FeedbackKind.DELIVERED, FeedbackKind.BOUNCED), strict=False):
            report = ProviderEvent(
                kind, "email", now_utc(), message_id=receipt.message_id, permanent=True, source="dsn"
            )
            dispatcher.handle_feedback(report)  # the provider's later word, as serve's listener hands it over
        night = datetime(2027, 1, 11, 21, 30, tzinfo=UTC)  # 23:30 in Helsinki: SMS marketing is held until 08:00
        sms = person(5, preferred_channels={"marketing": "sms"})
        held = dispatcher.dispatch("marketing", sms, sample_data("marketing"), now=night)
        assert held.channel == "sms" and held.send_after is not None
        after = scrape(f"{server.base}/metrics")
    finally:
        server.stop()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    decided = {"message_type": "price_change", "channel": "email", "allowed": "true"}
    assert delta("dispatch_decisions_total", **decided) == 3
    assert delta("dispatch_decisions_total", message_type="newsletter", allowed="false") == 1
    assert delta("dispatch_suppressed_total", reason="unsubscribed") == 1
    assert delta("dispatch_messages_total", status="sent", channel="email") == 3
    assert delta("dispatch_messages_total", status="queued", channel="email") == 3
    assert delta("dispatch_delivery_latency_seconds_count", channel="email") == 3
    assert delta("dispatch_messages_total", status="delivered", channel="email") == 1
    assert delta("dispatch_messages_total", status="bounced", channel="email") == 1
    assert value(after, "dispatch_queue_depth", channel="sms") == 1  # held for the morning, still open
    assert value(after, "dispatch_queue_depth", channel="email") == 0
    assert "dispatch_queue_oldest_age_seconds" in after


@pytest.mark.server
def test_each_worker_process_serves_its_own_metrics_on_port_plus_index(tmp_path, redis_url):
    port = two_free_ports()
    extra = f"[worker]\nmetrics_port = {port}\n"
    config = write_config(
        tmp_path / "dispatch.toml",
        store=f"sqlite:///{tmp_path / 'd.db'}",
        broker=redis_url,
        outbox=tmp_path / "out",
        extra=extra,
    )
    hour_ago = now_utc() - timedelta(hours=1)
    with Dispatcher.from_config(config) as d:
        d.campaign(
            "price_change", [person(i) for i in range(6)], sample_data("price_change"), campaign_id="pc", now=NOW
        )
        letter = person(7, preferred_channels={"price_change": "letter"})
        assert d.dispatch("price_change", letter, sample_data("price_change"), now=hour_ago).channel == "letter"
    log = tmp_path / "worker.log"
    worker = _worker(config, log)
    try:
        with Dispatcher.from_config(config) as d:
            wait_until(lambda: d.store.status_counts().get("sent") == 6, 60, what="6 deliveries")
        urls = [f"http://127.0.0.1:{port + index}/metrics" for index in (0, 1)]
        texts = wait_until(lambda: _scrape_all(urls), 30, what="both processes' /metrics")
    finally:
        stop(worker)
    assert f"metrics http://127.0.0.1:{port}-{port + 1}/metrics" in log.read_text(encoding="utf-8")
    assert sum(value(t, "dispatch_messages_total", status="sent", channel="email") for t in texts) == 6
    assert sum(value(t, "dispatch_delivery_latency_seconds_count", channel="email") for t in texts) == 6
    assert sum(value(t, "dispatch_queue_messages_total", outcome="ok") for t in texts) >= 1
    for text in texts:  # read from the store at scrape time: the letter nobody serves here waits
        assert value(text, "dispatch_queue_depth", channel="letter") == 1
        assert value(text, "dispatch_queue_oldest_age_seconds") >= 3500


def _worker(config: Path, log: Path):
    """Two processes serving only the email queues (the letter stays queued)."""
    import subprocess

    from scale_helpers import BIN

    return subprocess.Popen(
        [
            str(BIN),
            "--config",
            str(config),
            "worker",
            "--processes",
            "2",
            "--threads",
            "2",
            "--queues",
            "email,email.bulk",
        ],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def two_free_ports() -> int:
    """A port that is free, and the one after it too."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as first, socket.socket() as second:
            try:
                first.bind(("127.0.0.1", port))
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise AssertionError("no two free ports in a row")


def _scrape_all(urls: list[str]) -> list[str] | None:
    try:
        return [scrape(url) for url in urls]
    except OSError:
        return None


def test_the_sample_grafana_dashboard_uses_only_metrics_dispatch_exports():
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert expressions
    exported = {
        "dispatch_decisions_total",
        "dispatch_suppressed_total",
        "dispatch_messages_total",
        "dispatch_delivery_latency_seconds_bucket",
        "dispatch_queue_depth",
        "dispatch_queue_oldest_age_seconds",
        "dispatch_queue_messages_total",
        "dispatch_queue_messages_in_progress",
        "dispatch_web_error_pages_total",
    }
    import re

    used = {name for expr in expressions for name in re.findall(r"\bdispatch_[a-z_]+", expr)}
    assert used <= exported, used - exported
    assert {"dispatch_messages_total", "dispatch_queue_depth", "dispatch_queue_oldest_age_seconds"} <= used
