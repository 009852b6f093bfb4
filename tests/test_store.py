"""The store: compare-and-set claims, relay of lost messages, compressed content."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest

from dispatch.store import DuplicateKey, Store, decode_content, encode_content

NOW = datetime(2027, 1, 11, 10, 0, tzinfo=UTC)


def row(message_id: str, **extra):
    base = {
        "id": message_id,
        "idempotency_key": None,
        "campaign_id": None,
        "recipient_id": "C-1",
        "country": "FI",
        "message_type": "price_change",
        "category": "statutory",
        "channel": "email",
        "language": "fi",
        "locale": "fi_FI",
        "status": "queued",
        "allowed": True,
        "reasons": [],
        "notes": {},
        "legal_basis": "legal_obligation",
        "rules_version": "t",
        "requested_language": None,
        "decided_at": NOW,
        "send_after": None,
        "deadline": None,
        "queue": "email",
        "address": "a@example.fi",
        "content": {"parts": {"text": "hei"}},
        "meta": None,
        "enqueued_at": None,
    }
    base.update(extra)
    return base


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 's.db'}")
    yield s
    s.close()


def test_content_round_trips_compressed_when_large():
    blob = encode_content({"parts": {"text": "Hyvä asiakas " * 100}})
    assert blob[:1] == b"z" and len(blob) < 200
    assert decode_content(blob) == {"parts": {"text": "Hyvä asiakas " * 100}}
    small = encode_content({"parts": {"text": "Hei"}})
    assert small[:1] == b"j" and decode_content(small) == {"parts": {"text": "Hei"}}


def test_messages_of_one_variant_share_its_text_and_are_rebuilt_exactly(dispatcher):
    from dispatch.samples import sample_data, sample_recipient

    data = dispatcher.validate_data("price_change", sample_data("price_change"))
    people = [
        {
            **sample_recipient("fi", "FI"),
            "id": f"V-{n}",
            "address": {"name": f"Asiakas <{n}> & Co", "street": "Katu 1", "postal_code": "00100", "city": "Helsinki"},
        }
        for n in range(3)
    ]
    summary = dispatcher.campaign("price_change", people, data, now=NOW)
    assert summary.queued == 3
    from sqlalchemy import func, select

    from dispatch import schema

    with dispatcher.store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.variants)).scalar() == 1
        sizes = [len(blob) for (blob,) in conn.execute(select(schema.messages.c.content))]
    assert max(sizes) < 1500  # the 3 KB HTML is stored once, not per message
    for n in range(3):
        [row] = dispatcher.store.messages_for(f"V-{n}")
        parts = row["content"]["parts"]
        assert f"Asiakas &lt;{n}&gt; &amp; Co" in parts["html"] and f"Hei Asiakas <{n}> & Co" in parts["text"]
        dispatcher.config.templates.render_cache = False
        plain = dispatcher.preview("price_change", people[n], data, channel="email", now=NOW)
        dispatcher.config.templates.render_cache = True
        assert parts["text"] == plain["text"] and parts["subject"] == plain["subject"]
        assert parts["html"].replace(row["id"], "X") == plain["html"].replace("PREVIEW0000000000000000000", "X")


def test_only_one_of_many_concurrent_claims_wins(store):
    store.insert_message(row("M1"))
    winners = []
    barrier = threading.Barrier(8)

    def claim(n):
        barrier.wait()
        if store.claim("M1", f"w{n}", NOW):
            winners.append(n)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    claimed = store.message("M1")
    assert claimed["status"] == "sending" and claimed["attempts"] == 1


def test_only_the_claimant_can_finish(store):
    store.insert_message(row("M1"))
    assert store.claim("M1", "w1", NOW)["content"] == {"parts": {"text": "hei"}}
    assert store.finish("M1", "w2", status="delivered", now=NOW) is False
    assert store.finish("M1", "w1", status="delivered", now=NOW, provider_id="p-1") is True
    assert store.message("M1")["status"] == "delivered"
    assert store.claim("M1", "w3", NOW) is None  # delivered messages are never claimed again


def test_idempotency_keys_are_unique(store):
    store.insert_message(row("M1", idempotency_key="k-1"))
    with pytest.raises(DuplicateKey):
        store.insert_message(row("M2", idempotency_key="k-1"))
    assert store.find_by_key("k-1")["id"] == "M1"
    assert store.existing_keys(["k-1", "k-2"]) == {"k-1": "M1"}


def test_relay_finds_never_enqueued_and_stuck_messages_but_not_fresh_or_future_ones(store):
    store.insert_message(row("NEVER"))
    store.insert_message(row("FRESH", enqueued_at=NOW - timedelta(seconds=30)))
    store.insert_message(row("STUCK", enqueued_at=NOW - timedelta(hours=1)))
    store.insert_message(row("LATER", send_after=NOW + timedelta(hours=5)))
    store.insert_message(row("DONE", status="delivered"))
    due = store.due_for_relay(NOW, stuck_after=timedelta(minutes=10), lease=timedelta(minutes=5))
    assert sorted(r["id"] for r in due) == ["NEVER", "STUCK"]
    with_horizon = store.due_for_relay(
        NOW, stuck_after=timedelta(minutes=10), lease=timedelta(minutes=5), horizon=timedelta(days=1)
    )
    assert "LATER" in {r["id"] for r in with_horizon}


def test_relay_releases_claims_of_dead_processes_and_marks_them(store):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    store.insert_message(row("M1", enqueued_at=NOW))
    store.claim("M1", f"{socket.gethostname()}:{dead.stdout.strip()}/abc", NOW)
    store.insert_message(row("M2", enqueued_at=NOW))
    store.claim("M2", "otherhost:1/abc", NOW)  # alive as far as we can tell, and recent
    due = store.due_for_relay(NOW, stuck_after=timedelta(minutes=10), lease=timedelta(minutes=5))
    assert [r["id"] for r in due] == ["M1"]
    assert store.message("M1")["possible_duplicate"] is True
    assert store.message("M2")["status"] == "sending"
    later = store.due_for_relay(
        NOW + timedelta(minutes=6), stuck_after=timedelta(minutes=10), lease=timedelta(minutes=5)
    )
    assert "M2" in [r["id"] for r in later]  # the lease ran out


def test_dead_letters_can_be_requeued(store):
    store.insert_message(row("M1", status="dead", error="timeout"))
    assert [r["id"] for r in store.dead_letters()] == ["M1"]
    assert store.requeue_dead() == 1
    assert store.message("M1")["status"] == "queued"
