"""SMS sender ids per country: Traficom's rules for Finland (at most 11 portable characters,
3 or more for a registered SMS Sender ID), E.164 numbers everywhere; checked when the
configuration loads, each problem named with its key."""

from __future__ import annotations

import json

import pytest

from dispatch.errors import ConfigError
from dispatch_sms.senders import sender_problems


@pytest.mark.parametrize(
    ("sender", "country", "problem"),
    [
        ("PohjolanEnergia", "FI", "has 15 characters; an alphanumeric sender id has at most 11"),
        ("Sähkö", "FI", "use only 0-9, a-z, A-Z and spaces"),
        (" Pohjola", "FI", "must not start or end with a space"),
        ("Pohjola  En", "SE", "two spaces in a row"),
        ("PE", "FI", "shorter than the 3 characters Traficom registers"),
        ("+358 40 123", "FI", "is not an E.164 number"),
    ],
)
def test_a_bad_sender_is_named_with_what_is_wrong(sender, country, problem):
    problems = sender_problems(sender, country)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    ("sender", "country"),
    [("PohjolanEn", "FI"), ("Pohjola En", "FI"), ("Pohjola12345"[:11], "SE"), ("PE", "SE"), ("+358401234567", "FI")],
)
def test_good_senders_pass(sender, country):
    assert sender_problems(sender, country) == []


def test_the_edges_of_length(tmp_path):
    assert sender_problems("A" * 11, "FI") == []
    assert sender_problems("A" * 12, "FI") != []
    assert sender_problems("ABC", "FI") == [] and sender_problems("AB", "FI") != []


def test_the_configuration_is_refused_naming_the_key_and_country(make_dispatcher):
    with pytest.raises(ConfigError) as raised:
        make_dispatcher({"sms": {"sender": "Pohjolan Energia"}})
    text = str(raised.value)
    assert "channels.sms.sender (for FI)" in text and "at most 11" in text
    with pytest.raises(ConfigError, match=r"channels\.sms\.senders\.FI: 'PE' is shorter"):
        make_dispatcher({"sms": {"senders": {"FI": "PE", "SE": "PE"}}})
    with pytest.raises(ConfigError, match=r"channels\.sms\.senders\.DK: unknown country"):
        make_dispatcher({"sms": {"senders": {"DK": "Pohjola"}}})


def test_each_country_sends_from_its_own_sender(make_dispatcher, tmp_path, run_delivery, outgoing):
    d = make_dispatcher({"sms": {"sender": "PohjolanEn", "senders": {"SE": "+46701234567"}}})
    for country, number in (("FI", "+358401234567"), ("SE", "+46701234568")):
        message = outgoing("sms", number, {"text": "Hej"}, country=country)
        run_delivery(d, "sms", message)
    lines = [json.loads(line) for line in (tmp_path / "outbox" / "sms" / "messages.jsonl").read_text().splitlines()]
    assert [line["from"] for line in lines] == ["PohjolanEn", "+46701234567"]
