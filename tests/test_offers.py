"""Written offers after a phone sale (SPEC §13): the offer, its acceptance, its lapse — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from dispatch import schema
from dispatch.cli import cli
from dispatch.errors import InputError
from dispatch.offers import ADDED_FIELDS, OfferChanged, OfferClosed, content_hash
from dispatch.samples import sample_data, sample_recipient

HELSINKI = ZoneInfo("Europe/Helsinki")
NOW = datetime(2027, 1, 11, 10, 0, tzinfo=UTC)


def offer_data(country: str = "FI", **changes) -> dict:
    data = {k: v for k, v in sample_data("sales_offer", country).items() if k not in ADDED_FIELDS}
    return {**data, "sold_on": "2027-01-11", "valid_until": "2027-01-25", **changes}


@pytest.fixture(params=["sqlite", "postgres"])
def d(request, make_dispatcher):
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        return make_dispatcher({"store": {"url": url}})
    return make_dispatcher()


@pytest.fixture
def events(d):
    seen = []
    d.events.subscribe(lambda event: seen.append(event) if event.type.startswith("offer.") else None)
    return seen


def rows(d, table, **where):
    t = getattr(schema, table)
    query = select(t)
    for key, value in where.items():
        query = query.where(t.c[key] == value)
    with d.store.engine.connect() as conn:
        order = t.c[next(iter(t.primary_key.columns)).name]
        return [dict(r) for r in conn.execute(query.order_by(order)).mappings()]


def accept(d, offer_id, *, now=NOW, wording="offer-fi-test"):
    offer = d.offers.get(offer_id)
    return d.offers.accept(offer_id, content_hash=offer["content_hash"], wording_version=wording, now=now)


# -- the offer --------------------------------------------------------------------------------


def test_an_offer_is_recorded_and_sent_by_the_customers_channel_with_its_link(d):
    person = sample_recipient("fi", "FI")
    receipt, offer_id = d.offer(person, offer_data(), now=NOW)
    assert receipt.status == "queued" and receipt.channel == "email" and receipt.category == "statutory"
    offer = d.offers.get(offer_id)
    assert offer["state"] == "open" and offer["message_id"] == receipt.message_id and offer["channel"] == "email"
    # It lapses at the end of 25 January in Helsinki: 22:00 UTC (winter time).
    assert offer["valid_until"] == datetime(2027, 1, 25, 22, 0, tzinfo=UTC)
    assert offer["content_hash"] == content_hash(offer_id, d.parse_recipient(person), offer["terms"])
    message = d.store.message(receipt.message_id)
    sent = message["content"]["inputs"]["data"]
    assert sent["offer_id"] == offer_id
    assert sent["accept_url"].startswith("https://energia.example.fi/dispatch/offer/" + offer_id + ".")
    assert d.offers.links.verify(sent["accept_url"].rsplit("/", 1)[1], NOW) == offer_id
    assert [s["state"] for s in rows(d, "offer_states", offer_id=offer_id)] == ["open"]


def test_an_offer_never_goes_by_phone_and_prefers_sms_when_the_customer_does(d):
    person = {**sample_recipient("fi", "FI"), "preferred_channels": {"default": "phone"}}
    receipt, _ = d.offer(person, offer_data(), now=NOW)
    assert receipt.channel == "email"  # the type has no phone channel: the offer must be in writing
    person = {**sample_recipient("fi", "FI"), "id": "C-SMS", "preferred_channels": {"sales_offer": "sms"}}
    receipt, offer_id = d.offer(person, offer_data(), now=NOW)
    assert receipt.channel == "sms" and d.offers.get(offer_id)["channel"] == "sms"


def test_an_offer_by_sms_also_goes_whole_in_durable_form(d, tmp_path):
    person = {**sample_recipient("fi", "FI"), "preferred_channels": {"sales_offer": "sms"}}
    receipt, offer_id = d.offer(person, offer_data(), now=NOW)
    offer = d.offers.get(offer_id)
    assert receipt.channel == "sms" and offer["copy_message_id"] is not None
    copy = d.store.message(offer["copy_message_id"])
    assert copy["channel"] == "email" and copy["message_type"] == "sales_offer"
    assert (
        copy["content"]["inputs"]["data"]["accept_url"]
        == d.store.message(receipt.message_id)["content"]["inputs"]["data"]["accept_url"]
    )  # the same offer, the same link
    # Without an email address, the copy is a letter; with only a phone number, there is none to send.
    letter_only = {**person, "id": "C-L", "email": None}
    _, offer_id = d.offer(letter_only, offer_data(), now=NOW)
    assert d.store.message(d.offers.get(offer_id)["copy_message_id"])["channel"] == "letter"
    phone_only = {**person, "id": "C-P", "email": None, "address": None}
    _, offer_id = d.offer(phone_only, offer_data(), now=NOW)
    assert d.offers.get(offer_id)["copy_message_id"] is None


def test_the_evidence_names_the_channel_the_offer_reached_the_customer_by(d):
    from dispatch.feedback import FeedbackKind, ProviderEvent

    person = sample_recipient("fi", "FI")
    receipt, offer_id = d.offer(person, offer_data(), now=NOW)
    assert d.join(30)
    bounce = ProviderEvent(FeedbackKind.BOUNCED, "email", NOW, message_id=receipt.message_id, permanent=True)
    assert d.handle_feedback(bounce)
    assert d.join(30)
    outcome = accept(d, offer_id)
    accepted = rows(d, "offer_states", offer_id=offer_id, state="accepted")[0]
    assert accepted["channel"] == "letter"  # the email bounced; the statutory fallback letter carried it
    assert [m["channel"] for m in accepted["evidence"]["messages"]] == ["email", "letter"]
    assert outcome.offer["channel"] == "email"  # the offer row keeps the first choice


def test_bad_offer_data_names_every_field_and_writes_nothing(d):
    person = sample_recipient("fi", "FI")
    with pytest.raises(InputError) as caught:
        d.offer(person, {"product": "Kiinteä 24", "duration": {"until": "soon"}}, now=NOW)
    text = str(caught.value)
    for field in ("sold_on", "price_elements", "terms_url", "valid_until", "duration.until"):
        assert field in text
    with pytest.raises(InputError, match="valid_until is before sold_on"):
        d.offer(person, offer_data(valid_until="2027-01-10"), now=NOW)
    with pytest.raises(InputError, match="valid_until 2027-01-10 has passed"):
        d.offer(person, offer_data(sold_on="2027-01-09", valid_until="2027-01-10"), now=NOW)
    with pytest.raises(InputError, match="dispatch makes them"):
        d.offer(person, {**offer_data(), "accept_url": "https://evil.example/x"}, now=NOW)
    for data in (offer_data(), sample_data("sales_offer")):  # with a made-up offer id and link too
        with pytest.raises(InputError, match=r"Dispatcher\.offer"):
            d.dispatch("sales_offer", person, data, now=NOW)
    with pytest.raises(InputError, match="campaign"):
        d.campaign("sales_offer", [person], offer_data(), now=NOW)
    assert rows(d, "offers") == [] and d.store.messages_for(person["id"]) == []


def test_asyncio_callers_have_aoffer(make_dispatcher):
    import asyncio

    d = make_dispatcher()
    receipt, offer_id = asyncio.run(d.aoffer(sample_recipient("fi", "FI"), offer_data(), now=NOW))
    assert receipt.status == "queued" and d.offers.get(offer_id)["message_id"] == receipt.message_id


def test_the_same_idempotency_key_returns_the_same_offer(d):
    person = sample_recipient("fi", "FI")
    first = d.offer(person, offer_data(), idempotency_key="call-77", now=NOW)
    again = d.offer(person, offer_data(), idempotency_key="call-77", now=NOW)
    assert again.offer_id == first.offer_id and again.receipt.status == "duplicate"
    assert len(rows(d, "offers")) == 1
    d.dispatch("survey", person, sample_data("survey"), idempotency_key="survey-1", now=NOW)
    with pytest.raises(InputError, match="another message"):
        d.offer(person, offer_data(), idempotency_key="survey-1", now=NOW)
    assert len(rows(d, "offers")) == 1


# -- acceptance -------------------------------------------------------------------------------


def test_accepting_records_evidence_emits_the_event_and_sends_the_contract_confirmation(d, events):
    person = sample_recipient("fi", "FI")
    receipt, offer_id = d.offer(person, offer_data(starts_on="2027-03-01"), now=NOW)
    moment = datetime(2027, 1, 20, 23, 30, tzinfo=UTC)  # 21 January in Helsinki
    outcome = accept(d, offer_id, now=moment)
    assert outcome.state == "accepted" and not outcome.already
    [opened, accepted] = rows(d, "offer_states", offer_id=offer_id)
    assert (opened["state"], accepted["state"]) == ("open", "accepted")
    assert accepted["at"] == moment and accepted["source"] == "acceptance_page"
    assert accepted["content_hash"] == d.offers.get(offer_id)["content_hash"]
    assert accepted["wording_version"] == "offer-fi-test" and accepted["channel"] == "email"
    assert accepted["evidence"]["message_id"] == receipt.message_id
    contract_id = outcome.offer["contract_message_id"]
    contract = d.store.message(contract_id)
    assert contract["message_type"] == "contract_confirmation" and contract["recipient_id"] == person["id"]
    data = contract["content"]["inputs"]["data"]
    assert data["signed_on"] == "2027-01-21" and data["starts_on"] == "2027-03-01" and data["duration"] == 24
    assert data["product"] == "Kiinteä 24" and [e["new"] for e in data["price_elements"]] == ["8.90", "4.90"]
    assert [e.type for e in events] == ["offer.accepted"]
    assert events[0].data["offer_id"] == offer_id and events[0].data["contract_message_id"] == contract_id
    assert events[0].data["message_id"] == receipt.message_id and "email" not in json.dumps(events[0].data["state"])

    again = accept(d, offer_id, now=moment + timedelta(minutes=5))  # idempotent: nothing new
    assert again.already and again.offer["contract_message_id"] == contract_id
    assert len(rows(d, "offer_states", offer_id=offer_id)) == 2 and len(events) == 1
    assert [m["message_type"] for m in d.store.messages_for(person["id"])].count("contract_confirmation") == 1
    with pytest.raises(OfferClosed) as caught:
        d.offers.decline(offer_id, now=moment)
    assert caught.value.state == "accepted"


def test_an_offer_ending_on_a_fixed_day_confirms_that_end_and_starts_after_the_withdrawal_period(d):
    _, offer_id = d.offer(sample_recipient("fi", "FI"), offer_data(duration={"until": "2029-02-28"}), now=NOW)
    outcome = accept(d, offer_id)
    data = d.store.message(outcome.offer["contract_message_id"])["content"]["inputs"]["data"]
    assert data["ends_on"] == "2029-02-28" and "duration" not in data
    assert data["starts_on"] == "2027-01-25"  # 11 January + 14 days


def test_a_content_hash_that_is_not_the_offers_is_refused(d):
    _, offer_id = d.offer(sample_recipient("fi", "FI"), offer_data(), now=NOW)
    with pytest.raises(OfferChanged):
        d.offers.accept(offer_id, content_hash="0" * 64, wording_version="w", now=NOW)
    assert d.offers.get(offer_id)["state"] == "open"


def test_declining_is_recorded_once_and_sends_nothing(d, events):
    person = sample_recipient("sv", "SE")
    _, offer_id = d.offer(person, offer_data("SE"), now=NOW)
    assert d.offers.decline(offer_id, now=NOW).state == "declined"
    assert d.offers.decline(offer_id, now=NOW).already
    assert [e.type for e in events] == ["offer.declined"]
    assert [s["state"] for s in rows(d, "offer_states", offer_id=offer_id)] == ["open", "declined"]
    with pytest.raises(OfferClosed):
        accept(d, offer_id)
    assert [m["message_type"] for m in d.store.messages_for(person["id"])] == ["sales_offer"]


# -- lapse ------------------------------------------------------------------------------------


def test_an_offer_lapses_at_the_end_of_its_valid_until_day_and_not_a_second_before(d, events):
    person = sample_recipient("fi", "FI")
    _, late = d.offer(person, offer_data(), now=NOW)
    _, kept = d.offer({**person, "id": "C-1001-B"}, offer_data(), now=NOW)
    last_second = datetime(2027, 1, 25, 23, 59, 59, tzinfo=HELSINKI)
    assert d.offers.expire_due(last_second) == []
    assert accept(d, kept, now=last_second).state == "accepted"  # the last second still counts
    midnight = datetime(2027, 1, 26, 0, 0, tzinfo=HELSINKI)
    assert d.offers.expire_due(midnight) == [late]
    assert d.offers.expire_due(midnight) == []  # once
    assert [e.type for e in events] == ["offer.accepted", "offer.lapsed"]
    lapsed = [s for s in rows(d, "offer_states", offer_id=late) if s["state"] == "lapsed"]
    assert len(lapsed) == 1 and lapsed[0]["at"] == midnight and lapsed[0]["source"] == "worker"
    with pytest.raises(OfferClosed) as caught:
        accept(d, late, now=midnight)
    assert caught.value.state == "lapsed"
    types = [m["message_type"] for m in d.store.messages_for(person["id"])]
    assert types == ["sales_offer"]  # no contract, no confirmation


def test_accepting_after_valid_until_lapses_the_offer_instead(d, events):
    _, offer_id = d.offer(sample_recipient("fi", "FI"), offer_data(), now=NOW)
    with pytest.raises(OfferClosed):
        accept(d, offer_id, now=datetime(2027, 1, 26, 0, 0, 1, tzinfo=HELSINKI))
    assert d.offers.get(offer_id)["state"] == "lapsed" and [e.type for e in events] == ["offer.lapsed"]
    assert d.offers.get(offer_id)["contract_message_id"] is None


def test_the_worker_loop_lapses_due_offers_by_itself(make_dispatcher):
    d = make_dispatcher()
    seen = []
    d.events.subscribe(lambda event: seen.append(event.type))
    today = datetime.now(UTC).astimezone(HELSINKI).date()
    sold = datetime.now(UTC) - timedelta(days=5)
    sold_on, valid_until = (today - timedelta(days=5)).isoformat(), (today - timedelta(days=1)).isoformat()
    data = offer_data(sold_on=sold_on, valid_until=valid_until)
    _, offer_id = d.offer(sample_recipient("fi", "FI"), data, now=sold)  # the embedded worker starts with it
    deadline = time.monotonic() + 60
    while d.offers.get(offer_id)["state"] != "lapsed":
        assert time.monotonic() < deadline, "the worker did not lapse the offer"
        time.sleep(0.1)
    assert "offer.lapsed" in seen


# -- an offer that cannot go --------------------------------------------------------------------


def test_an_offer_that_cannot_be_sent_is_unsent_and_cannot_be_accepted(d):
    person = {**sample_recipient("fi", "FI"), "email": None, "phone": None, "address": None}
    receipt, offer_id = d.offer(person, offer_data(), now=NOW)
    assert receipt.status == "suppressed" and "no_address" in receipt.reasons
    assert d.offers.get(offer_id)["state"] == "unsent"
    with pytest.raises(OfferClosed):
        accept(d, offer_id)


# -- command line, history, the call task --------------------------------------------------------


def test_the_command_line_lists_shows_and_expires_offers(make_dispatcher, tmp_path):
    d = make_dispatcher()
    _, accepted = d.offer(sample_recipient("fi", "FI"), offer_data(), now=NOW)
    accept(d, accepted)
    _, open_ = d.offer(sample_recipient("sv", "SE"), offer_data("SE"), now=NOW)
    d.close()
    config = tmp_path / "dispatch.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "dispatch.db"}"\n[links]\nsecret = "test-secret"\n'
        f'base_url = "https://energia.example.fi/dispatch"\n'
    )
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(config), "offers", "list", "--json"])
    assert result.exit_code == 0, result.output
    listed = {o["id"]: o["state"] for o in json.loads(result.output)}
    assert listed == {accepted: "accepted", open_: "open"}
    result = runner.invoke(cli, ["--config", str(config), "offers", "show", accepted])
    assert result.exit_code == 0 and "accepted" in result.output and "offer-fi-test" in result.output
    result = runner.invoke(cli, ["--config", str(config), "offers", "show", "nope"])
    assert result.exit_code == 2 and "no offer" in result.output
    # 00:00 on 26 January in Helsinki is 23:00 on the 25th in Stockholm: the Swedish offer still holds.
    result = runner.invoke(cli, ["--config", str(config), "offers", "expire", "--now", "2027-01-26T00:00+02:00"])
    assert result.exit_code == 0 and "0 offer(s) lapsed" in result.output
    result = runner.invoke(cli, ["--config", str(config), "offers", "expire", "--now", "2027-01-26T00:00+01:00"])
    assert result.exit_code == 0 and "1 offer(s) lapsed" in result.output and open_ in result.output
    result = runner.invoke(cli, ["--config", str(config), "offers", "expire", "--now", "tomorrow"])
    assert result.exit_code == 2 and "not a moment" in result.output
    result = runner.invoke(cli, ["--config", str(config), "history", "C-1001"])
    assert result.exit_code == 0
    assert f"offer {accepted}" in result.output and " accepted (source acceptance_page" in result.output
    assert "contract confirmation" in result.output


def test_a_call_task_carries_what_the_agent_records_for_the_offer(make_dispatcher, tmp_path):
    d = make_dispatcher()
    person = sample_recipient("sv", "SE") | {
        "id": "CALL-1",
        "preferred_channels": {"marketing": "phone"},
        "consents": [{"purpose": "marketing", "channel": "phone", "granted": True, "at": "2026-01-01"}],
    }
    monday = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
    receipt = d.dispatch("marketing", person, sample_data("marketing", "SE"), now=monday)
    assert receipt.channel == "phone", receipt.reasons
    d.join(30)
    [task] = [json.loads(line) for line in (tmp_path / "outbox" / "phone" / "tasks.jsonl").read_text().splitlines()]
    form = task["offer"]
    assert form["message_type"] == "sales_offer" and form["nothing_agreed_on_the_call"] is True
    assert set(form["fields"]) == set(d.message_type("sales_offer").required)
    assert form["prefill"]["product"] == "Vind 12" and form["prefill"]["duration"] == 12
    assert [e["new"] for e in form["prefill"]["price_elements"]] == ["69.00", "0.00"]
    # What the agent records makes a valid offer.
    data = {**form["prefill"], "sold_on": "2026-03-09", "terms_url": "https://energi.example.se/villkor"}
    _, offer_id = d.offer(person, {**data, "valid_until": "2026-03-23"}, now=monday)
    assert d.offers.get(offer_id)["state"] == "open"


def test_the_crm_learns_of_an_acceptance_by_a_signed_webhook(make_dispatcher, monkeypatch):
    from webhook_receiver import Receiver

    from dispatch.webhooks import generate_secret

    monkeypatch.delenv("DISPATCH_WEBHOOK_SECRET", raising=False)
    secret = generate_secret()
    receiver = Receiver(secret).start()
    try:
        settings = {"endpoints": [receiver.url], "secret": secret, "events": ["offer.accepted", "offer.lapsed"]}
        d = make_dispatcher({"webhooks": {**settings, "poll_interval": 0.05, "min_backoff": 0.05}})
        receipt, offer_id = d.offer(sample_recipient("fi", "FI"), offer_data(), now=NOW)
        outcome = accept(d, offer_id)
        deadline = time.monotonic() + 30
        while not [p for p in receiver.payloads() if p["type"] == "offer.accepted"]:
            assert time.monotonic() < deadline, "no offer.accepted webhook arrived"
            time.sleep(0.05)
        [payload] = [p for p in receiver.payloads() if p["type"] == "offer.accepted"]
        assert payload["data"]["offer_id"] == offer_id and payload["data"]["message_id"] == receipt.message_id
        assert payload["data"]["contract_message_id"] == outcome.offer["contract_message_id"]
        body = json.dumps(payload)
        assert "@" not in body and "Kiinteä" not in body  # ids only, no personal data or terms
        assert {p["type"] for p in receiver.payloads()} == {"offer.accepted"}  # only the chosen events
    finally:
        receiver.stop()
