"""Every decision is provable afterwards; the ledger and history feed the rules; retention purges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dispatch.history import purge
from dispatch.samples import sample_data, sample_recipient

NOW = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)


def test_every_decision_is_stored_with_reasons_basis_and_rules_version(dispatcher):
    sent = dispatcher.dispatch("price_change", sample_recipient("fi", "FI"), sample_data("price_change"), now=NOW)
    held = dispatcher.dispatch(
        "marketing", {**sample_recipient("fi", "FI"), "marketing_blocked": True}, sample_data("marketing"), now=NOW
    )
    for receipt in (sent, held):
        row = dispatcher.store.message(receipt.message_id)
        assert row["reasons"] == receipt.reasons
        assert row["legal_basis"] == receipt.legal_basis
        assert row["rules_version"] == dispatcher.policy.version
        assert row["decided_at"] == NOW
    assert dispatcher.store.message(held.message_id)["notes"]["opted_out"].startswith("direct marketing blocked")


def test_the_ledger_is_merged_with_the_mapping_and_the_newest_entry_wins(dispatcher):
    person = {
        **sample_recipient("fi", "FI"),
        "status": "prospect",
        "data_verified_on": "2026-12-01",
        "consents": [{"purpose": "marketing", "channel": "email", "granted": True, "at": "2026-06-01"}],
    }
    data = sample_data("marketing")
    assert dispatcher.decide("marketing", person, data, now=NOW).legal_basis == "consent"
    dispatcher.consents.record(
        person["id"], "marketing", False, channel="email", at="2026-09-01", source="unsubscribe_link"
    )
    assert dispatcher.decide("marketing", person, data, now=NOW).reasons == ["opted_out"]
    newer = {
        **person,
        "consents": person["consents"]
        + [{"purpose": "marketing", "channel": "email", "granted": True, "at": "2026-10-01", "source": "web_form"}],
    }
    assert dispatcher.decide("marketing", newer, data, now=NOW).allowed


def test_frequency_caps_count_what_was_sent_across_channels_but_never_statutory(dispatcher):
    person = {
        **sample_recipient("fi", "FI"),
        "consents": [{"purpose": "marketing", "channel": "all", "granted": True, "at": "2026-01-01"}],
    }
    data = dispatcher.validate_data("marketing", sample_data("marketing"))
    for days_ago, channel in ((300, "email"), (200, "sms"), (100, "email"), (10, "sms")):
        receipt = dispatcher.dispatch(
            "marketing",
            {**person, "preferred_channels": {"marketing": channel}},
            data,
            now=NOW - timedelta(days=days_ago),
        )
        assert receipt.status == "queued", (days_ago, receipt.reasons)
    for _ in range(3):
        dispatcher.dispatch("price_change", person, sample_data("price_change"), now=NOW)
    fifth = dispatcher.decide("marketing", person, data, now=NOW)
    assert fifth.reasons == ["frequency_cap"]
    assert "4 marketing messages within 365 days" in fifth.notes["frequency_cap"]
    assert dispatcher.decide("marketing", person, data, now=NOW + timedelta(days=66)).allowed  # the first fell out


def test_purge_removes_expired_prospects_but_keeps_statutory_records_and_objections(dispatcher):
    prospect = {
        **sample_recipient("fi", "FI"),
        "id": "P-1",
        "status": "prospect",
        "data_verified_on": "2026-01-05",
        "consents": [{"purpose": "marketing", "channel": "email", "granted": True, "at": "2026-01-05"}],
    }
    customer = {**sample_recipient("fi", "FI"), "id": "C-1"}
    early = datetime(2026, 2, 1, 10, tzinfo=UTC)
    dispatcher.dispatch("marketing", prospect, sample_data("marketing"), now=early)
    dispatcher.dispatch("contract_confirmation", prospect, sample_data("contract_confirmation"), now=early)
    dispatcher.dispatch("marketing", customer, sample_data("marketing"), now=early)
    dispatcher.consents.record("P-1", "marketing", True, channel="sms", at=early)
    dispatcher.consents.record("P-1", "marketing", False, channel="email", at=early)
    assert dispatcher.join(30)
    before = purge(dispatcher.store, dispatcher.config.policy, datetime(2026, 7, 5, tzinfo=UTC), dry_run=True)
    assert before.recipients == 0  # 6 months since 2026-01-05 end on 2026-07-05: not yet
    result = purge(dispatcher.store, dispatcher.config.policy, datetime(2026, 7, 6, tzinfo=UTC))
    assert (result.recipients, result.messages, result.kept_statutory, result.consents) == (1, 1, 1, 1)
    left = dispatcher.store.messages_for("P-1")
    assert [m["message_type"] for m in left] == ["contract_confirmation"]
    assert [(e["channel"], e["granted"]) for e in dispatcher.consents.history("P-1")] == [("email", False)]
    assert len(dispatcher.store.messages_for("C-1")) == 1
