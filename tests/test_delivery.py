"""The worker side through the in-process queue: retries, bounces, fallback, opt-outs, hooks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from dispatch import Channel, DeliveryResult, hookimpl
from dispatch.errors import PermanentDeliveryError, RecipientOptedOut, TransientDeliveryError


@dataclass
class PigeonSettings:
    script: str = ""


class Pigeon(Channel):
    """A test channel whose outcomes follow a script: ok, transient, permanent, optout."""

    name = "pigeon"
    parts = {"text": "pigeon.txt"}  # noqa: RUF012
    settings_class = PigeonSettings
    address_kind = "email"
    outcomes: list[str] = []  # noqa: RUF012
    delivered: list[str] = []  # noqa: RUF012

    async def deliver(self, message):
        outcome = Pigeon.outcomes.pop(0) if Pigeon.outcomes else "ok"
        if outcome == "transient":
            raise TransientDeliveryError("451 try later", code="451")
        if outcome == "permanent":
            raise PermanentDeliveryError("550 no such user", code="550")
        if outcome == "optout":
            raise RecipientOptedOut("21610 unsubscribed", code="21610")
        Pigeon.delivered.append(message.parts["text"])
        return DeliveryResult(provider_id=f"pigeon-{len(Pigeon.delivered)}")


class Observer:
    seen: list[tuple[str, bool]] = []  # noqa: RUF012

    @hookimpl
    def dispatch_channels(self, register):
        register(Pigeon)

    @hookimpl
    def dispatch_delivery_attempted(self, message, result, error):
        Observer.seen.append((message.id, error is None))


@pytest.fixture
def pigeon_dispatcher(make_dispatcher, tmp_path: Path):
    Pigeon.outcomes, Pigeon.delivered, Observer.seen = [], [], []
    for language in ("fi", "en"):
        folder = tmp_path / "tpl" / language / "notice"
        folder.mkdir(parents=True)
        (folder / "pigeon.txt").write_text("Notice {{ day | date }} to {{ recipient.id }}", encoding="utf-8")
        (folder / "letter.html").write_text("<p>Notice {{ day | date }}</p>", encoding="utf-8")
    return make_dispatcher(
        {
            "templates": {"paths": [str(tmp_path / "tpl")]},
            "message_types": {
                "notice": {
                    "category": "statutory",
                    "fields": {"day": "date"},
                    "channels": ["pigeon", "letter"],
                    "fallback_channels": ["letter"],
                }
            },
        },
        plugins=[Observer()],
    )


PERSON = {
    "id": "C-7",
    "country": "FI",
    "email": "a@example.fi",
    "address": {"name": "Aino Virtanen", "street": "Koulukatu 1", "postal_code": "90100", "city": "Oulu"},
}


def test_a_transient_failure_is_retried_until_delivered(pigeon_dispatcher):
    Pigeon.outcomes = ["transient", "transient"]
    receipt = pigeon_dispatcher.dispatch("notice", PERSON, {"day": "2027-05-01"})
    assert receipt.channel == "pigeon" and receipt.queue == "pigeon"
    assert pigeon_dispatcher.join(30)
    stored = pigeon_dispatcher.store.message(receipt.message_id)
    assert stored["status"] == "sent" and stored["attempts"] == 3
    attempts = pigeon_dispatcher.store.attempts_for([receipt.message_id])[receipt.message_id]
    assert [a["outcome"] for a in attempts] == ["transient", "transient", "sent"]
    assert attempts[0]["detail"] == {"code": "451"}
    assert Pigeon.delivered == ["Notice 1.5.2027 to C-7"]
    assert [ok for mid, ok in Observer.seen if mid == receipt.message_id] == [False, False, True]


def test_retries_run_out_into_a_dead_letter(pigeon_dispatcher):
    Pigeon.outcomes = ["transient"] * 10
    receipt = pigeon_dispatcher.dispatch("notice", PERSON, {"day": "2027-05-01"})
    assert pigeon_dispatcher.join(30)
    stored = pigeon_dispatcher.store.message(receipt.message_id)
    assert stored["status"] == "dead"
    assert stored["attempts"] == 3  # max_retries=2 in the test configuration
    assert [r["id"] for r in pigeon_dispatcher.store.dead_letters()] == [receipt.message_id]


def test_a_statutory_bounce_is_sent_again_by_letter(pigeon_dispatcher, tmp_path):
    Pigeon.outcomes = ["permanent"]
    receipt = pigeon_dispatcher.dispatch("notice", PERSON, {"day": "2027-05-01"})
    assert pigeon_dispatcher.join(30) and pigeon_dispatcher.join(30)
    history = pigeon_dispatcher.store.messages_for("C-7")
    assert [(m["channel"], m["status"]) for m in history] == [("pigeon", "fallback"), ("letter", "sent")]
    letter = history[1]
    assert letter["fallback_of"] == receipt.message_id
    assert "pigeon failed for good: 550 no such user" in letter["notes"]["fallback"]
    assert (tmp_path / "outbox" / "letter" / f"{letter['id']}.pdf").is_file()


def test_a_provider_opt_out_is_recorded_in_the_consent_ledger(pigeon_dispatcher):
    Pigeon.outcomes = ["optout"]
    receipt = pigeon_dispatcher.dispatch("notice", PERSON, {"day": "2027-05-01"})
    assert pigeon_dispatcher.join(30)
    entries = pigeon_dispatcher.consents.history("C-7")
    assert [(e["purpose"], e["channel"], e["granted"], e["source"]) for e in entries] == [
        ("marketing", "pigeon", False, "provider")
    ]
    assert receipt.message_id in entries[0]["evidence"]


def test_a_message_is_delivered_once_even_if_enqueued_twice(pigeon_dispatcher):
    receipt = pigeon_dispatcher.dispatch("notice", PERSON, {"day": "2027-05-01"})
    pigeon_dispatcher.queues.enqueue("pigeon", receipt.message_id)
    pigeon_dispatcher.queues.enqueue("pigeon", receipt.message_id)
    assert pigeon_dispatcher.join(30)
    assert len(Pigeon.delivered) == 1
    assert pigeon_dispatcher.store.message(receipt.message_id)["attempts"] == 1


def test_what_was_not_delivered_before_exit_goes_out_on_the_next_run(make_dispatcher, pigeon_dispatcher, tmp_path):
    # Record without a worker: the message is stored but never handed to the queue.
    d = pigeon_dispatcher
    d.runtime.start_embedded = lambda **_: None  # type: ignore[method-assign]
    d.queues.enqueue_many = lambda items: None  # type: ignore[method-assign]
    receipt = d.dispatch("notice", PERSON, {"day": "2027-05-01"})
    d.close()
    assert Pigeon.delivered == []
    again = make_dispatcher(
        {
            "templates": {"paths": [str(tmp_path / "tpl")]},
            "message_types": {
                "notice": {
                    "category": "statutory",
                    "fields": {"day": "date"},
                    "channels": ["pigeon", "letter"],
                    "fallback_channels": ["letter"],
                }
            },
        },
        plugins=[Observer()],
    )
    assert again.join(30)  # the next run that waits for its queue delivers what an earlier one left
    assert again.store.message(receipt.message_id)["status"] == "sent"
    assert Pigeon.delivered == ["Notice 1.5.2027 to C-7"]


def test_drain_timeout_zero_returns_at_once_and_leaves_work_in_the_store(make_dispatcher):
    import time

    from dispatch.samples import sample_data, sample_recipient

    d = make_dispatcher({"broker": {"drain_timeout": 0}})
    people = [{**sample_recipient("fi", "FI"), "id": f"Z{i}"} for i in range(300)]
    d.campaign("price_change", people, sample_data("price_change"))
    started = time.perf_counter()
    d.close()
    assert time.perf_counter() - started < 5
    from dispatch.store import Store

    store = Store(d.config.store.url)
    counts = store.status_counts()
    store.close()
    assert counts.get("sent", 0) + counts.get("queued", 0) == 300  # what was not delivered waits


def test_a_campaign_larger_than_the_in_memory_queue_is_fed_from_the_store(make_dispatcher, monkeypatch, tmp_path):
    from dispatch import runtime
    from dispatch.samples import sample_data, sample_recipient

    monkeypatch.setattr(runtime, "QUEUE_CAP", 40)
    d = make_dispatcher()
    people = [{**sample_recipient("fi", "FI"), "id": f"F{i}", "email": f"f{i}@example.fi"} for i in range(300)]
    summary = d.campaign("price_change", people, sample_data("price_change"), batch_size=100)
    assert summary.queued == 300
    assert d.runtime.in_memory() <= 40
    assert d.join(120)
    assert d.store.status_counts() == {"sent": 300}
    assert len(list((tmp_path / "outbox" / "email").glob("*.eml"))) == 300


class EventLog:
    events: list = []  # noqa: RUF012

    @hookimpl
    def dispatch_event(self, event):
        EventLog.events.append(event)


def test_every_state_change_is_an_event_with_ids_only(make_dispatcher, tmp_path):
    EventLog.events = []
    Pigeon.outcomes, Pigeon.delivered = ["transient"], []
    folder = tmp_path / "tpl" / "fi" / "notice"
    folder.mkdir(parents=True)
    (folder / "pigeon.txt").write_text("Notice {{ day | date }}", encoding="utf-8")
    d = make_dispatcher(
        {
            "templates": {"paths": [str(tmp_path / "tpl")]},
            "message_types": {"notice": {"category": "service", "fields": {"day": "date"}, "channels": ["pigeon"]}},
        },
        plugins=[Observer(), EventLog()],
    )
    receipt = d.dispatch("notice", PERSON, {"day": "2027-05-01"})
    assert d.join(30)
    mine = [e for e in EventLog.events if e.data.get("message_id") == receipt.message_id]
    assert [e.type for e in mine] == [
        "message.queued",
        "message.sending",
        "message.queued",
        "message.sending",
        "message.sent",
    ]
    assert mine[2].data["previous_status"] == "sending" and "451" in mine[2].data["cause"]
    flat = repr([e.as_dict() for e in mine])
    assert "a@example.fi" not in flat and "Aino" not in flat
    history = d.store.transitions_for([receipt.message_id])[receipt.message_id]
    assert [h["target"] for h in history] == ["sending", "queued", "sending", "sent"]


def test_a_bug_in_a_channel_fails_the_message_once_and_is_not_retried(pigeon_dispatcher, caplog):
    Pigeon.outcomes = ["bug"]
    original = Pigeon.deliver

    async def buggy(self, message):
        if Pigeon.outcomes and Pigeon.outcomes[0] == "bug":
            Pigeon.outcomes.pop(0)
            raise TypeError("unsupported operand")
        return await original(self, message)

    Pigeon.deliver = buggy  # type: ignore[method-assign]
    try:
        receipt = pigeon_dispatcher.dispatch("notice", PERSON | {"address": None}, {"day": "2027-05-01"})
        assert pigeon_dispatcher.join(30)
    finally:
        Pigeon.deliver = original  # type: ignore[method-assign]
    stored = pigeon_dispatcher.store.message(receipt.message_id)
    assert stored["status"] == "failed" and stored["attempts"] == 1
    assert "TypeError" in stored["error"]
    tracebacks = [r for r in caplog.records if r.exc_info and r.name == "dispatch.delivery"]
    assert len(tracebacks) == 1


class LibraryRefusal(Exception):
    """What a provider's client library raises for a request that can never succeed."""


def test_a_channels_own_permanent_errors_fail_at_once_and_are_not_taken_for_bugs(
    pigeon_dispatcher, monkeypatch, caplog
):
    original = Pigeon.deliver

    async def refuse(self, message):
        raise LibraryRefusal("the provider refuses this request")

    monkeypatch.setattr(Pigeon, "deliver", refuse)
    monkeypatch.setattr(Pigeon, "permanent_errors", (LibraryRefusal,))
    receipt = pigeon_dispatcher.dispatch("notice", PERSON | {"address": None}, {"day": "2027-05-01"})
    assert pigeon_dispatcher.join(30)
    monkeypatch.setattr(Pigeon, "deliver", original)
    stored = pigeon_dispatcher.store.message(receipt.message_id)
    assert (stored["status"], stored["attempts"]) == ("failed", 1)
    assert not stored["error"].startswith("bug") and "LibraryRefusal" in stored["error"]
    assert not [r for r in caplog.records if r.exc_info and r.name == "dispatch.delivery"]  # no traceback


def test_claims_a_worker_cannot_serve_go_back_to_the_queue_at_once(tmp_path):
    """A worker that fails after claiming but before handing anything to a channel (here: its event
    loop cannot start) must not leave the batch `sending`: its heartbeat would renew those leases
    for as long as it lives."""
    from datetime import UTC, datetime, timedelta

    from test_store import row

    from dispatch.delivery import Deliverer, DeliveryHooks
    from dispatch.journal import OutcomeJournal, StoreHealth
    from dispatch.lifecycle import Lifecycle, RetryPolicy
    from dispatch.plugins import get_plugin_manager
    from dispatch.store import Store

    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    for mid in ("M1", "M2"):
        store.insert_message(row(mid, decided_at=datetime.now(UTC)))
    requeued: list = []

    def no_loop():
        raise RuntimeError("can't start new thread")

    health = StoreHealth()
    deliverer = Deliverer(
        lambda: store,
        {"email": object()},
        no_loop,
        get_plugin_manager(autoload=False),
        Lifecycle(),
        DeliveryHooks(
            failed=lambda *a: None, opted_out=lambda *a: None, unsubscribe_url=lambda c: None, requeue=requeued.extend
        ),
        OutcomeJournal(tmp_path / "journal", health),
        health,
        retry=RetryPolicy(),
        lease=timedelta(seconds=30),
    )
    with pytest.raises(RuntimeError):
        deliverer.deliver(["M1", "M2"])
    for mid in ("M1", "M2"):
        message = store.message(mid, content=False)
        assert message["status"] == "queued" and message["claimed_by"] is None
        assert [t["target"] for t in store.transitions_for([mid])[mid]] == ["sending", "queued"]
    assert sorted(mid for _queue, mid, _delay in requeued) == ["M1", "M2"]  # handed to the queue again
    assert deliverer.holding == 0
    store.close()
