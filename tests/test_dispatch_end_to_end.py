"""dispatch() for every type in every language through the in-process queue, files read back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from outbox_readers import email_parts, eml_path, json_lines, pdf_text, read_eml

import dispatch
from dispatch.errors import (
    InputError,
    InvalidData,
    InvalidRecipient,
    TemplateError,
    UnknownMessageType,
    UnsupportedLanguage,
)
from dispatch.samples import sample_data, sample_recipient
from dispatch.segments import count_segments

NOW = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)  # a Monday, inside calling hours everywhere
CASES = [("fi", "FI"), ("sv", "FI"), ("sv", "SE"), ("nb", "NO"), ("en", "NO")]
EMAIL_TYPES = [
    "contract_confirmation",
    "price_change",
    "terms_change",
    "renewal_offer",
    "newsletter",
    "marketing",
    "survey",
]


def person(language, country, **extra):
    return {**sample_recipient(language, country), "language": language, **extra}


@pytest.mark.parametrize("message_type", EMAIL_TYPES)
@pytest.mark.parametrize(("language", "country"), CASES)
def test_every_type_goes_out_by_email_in_every_language(dispatcher, tmp_path, message_type, language, country):
    data = sample_data(message_type, country)
    if message_type == "renewal_offer":  # inside Sweden's 90-to-60-day renewal window (issue 20)
        data.update(current_ends_on="2027-03-31", respond_by="2027-03-15")
    receipt = dispatcher.dispatch(message_type, person(language, country), data, now=NOW)
    assert receipt.status == "queued", receipt.reasons
    assert (receipt.channel, receipt.language, receipt.queue) == (
        "email",
        language,
        "email" if receipt.category == "statutory" else "email.bulk",
    )
    assert dispatcher.join(60)
    message = read_eml(eml_path(tmp_path / "outbox" / "email", receipt.message_id))
    assert message["Content-Language"] == language
    assert message["Message-ID"].startswith(f"<{receipt.message_id}@")
    text, html = email_parts(message)
    assert message.get_content_type() == "multipart/alternative"
    assert "<html" in html and text.strip()
    stored = dispatcher.store.message(receipt.message_id)
    assert stored["status"] == "sent"
    assert stored["content"]["parts"]["text"].strip() == text.strip()
    unsubscribe = message_type in ("marketing", "newsletter", "survey")
    assert ("List-Unsubscribe" in message) is unsubscribe
    if unsubscribe:
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "https://energia.example.fi/dispatch/u/" + receipt.message_id in message["List-Unsubscribe"]


def test_finnish_and_swedish_price_notices_show_localised_prices_and_dates(dispatcher, tmp_path):
    fi = dispatcher.dispatch("price_change", person("fi", "FI"), sample_data("price_change", "FI"), now=NOW)
    sv = dispatcher.dispatch("price_change", person("sv", "SE"), sample_data("price_change", "SE"), now=NOW)
    assert dispatcher.join(60)
    fi_text, fi_html = email_parts(read_eml(eml_path(tmp_path / "outbox" / "email", fi.message_id)))
    sv_text, _ = email_parts(read_eml(eml_path(tmp_path / "outbox" / "email", sv.message_id)))
    assert "8,90 c/kWh" in fi_text and "7,49 c/kWh" in fi_text and "1.5.2027" in fi_text
    assert "8,90 c/kWh" in fi_html
    assert "1 maj 2027" in sv_text and "89,50 öre/kWh" in sv_text and "49,00 kr/mån" in sv_text


def test_a_price_notice_by_sms_counts_the_euro_sign_twice(dispatcher, tmp_path):
    recipient = person("fi", "FI", preferred_channels={"price_change": "sms"})
    receipt = dispatcher.dispatch("price_change", recipient, sample_data("price_change", "FI"), now=NOW)
    assert receipt.channel == "sms" and receipt.queue == "sms"
    assert dispatcher.join(60)
    [line] = json_lines(tmp_path / "outbox" / "sms" / "messages.jsonl")
    assert line["to"] == "+358401234567"
    assert "€" in line["body"] and "8,90 c/kWh" in line["body"]
    expected = count_segments(line["body"])
    assert expected.encoding == "GSM-7"
    assert line["units"] == len(line["body"]) + line["body"].count("€") + sum(
        line["body"].count(c) for c in "[]{}|^~\\"
    )
    assert (line["segments"], line["encoding"]) == (expected.segments, "GSM-7")
    assert dispatcher.store.message(receipt.message_id)["meta"]["segments"] == expected.segments


@pytest.mark.parametrize(("language", "country"), CASES)
def test_letters_are_pdfs_with_the_address_and_the_prices(dispatcher, tmp_path, language, country):
    recipient = person(language, country, email=None)  # no email: a statutory notice falls back to a letter
    receipt = dispatcher.dispatch("price_change", recipient, sample_data("price_change", country), now=NOW)
    assert receipt.channel == "letter"
    assert dispatcher.join(60)
    text = pdf_text(tmp_path / "outbox" / "letter" / f"{receipt.message_id}.pdf")
    address = recipient["address"]
    assert address["name"] in text and address["city"] in text
    formatter = dispatcher.renderer.formatter(language, country)
    data = dispatcher.validate_data("price_change", sample_data("price_change", country))
    for element in data["price_elements"]:
        assert formatter.price(element) in text
    assert "1/1" in text


def test_phone_tasks_carry_the_script_and_calling_window(dispatcher, tmp_path):
    recipient = person("en", "NO", email=None, preferred_channels={"marketing": "phone"})
    receipt = dispatcher.dispatch("marketing", recipient, sample_data("marketing", "NO"), now=NOW)
    assert receipt.channel == "phone" and receipt.send_after == NOW
    assert dispatcher.join(60)
    [task] = json_lines(tmp_path / "outbox" / "phone" / "tasks.jsonl")
    assert task["phone"] == "+4741234567" and task["language"] == "en"
    assert "Vind 12" in task["script"]
    assert task["send_after"] == NOW.isoformat()


def test_a_phone_task_outside_calling_hours_is_held_in_the_store(dispatcher, tmp_path):
    saturday = datetime(2027, 1, 16, 12, 0, tzinfo=UTC)
    recipient = person("en", "NO", email=None, preferred_channels={"marketing": "phone"})
    receipt = dispatcher.dispatch("marketing", recipient, sample_data("marketing", "NO"), now=saturday)
    assert receipt.send_after == datetime(2027, 1, 18, 8, 0, tzinfo=UTC)  # Monday 09:00 in Oslo
    assert dispatcher.join(10)
    assert not (tmp_path / "outbox" / "phone").exists()
    assert dispatcher.store.message(receipt.message_id)["status"] == "queued"


def test_suppressed_messages_are_recorded_with_their_reasons(dispatcher):
    minor = person("fi", "FI", birth_date="2010-06-01", status="prospect", data_verified_on="2026-12-01")
    receipt = dispatcher.dispatch("marketing", minor, sample_data("marketing", "FI"), now=NOW)
    assert receipt.status == "suppressed" and not receipt.allowed
    assert "minor" in receipt.reasons and "no_consent" in receipt.reasons
    stored = dispatcher.store.message(receipt.message_id)
    assert stored["status"] == "suppressed" and stored["reasons"] == receipt.reasons
    assert stored["content"] is None


def test_the_same_idempotency_key_sends_once(dispatcher, tmp_path):
    args = ("price_change", person("fi", "FI"), sample_data("price_change", "FI"))
    first = dispatcher.dispatch(*args, idempotency_key="pc-2027-05:C-1001", now=NOW)
    second = dispatcher.dispatch(*args, idempotency_key="pc-2027-05:C-1001", now=NOW)
    assert second.status == "duplicate" and second.message_id == first.message_id
    assert second.channel == first.channel and second.legal_basis == "legal_obligation"
    assert dispatcher.join(60)
    assert len(list((tmp_path / "outbox" / "email").glob("*.eml"))) == 1


def test_decide_is_pure(dispatcher, tmp_path):
    decision = dispatcher.decide("price_change", person("fi", "FI"), sample_data("price_change", "FI"), now=NOW)
    assert decision.allowed and decision.channel == "email" and decision.legal_basis == "legal_obligation"
    assert dispatcher.store.status_counts() == {}
    assert not (tmp_path / "outbox").exists()


@pytest.mark.parametrize(
    ("message_type", "recipient", "data", "error", "text"),
    [
        ("price_chnage", {"id": "1", "country": "FI"}, {}, UnknownMessageType, "unknown message type 'price_chnage'"),
        ("price_change", {"id": "1", "country": "FI"}, {"reason": "x"}, InvalidData, "effective_on is missing"),
        (
            "price_change",
            {"id": "1", "country": "FI", "phone": "0401"},
            sample_data("price_change"),
            InvalidRecipient,
            "phone is not a valid number for FI",
        ),
        (
            "price_change",
            {"id": "1", "country": "FI", "language": "de"},
            sample_data("price_change"),
            UnsupportedLanguage,
            "language 'de' is not supported",
        ),
        ("price_change", {"id": "1", "country": "FI", "language": "de"}, {}, InputError, "effective_on is missing"),
    ],
)
def test_bad_input_names_the_problem_and_writes_nothing(
    dispatcher, tmp_path, message_type, recipient, data, error, text
):
    with pytest.raises(error, match=text):
        dispatcher.dispatch(message_type, recipient, data, now=NOW)
    assert dispatcher.store.status_counts() == {}
    assert not (tmp_path / "outbox").exists()


def test_a_broken_template_raises_and_writes_nothing(make_dispatcher, tmp_path):
    broken = tmp_path / "custom" / "fi" / "price_change"
    broken.mkdir(parents=True)
    (broken / "email.txt").write_text("{{ effective_on | date }} {{ no_such_variable }}", encoding="utf-8")
    d = make_dispatcher({"templates": {"paths": [str(tmp_path / "custom")]}})
    with pytest.raises(TemplateError, match=r"fi/price_change/email\.txt: 'no_such_variable' is undefined"):
        d.dispatch("price_change", person("fi", "FI"), sample_data("price_change"), now=NOW)
    assert d.store.status_counts() == {}
    assert not (tmp_path / "outbox").exists()


def test_naive_now_is_refused(dispatcher):
    with pytest.raises(InputError, match="timezone-aware"):
        dispatcher.decide("price_change", person("fi", "FI"), sample_data("price_change"), now=datetime(2027, 1, 1))


def test_module_level_dispatch_uses_the_default_dispatcher_and_delivers_at_close(tmp_path):
    (tmp_path / "dispatch.toml").write_text('[links]\nsecret = "s"\n', encoding="utf-8")
    receipt = dispatch.dispatch("price_change", person("fi", "FI"), sample_data("price_change"), now=NOW)
    assert receipt.status == "queued"
    dispatch.close_default()
    assert eml_path(tmp_path / "outbox" / "email", receipt.message_id).is_file()
    assert (tmp_path / "dispatch.db").is_file()


async def test_adispatch_works_for_asyncio_callers(dispatcher):
    receipt = await dispatcher.adispatch("survey", person("fi", "FI"), sample_data("survey"), now=NOW)
    assert receipt.status == "queued" and receipt.channel == "email"
