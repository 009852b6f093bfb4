"""Statutory messages: notice lead times, the confirmation deadline, channel fallback.

Statutory messages cannot be opted out of: only no_address and notice_period apply.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from policykit import TZ, at, consent, contacts, days_before, person

NOW = at("FI", 2026, 3, 4, 12)
EFFECTIVE = "2026-05-01"


# -- notice_period: the last sending day allowed and the first refused ----------------------


@pytest.mark.parametrize(
    ("country", "kind", "last_allowed"),
    [
        ("FI", "household", (2026, 4, 1)),  # 1 month
        ("SE", "household", (2026, 3, 1)),  # 2 months
        ("NO", "household", (2026, 4, 1)),  # 30 days
        ("FI", "business", (2026, 4, 17)),  # 14 days
        ("SE", "business", (2026, 4, 17)),
        ("NO", "business", (2026, 4, 17)),
    ],
)
@pytest.mark.parametrize("type_name", ["price_change", "terms_change"])
def test_notice_lead_time_by_email(kit, type_name, country, kind, last_allowed):
    recipient = person(country, kind=kind)
    last = at(country, *last_allowed, 12)
    on_time = kit.decide(type_name, recipient, last, data={"effective_on": EFFECTIVE})
    too_late = kit.decide(type_name, recipient, last + timedelta(days=1), data={"effective_on": EFFECTIVE})
    assert (on_time.channel, on_time.allowed, on_time.reasons) == ("email", True, [])
    assert (too_late.allowed, too_late.reasons) == (False, ["notice_period"])


def test_notice_month_arithmetic_at_a_month_end(kit):
    """31 January + 1 month is 28 February."""
    sent = at("FI", 2026, 1, 31, 12)
    assert kit.decide("price_change", person(), sent, data={"effective_on": "2026-02-28"}).reasons == []
    assert kit.decide("price_change", person(), sent, data={"effective_on": "2026-02-27"}).reasons == ["notice_period"]


def test_notice_counts_the_sending_day_in_the_recipients_time_zone(kit):
    """23:30 UTC on 1 April is already 2 April in Oslo: one day too late for 1 May."""
    recipient = person("NO")
    assert (
        kit.decide(
            "price_change", recipient, datetime(2026, 4, 1, 21, 30, tzinfo=UTC), data={"effective_on": EFFECTIVE}
        ).reasons
        == []
    )
    assert kit.decide(
        "price_change", recipient, datetime(2026, 4, 1, 22, 30, tzinfo=UTC), data={"effective_on": EFFECTIVE}
    ).reasons == ["notice_period"]


@pytest.mark.parametrize(
    ("country", "sent", "arrives", "lead"),
    [
        # Maundy Thursday (NO), Good Friday and Easter Monday are not delivery days.
        ("FI", (2026, 4, 1), (2026, 4, 8), (2026, 5, 8)),
        ("SE", (2026, 3, 31), (2026, 4, 7), (2026, 6, 7)),
        ("NO", (2026, 4, 1), (2026, 4, 9), (2026, 5, 9)),
    ],
)
def test_letter_notice_counts_delivery_working_days_across_easter(kit, country, sent, arrives, lead):
    recipient = person(country, preferred_channels={"price_change": "letter"})
    moment = at(country, *sent, 12)
    earliest = datetime(*lead).date()
    ok = kit.decide("price_change", recipient, moment, data={"effective_on": earliest.isoformat()})
    late = kit.decide(
        "price_change", recipient, moment, data={"effective_on": (earliest - timedelta(days=1)).isoformat()}
    )
    assert (ok.channel, ok.reasons) == ("letter", [])
    assert (late.channel, late.reasons) == ("letter", ["notice_period"])
    assert f"arrives {datetime(*arrives).date().isoformat()} by letter" in late.notes["notice_period"]


def test_the_same_notice_sent_by_email_on_the_same_day_passes(kit):
    moment = at("FI", 2026, 4, 1, 12)
    by_email = kit.decide("price_change", person(), moment, data={"effective_on": "2026-05-07"})
    by_letter = kit.decide("price_change", person(email=None), moment, data={"effective_on": "2026-05-07"})
    assert (by_email.channel, by_email.reasons) == ("email", [])
    assert (by_letter.channel, by_letter.reasons) == ("letter", ["notice_period"])


def test_sms_notice_has_no_delivery_days(kit):
    recipient = person(preferred_channels={"price_change": "sms"})
    d = kit.decide("price_change", recipient, at("FI", 2026, 4, 1, 12), data={"effective_on": EFFECTIVE})
    assert (d.channel, d.reasons) == ("sms", [])


def test_notice_period_does_not_apply_to_contract_confirmation(kit):
    d = kit.decide("contract_confirmation", person(), NOW, data={"signed_on": "2026-03-03", "starts_on": "2026-03-05"})
    assert d.reasons == []


# -- contract_confirmation deadline: 7 working days after signed_on -------------------------


@pytest.mark.parametrize(
    ("country", "signed", "last_day"),
    [
        # Easter 2026: Good Friday 3.4., Easter Monday 6.4.; in Norway also Maundy Thursday 2.4.
        ("FI", (2026, 4, 1), (2026, 4, 14)),
        ("SE", (2026, 4, 1), (2026, 4, 14)),
        ("NO", (2026, 4, 1), (2026, 4, 15)),
        # Midsummer Eve (Friday 19.6.2026) is a day off in Finland and Sweden, not in Norway.
        ("FI", (2026, 6, 16), (2026, 6, 26)),
        ("SE", (2026, 6, 16), (2026, 6, 26)),
        ("NO", (2026, 6, 16), (2026, 6, 25)),
        # Christmas: Christmas Eve off in FI and SE, New Year's Eve in SE; New Year's Day everywhere.
        ("FI", (2026, 12, 21), (2027, 1, 4)),
        ("SE", (2026, 12, 21), (2027, 1, 5)),
        ("NO", (2026, 12, 21), (2026, 12, 31)),
    ],
)
def test_confirmation_deadline_is_7_working_days_after_signing(kit, country, signed, last_day):
    signed_on = datetime(*signed).date().isoformat()
    d = kit.decide("contract_confirmation", person(country), at(country, *signed, 15), data={"signed_on": signed_on})
    expected = datetime(*last_day, 23, 59, 59, tzinfo=TZ[country])
    assert d.deadline == expected
    assert d.deadline.utcoffset() == expected.utcoffset()  # the country's own clock


def test_confirmation_deadline_instant_in_utc(kit):
    d = kit.decide("contract_confirmation", person("NO"), at("NO", 2026, 6, 16, 9), data={"signed_on": "2026-06-16"})
    assert d.deadline.astimezone(UTC) == datetime(2026, 6, 25, 21, 59, 59, tzinfo=UTC)  # CEST is UTC+2


@pytest.mark.parametrize(
    "type_name", ["price_change", "terms_change", "marketing", "newsletter", "survey", "renewal_offer"]
)
def test_other_types_have_no_deadline(kit, type_name):
    d = kit.decide(type_name, person(newsletter=True), NOW, data={"effective_on": "2026-12-01"})
    assert d.deadline is None


# -- statutory messages ignore every marketing reason --------------------------------------

_EVERYTHING_AGAINST = {
    "status": "prospect",  # no consent, and data far too old
    "data_verified_on": "2020-01-01",
    "birth_date": "2012-05-05",  # a minor
    "marketing_blocked": True,
    "newsletter": False,
    "consents": [
        consent("all", False, "2025-12-01T00:00:00+00:00"),
        consent("survey", False, "2025-12-01T00:00:00+00:00"),
    ],
}


@pytest.mark.parametrize(
    ("type_name", "channel", "basis"),
    [
        ("price_change", "email", "legal_obligation"),
        ("price_change", "sms", "legal_obligation"),
        ("price_change", "letter", "legal_obligation"),
        ("terms_change", "sms", "legal_obligation"),
        ("terms_change", "letter", "legal_obligation"),
        ("contract_confirmation", "email", "contract"),
        ("contract_confirmation", "letter", "contract"),
    ],
)
def test_statutory_messages_ignore_every_marketing_reason(kit, type_name, channel, basis):
    recipient = person(**_EVERYTHING_AGAINST, preferred_channels={type_name: channel})
    history = contacts(*days_before(NOW, 1, 2, 3, 4, 5))
    d = kit.decide(
        type_name,
        recipient,
        NOW,
        history=history,
        listed_on={"asml"},
        data={"effective_on": "2026-06-01", "signed_on": "2026-03-03"},
    )
    assert (d.allowed, d.reasons, d.channel, d.legal_basis, d.category) == (True, [], channel, basis, "statutory")


def test_statutory_without_any_usable_address_is_no_address(kit):
    d = kit.decide(
        "price_change", person(email=None, phone=None, address=None), NOW, data={"effective_on": "2026-06-01"}
    )
    assert (d.allowed, d.channel, d.reasons) == (False, None, ["no_address"])


def test_no_address_and_notice_period_are_both_listed(kit):
    d = kit.decide(
        "price_change", person(email=None, phone=None, address=None), NOW, data={"effective_on": "2026-03-20"}
    )
    assert d.reasons == ["no_address", "notice_period"]


def test_a_landline_is_not_an_sms_address(kit):
    from policykit import LANDLINE

    d = kit.decide(
        "price_change",
        person(email=None, address=None, phone=LANDLINE["FI"], preferred_channels={"price_change": "sms"}),
        NOW,
        data={"effective_on": "2026-06-01"},
    )
    assert (d.channel, d.reasons) == (None, ["no_address"])


def test_statutory_falls_back_from_email_to_letter(kit):
    d = kit.decide("price_change", person(email=None), NOW, data={"effective_on": "2026-06-01"})
    assert (d.allowed, d.channel, d.reasons) == (True, "letter", [])


def test_confirmation_falls_back_to_letter_even_when_sms_is_preferred(kit):
    d = kit.decide("contract_confirmation", person(email=None, preferred_channels={"default": "sms"}), NOW)
    assert (d.channel, d.reasons) == ("letter", [])


def test_price_notice_honours_a_preference_for_sms(kit):
    d = kit.decide(
        "price_change", person(preferred_channels={"price_change": "sms"}), NOW, data={"effective_on": "2026-06-01"}
    )
    assert d.channel == "sms"


def test_price_notice_honours_a_category_preference(kit):
    d = kit.decide(
        "price_change",
        person(preferred_channels={"statutory": "letter", "default": "sms"}),
        NOW,
        data={"effective_on": "2026-06-01"},
    )
    assert d.channel == "letter"


def test_marketing_without_any_usable_address_is_no_address(kit):
    d = kit.decide("marketing", person(email=None, phone=None, address=None), NOW)
    assert (d.allowed, d.channel, d.reasons, d.legal_basis) == (False, None, ["no_address"], None)
