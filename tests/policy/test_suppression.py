"""Marketing suppression rules: minor, quiet_period, retention_expired, frequency_cap, do_not_contact.

Each edge is tested on both sides, with ``now`` in the recipient's time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from policykit import at, consent, contacts, days_before, person

NOW = at("FI", 2026, 3, 4, 12)  # a Wednesday, midday
CONSENTED = [consent("all", True, "2025-01-01T00:00:00+00:00")]


# -- minor --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "reasons"),
    [
        ((2026, 3, 3), ["minor"]),  # 17, the day before the 18th birthday
        ((2026, 3, 4), []),  # 18 on the birthday
        ((2026, 3, 5), []),
    ],
)
def test_minor_until_the_18th_birthday(kit, today, reasons):
    d = kit.decide("marketing", person(birth_date="2008-03-04"), at("FI", *today, 12))
    assert d.reasons == reasons


@pytest.mark.parametrize(
    ("today", "reasons"),
    [
        ((2026, 2, 28), ["minor"]),
        ((2026, 3, 1), []),  # no 29 February in 2026: 18 on 1 March
    ],
)
def test_minor_born_on_29_february(kit, today, reasons):
    d = kit.decide("marketing", person(birth_date="2008-02-29"), at("FI", *today, 12))
    assert d.reasons == reasons


def test_minor_birthday_is_counted_in_the_recipients_time_zone(kit):
    """00:30 on the birthday in Helsinki is still the day before in UTC."""
    born = person(birth_date="2008-03-04")
    moment = at("FI", 2026, 3, 4, 0, 30)
    assert kit.decide("marketing", born, moment).reasons == []
    assert kit.decide("marketing", born, moment.astimezone(UTC)).reasons == []
    assert kit.decide("marketing", born, at("FI", 2026, 3, 3, 23, 59)).reasons == ["minor"]


@pytest.mark.parametrize("channel", ["letter", "phone", "sms"])
def test_minor_applies_to_every_channel(kit, channel):
    d = kit.decide("marketing", person(birth_date="2010-01-01", preferred_channels={"marketing": channel}), NOW)
    assert (d.channel, d.reasons) == (channel, ["minor"])


def test_no_birth_date_is_not_a_minor(kit):
    assert kit.decide("marketing", person(birth_date=None), NOW).reasons == []


# -- quiet_period ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paid", "reasons"),
    [
        ("2025-09-05", ["quiet_period"]),  # 6 months less a day ago
        ("2025-09-04", []),  # 6 months ago to the day
        ("2025-09-03", []),  # 6 months and a day ago
    ],
)
def test_quiet_period_six_months_after_the_last_paid_invoice(kit, paid, reasons):
    d = kit.decide("marketing", person(status="former", last_invoice_paid_on=paid, consents=CONSENTED), NOW)
    assert d.reasons == reasons


def test_former_customer_without_last_paid_invoice_is_quiet(kit):
    d = kit.decide("marketing", person(status="former", last_invoice_paid_on=None, consents=CONSENTED), NOW)
    assert d.reasons == ["quiet_period"]


def test_quiet_period_applies_to_letters_too(kit):
    d = kit.decide(
        "marketing",
        person(status="former", last_invoice_paid_on="2026-01-10", preferred_channels={"marketing": "letter"}),
        NOW,
    )
    assert (d.channel, d.reasons) == ("letter", ["quiet_period"])


def test_quiet_period_does_not_apply_to_active_customers(kit):
    d = kit.decide("marketing", person(status="active", last_invoice_paid_on="2026-03-01"), NOW)
    assert d.reasons == []


# -- retention_expired ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paid", "reasons"),
    [
        ("2024-03-05", []),  # 24 months less a day ago
        ("2024-03-04", []),  # 24 months ago to the day
        ("2024-03-03", ["retention_expired"]),  # 24 months and a day ago
    ],
)
def test_former_customer_data_expires_after_24_months(kit, paid, reasons):
    d = kit.decide("marketing", person(status="former", last_invoice_paid_on=paid, consents=CONSENTED), NOW)
    assert d.reasons == reasons


@pytest.mark.parametrize(
    ("verified", "reasons"),
    [
        ("2025-09-05", []),  # 6 months less a day old
        ("2025-09-04", []),  # 6 months old to the day
        ("2025-09-03", ["retention_expired"]),  # 6 months and a day old
    ],
)
def test_prospect_data_expires_after_6_months(kit, verified, reasons):
    d = kit.decide("marketing", person(status="prospect", data_verified_on=verified, consents=CONSENTED), NOW)
    assert d.reasons == reasons


@pytest.mark.parametrize(
    ("today", "reasons"),
    [
        ((2026, 2, 28), []),  # 31 August + 6 months is the last day of February
        ((2026, 3, 1), ["retention_expired"]),
    ],
)
def test_prospect_data_expiry_at_a_month_end(kit, today, reasons):
    d = kit.decide(
        "marketing", person(status="prospect", data_verified_on="2025-08-31", consents=CONSENTED), at("FI", *today, 12)
    )
    assert d.reasons == reasons


def test_prospect_without_data_verified_on_is_expired(kit):
    d = kit.decide("marketing", person(status="prospect", data_verified_on=None, consents=CONSENTED), NOW)
    assert d.reasons == ["retention_expired"]


def test_expired_prospect_without_consent_lists_both_reasons(kit):
    d = kit.decide("marketing", person(status="prospect", data_verified_on="2024-01-01"), NOW)
    assert d.reasons == ["no_consent", "retention_expired"]


# -- frequency_cap --------------------------------------------------------------------------


def test_three_earlier_marketing_messages_allow_a_fourth(kit):
    d = kit.decide("marketing", person(), NOW, history=contacts(*days_before(NOW, 300, 200, 100)))
    assert d.reasons == []


def test_four_earlier_marketing_messages_cap_the_fifth(kit):
    d = kit.decide("marketing", person(), NOW, history=contacts(*days_before(NOW, 300, 200, 100, 30)))
    assert (d.allowed, d.reasons) == (False, ["frequency_cap"])


@pytest.mark.parametrize(
    ("oldest", "reasons"),
    [
        (364, ["frequency_cap"]),  # still inside the rolling 365 days
        (365, []),  # exactly 365 days ago: out of the window
        (366, []),
    ],
)
def test_frequency_cap_rolling_365_day_window(kit, oldest, reasons):
    d = kit.decide("marketing", person(), NOW, history=contacts(*days_before(NOW, oldest, 200, 100, 30)))
    assert d.reasons == reasons


@pytest.mark.parametrize(
    ("ago", "reasons"),
    [
        (timedelta(days=6), ["frequency_cap"]),
        (timedelta(days=7) - timedelta(minutes=1), ["frequency_cap"]),
        (timedelta(days=7), []),
        (timedelta(days=8), []),
    ],
)
def test_at_most_one_marketing_message_per_7_days(kit, ago, reasons):
    d = kit.decide("marketing", person(), NOW, history=contacts(NOW - ago))
    assert d.reasons == reasons


def test_frequency_cap_counts_every_channel(kit):
    d = kit.decide(
        "marketing",
        person(preferred_channels={"marketing": "letter"}),
        NOW,
        history=contacts(NOW - timedelta(days=2), channel="sms"),
    )
    assert (d.channel, d.reasons) == ("letter", ["frequency_cap"])


def test_statutory_and_service_messages_do_not_count(kit):
    history = contacts(*days_before(NOW, 1, 50, 100, 150, 200), category="statutory") + contacts(
        *days_before(NOW, 2, 60, 120, 180), category="service"
    )
    assert kit.decide("marketing", person(), NOW, history=history).reasons == []


@pytest.mark.parametrize(
    "type_name", ["price_change", "terms_change", "contract_confirmation", "survey", "renewal_offer"]
)
def test_statutory_and_service_messages_are_never_capped(kit, type_name):
    history = contacts(*days_before(NOW, 1, 2, 3, 4, 5, 6))
    d = kit.decide(
        type_name,
        person(newsletter=True),
        NOW,
        history=history,
        data={"effective_on": "2026-12-01", "signed_on": "2026-03-02"},
    )
    assert (d.allowed, d.reasons) == (True, [])


@pytest.mark.parametrize(
    ("ahead", "reasons"),
    [
        (timedelta(hours=1), ["frequency_cap"]),  # e.g. an SMS waiting for the morning
        (timedelta(days=3), ["frequency_cap"]),  # a call waiting for Easter to pass
        (timedelta(days=7), []),
    ],
)
def test_a_marketing_message_scheduled_for_later_counts(kit, ahead, reasons):
    d = kit.decide("marketing", person(), NOW, history=contacts(NOW + ahead))
    assert d.reasons == reasons


@pytest.mark.parametrize(
    ("ahead", "reasons"),
    [
        (10, ["frequency_cap"]),  # 300 days ago to 10 days ahead: five messages within 365 days
        (66, []),  # 300 days ago to 66 days ahead is more than 365 days
    ],
)
def test_scheduled_messages_count_in_the_365_day_window(kit, ahead, reasons):
    history = contacts(*days_before(NOW, 300, 200, 100, -ahead))
    assert kit.decide("marketing", person(), NOW, history=history).reasons == reasons


def test_messages_more_than_a_year_ahead_do_not_count(kit):
    history = contacts(*days_before(NOW, -366, -400, -500, -600))
    assert kit.decide("marketing", person(), NOW, history=history).reasons == []


def test_frequency_cap_is_the_same_whatever_time_zone_now_is_given_in(kit):
    """7 days are 7 × 24 hours, also across the switch to summer time (29 March 2026)."""
    now = at("FI", 2026, 3, 30, 12)  # 09:00 UTC; a week earlier Helsinki was UTC+2
    history = contacts(datetime(2026, 3, 23, 9, 30, tzinfo=UTC))  # 6 days 23.5 hours earlier
    local = kit.decide("marketing", person(), now, history=history)
    utc = kit.decide("marketing", person(), now.astimezone(UTC), history=history)
    assert local.reasons == utc.reasons == ["frequency_cap"]


# -- do_not_contact ------------------------------------------------------------------------


def _recipient(country: str, status: str, channel: str):
    extra = {"prospect": {"data_verified_on": "2026-02-01"}, "former": {"last_invoice_paid_on": "2025-03-01"}}
    return person(country, status=status, preferred_channels={"marketing": channel}, **extra.get(status, {}))


@pytest.mark.parametrize("status", ["prospect", "active", "former"])
@pytest.mark.parametrize("channel", ["letter", "phone"])
def test_asml_listing_suppresses_letters_and_calls_in_finland_whatever_the_status(kit, status, channel):
    d = kit.decide("marketing", _recipient("FI", status, channel), NOW, listed_on={"asml"})
    assert (d.channel, d.reasons) == (channel, ["do_not_contact"])


@pytest.mark.parametrize(
    ("country", "register", "channel"),
    [
        ("SE", "nix-adresserat", "letter"),
        ("SE", "nix-telefon", "phone"),
        ("NO", "reservasjonsregisteret", "letter"),
        ("NO", "reservasjonsregisteret", "phone"),
    ],
)
@pytest.mark.parametrize("status", ["prospect", "former"])
def test_se_and_no_registers_suppress_prospects_and_former_customers(kit, country, register, channel, status):
    d = kit.decide("marketing", _recipient(country, status, channel), at(country, 2026, 3, 4, 12), listed_on={register})
    assert (d.channel, d.reasons) == (channel, ["do_not_contact"])


@pytest.mark.parametrize(
    ("country", "register", "channel"),
    [
        ("SE", "nix-adresserat", "letter"),
        ("SE", "nix-telefon", "phone"),
        ("NO", "reservasjonsregisteret", "letter"),
        ("NO", "reservasjonsregisteret", "phone"),
    ],
)
def test_se_and_no_active_customers_are_exempt(kit, country, register, channel):
    d = kit.decide(
        "marketing", _recipient(country, "active", channel), at(country, 2026, 3, 4, 12), listed_on={register}
    )
    assert (d.channel, d.reasons) == (channel, [])


@pytest.mark.parametrize(("register", "channel"), [("nix-adresserat", "phone"), ("nix-telefon", "letter")])
def test_a_swedish_register_covers_only_its_own_channel(kit, register, channel):
    d = kit.decide("marketing", _recipient("SE", "prospect", channel), at("SE", 2026, 3, 4, 12), listed_on={register})
    assert d.reasons == []


@pytest.mark.parametrize("status", ["prospect", "active"])
def test_registers_do_not_affect_email(kit, status):
    d = kit.decide(
        "marketing", person(status=status, data_verified_on="2026-02-01", consents=CONSENTED), NOW, listed_on={"asml"}
    )
    assert (d.channel, d.reasons) == ("email", [])


@pytest.mark.parametrize(
    ("country", "register"),
    [
        ("FI", "reservasjonsregisteret"),
        ("NO", "asml"),
        ("SE", "asml"),
        ("FI", "nix-adresserat"),
    ],
)
def test_a_register_of_another_country_does_not_apply(kit, country, register):
    d = kit.decide(
        "marketing", _recipient(country, "prospect", "letter"), at(country, 2026, 3, 4, 12), listed_on={register}
    )
    assert d.reasons == []


def test_not_listed_is_not_suppressed(kit):
    assert kit.decide("marketing", _recipient("FI", "prospect", "letter"), NOW).reasons == []


def test_a_listed_person_who_consented_to_letters_gets_them(kit):
    recipient = _recipient("FI", "prospect", "letter") | {"consents": [consent("letter", True, "2025-10-01")]}
    assert kit.decide("marketing", recipient, NOW, listed_on={"asml"}).reasons == []


def test_statutory_letter_to_a_listed_person_goes(kit):
    d = kit.decide(
        "price_change",
        person(email=None, status="former", last_invoice_paid_on="2026-02-01"),
        NOW,
        listed_on={"asml"},
        data={"effective_on": "2026-06-01"},
    )
    assert (d.channel, d.reasons) == ("letter", [])
