"""The store: compare-and-set claims, relay of lost messages, compressed content."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from dispatch.lifecycle import IllegalTransition, Status
from dispatch.store import DuplicateKey, MessageRecord, Outcome, Store, decode_content, encode_content

NOW = datetime(2027, 1, 11, 10, 0, tzinfo=UTC)


def row(message_id: str, **extra) -> MessageRecord:
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
    base["status"] = Status(base["status"])
    return MessageRecord(**base)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """Each store test on both backends: PostgreSQL records outcomes through its own statements."""
    url = f"sqlite:///{tmp_path / 's.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    s = Store(url)
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


LEASE = timedelta(seconds=30)


def outcome(message_id: str, target: Status, attempt: int = 1, **extra) -> Outcome:
    return Outcome(message_id, attempt, target, NOW, NOW, extra.pop("cause", "test"), **extra)


def test_only_one_of_many_concurrent_claims_wins(store):
    store.insert_message(row("M1"))
    winners = []
    barrier = threading.Barrier(8)

    def claim(n):
        barrier.wait()
        if store.claim(["M1"], f"w{n}", NOW, LEASE):
            winners.append(n)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    claimed = store.message("M1")
    assert claimed["status"] == "sending" and claimed["attempts"] == 1
    assert claimed["lease_expires_at"] == NOW + LEASE


def test_a_batch_is_claimed_in_one_go_and_only_queued_messages_are_taken(store):
    for mid in ("A", "B", "C"):
        store.insert_message(row(mid))
    store.insert_message(row("S", status="suppressed", allowed=False))
    claimed = store.claim(["A", "B", "C", "S", "MISSING"], "w1", NOW, LEASE)
    assert sorted(c.id for c in claimed) == ["A", "B", "C"]
    assert all(c.attempts == 1 and c.content["parts"] == {"text": "hei"} for c in claimed)
    assert store.claim(["A", "B"], "w2", NOW, LEASE) == []


def test_only_the_claimant_can_finish_and_every_change_is_kept(store):
    store.insert_message(row("M1"))
    assert store.claim(["M1"], "w1", NOW, LEASE)
    assert store.finish([outcome("M1", Status.SENT)], "w2") == []
    [done] = store.finish([outcome("M1", Status.SENT, provider_id="p-1", cause="provider accepted")], "w1")
    assert (done.source, done.target) == (Status.SENDING, Status.SENT)
    message = store.message("M1")
    assert message["status"] == "sent" and message["provider_id"] == "p-1"
    assert store.claim(["M1"], "w3", NOW, LEASE) == []  # sent messages are never claimed again
    history = store.transitions_for(["M1"])["M1"]
    assert [(h["source"], h["target"]) for h in history] == [("queued", "sending"), ("sending", "sent")]
    assert history[-1]["cause"] == "provider accepted"
    assert [a["outcome"] for a in store.attempts_for(["M1"])["M1"]] == ["sent", "sent"]  # w2's attempt is recorded too


def test_a_finish_for_an_older_attempt_changes_nothing(store):
    store.insert_message(row("M1"))
    store.claim(["M1"], "w1", NOW, LEASE)
    store.finish([outcome("M1", Status.QUEUED, retry_at=NOW)], "w1")
    store.claim(["M1"], "w1", NOW, LEASE)  # attempt 2
    assert store.finish([outcome("M1", Status.FAILED, attempt=1)], "w1") == []
    assert store.message("M1")["status"] == "sending"


def test_illegal_transitions_are_refused(store):
    store.insert_message(row("M1", status="suppressed", allowed=False))
    with pytest.raises(IllegalTransition):
        store.finish([outcome("M1", Status.SUPPRESSED)], "w1")
    assert store.transition("M1", Status.SENT, NOW, "x") is None  # suppressed is final
    with pytest.raises(IllegalTransition):
        store.insert_message(row("M2", status="sent"))


def test_a_transient_failure_goes_back_to_the_queue_with_its_retry_time(store):
    store.insert_message(row("M1", enqueued_at=NOW))
    store.claim(["M1"], "w1", NOW, LEASE)
    store.finish([outcome("M1", Status.QUEUED, retry_at=NOW + timedelta(seconds=4))], "w1")
    message = store.message("M1")
    assert message["status"] == "queued" and message["send_after"] == NOW + timedelta(seconds=4)
    assert message["claimed_by"] is None and message["enqueued_at"] is None
    assert store.next_retry_at(NOW) == NOW + timedelta(seconds=4)


def test_heartbeats_keep_a_claim_and_an_expired_lease_is_released(store):
    store.insert_message(row("M1", enqueued_at=NOW))
    store.insert_message(row("M2", enqueued_at=NOW))
    store.claim(["M1"], "alive", NOW, LEASE)
    store.claim(["M2"], "dead", NOW, LEASE)
    later = NOW + timedelta(seconds=25)
    assert store.renew_leases("alive", later, LEASE) == 1
    released = store.release_expired(NOW + timedelta(seconds=31))
    assert [(t.message_id, t.target) for t in released] == [("M2", Status.QUEUED)]
    assert store.message("M1")["status"] == "sending"
    m2 = store.message("M2")
    assert m2["status"] == "queued" and m2["possible_duplicate"] is True and m2["enqueued_at"] is None
    assert store.release_expired(NOW + timedelta(seconds=54)) == []  # M1 renewed until 25 s + 30 s
    assert [t.message_id for t in store.release_expired(NOW + timedelta(seconds=56))] == ["M1"]


def test_a_known_outcome_written_after_the_lease_ran_out_still_wins(store):
    store.insert_message(row("M1"))
    store.claim(["M1"], "w1", NOW, LEASE)
    store.release_expired(NOW + timedelta(minutes=5))  # the store saw no heartbeat during an outage
    [late] = store.finish([outcome("M1", Status.SENT)], "w1")
    assert (late.source, late.target) == (Status.QUEUED, Status.SENT)
    assert store.claim(["M1"], "w2", NOW, LEASE) == []  # never sent again


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
    store.insert_message(row("DONE"))
    store.claim(["DONE"], "w", NOW, LEASE)
    store.finish([outcome("DONE", Status.SENT)], "w")
    due = store.due_for_relay(NOW, stuck_after=timedelta(minutes=10))
    assert sorted(r["id"] for r in due) == ["NEVER", "STUCK"]
    with_horizon = store.due_for_relay(NOW, stuck_after=timedelta(minutes=10), horizon=timedelta(days=1))
    assert "LATER" in {r["id"] for r in with_horizon}


def test_dead_letters_can_be_requeued(store):
    store.insert_message(row("M1"))
    store.claim(["M1"], "w", NOW, LEASE)
    store.finish([outcome("M1", Status.DEAD, error="timeout")], "w")
    assert [r["id"] for r in store.dead_letters()] == ["M1"]
    [moved] = store.requeue_dead(now=NOW)
    assert (moved.source, moved.target) == (Status.DEAD, Status.QUEUED)
    assert store.message("M1")["status"] == "queued"


def test_decide_reads_a_store_but_never_creates_one(tmp_path):
    url = f"sqlite:///{tmp_path / 'none.db'}"
    assert Store.open_existing(url) is None
    assert not (tmp_path / "none.db").exists()
    Store(url).close()
    opened = Store.open_existing(url)
    assert opened is not None
    opened.close()


def test_a_group_of_outcomes_records_each_as_its_own_kind_with_its_history_in_order(store):
    ids = [f"G{i}" for i in range(6)]
    for mid in ids:
        store.insert_message(row(mid))
    assert len(store.claim(ids[:1], "w1", NOW - timedelta(minutes=10), LEASE)) == 1
    assert len(store.claim(ids[1:], "w1", NOW, LEASE)) == 5
    assert [t.message_id for t in store.release_expired(NOW)] == ["G0"]  # its lease ran out: queued again
    later = NOW + timedelta(seconds=2)
    group = [
        outcome("G0", Status.SENT, provider_id="late", cause="provider accepted"),
        outcome("G1", Status.SENT, provider_id="p-1", cause="provider accepted", detail={"smtp_code": 250}),
        outcome("G2", Status.SENT, cause="provider accepted"),
        outcome("G3", Status.FAILED, cause="bounced", error="550 no such user"),
        outcome("G4", Status.QUEUED, cause="try again", error="421", retry_at=later),
        outcome("G5", Status.SENT, attempt=7, cause="provider accepted"),  # an older attempt: changes nothing
    ]
    done = store.finish(group, "w1")
    assert sorted((t.message_id, t.source, t.target) for t in done) == [
        ("G0", Status.QUEUED, Status.SENT),
        ("G1", Status.SENDING, Status.SENT),
        ("G2", Status.SENDING, Status.SENT),
        ("G3", Status.SENDING, Status.FAILED),
        ("G4", Status.SENDING, Status.QUEUED),
    ]
    statuses = {mid: store.message(mid)["status"] for mid in ids}
    assert statuses == {"G0": "sent", "G1": "sent", "G2": "sent", "G3": "failed", "G4": "queued", "G5": "sending"}
    assert store.message("G1")["provider_id"] == "p-1" and store.message("G1")["finished_at"] == NOW
    assert store.message("G4")["send_after"] == later and store.message("G3")["error"] == "550 no such user"
    history = store.transitions_for(ids)
    assert [(h["source"], h["target"], h["cause"]) for h in history["G1"]] == [
        ("queued", "sending", "claimed by w1"),
        ("sending", "sent", "provider accepted"),
    ]
    assert history["G1"][1]["detail"] == {"attempt": 1}
    assert [(h["source"], h["target"]) for h in history["G0"]][-1] == ("queued", "sent")
    assert [(h["source"], h["target"]) for h in history["G4"]] == [("queued", "sending"), ("sending", "queued")]
    assert "G5" not in history or all(h["target"] != "sent" for h in history["G5"])
    attempts = store.attempts_for(ids)
    assert sorted(mid for mid in ids if mid in attempts) == ids  # every outcome is kept, even one that lost
    assert [len(attempts[mid]) for mid in ids] == [1, 1, 1, 1, 1, 1]
    assert attempts["G1"][0]["detail"] == {"smtp_code": 250} and attempts["G1"][0]["worker"] == "w1"
    assert attempts["G2"][0]["detail"] is None and attempts["G1"][0]["started_at"] == NOW
    assert [attempts[mid][0]["outcome"] for mid in ids] == ["sent", "sent", "sent", "permanent", "transient", "sent"]
