"""Service messages: newsletter subscriptions, survey objections, renewal offers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from policykit import TYPES, at, consent, contacts, days_before, ledger, person

from dispatch.errors import InvalidData
from dispatch.policy import effective_category

NOW = at("FI", 2026, 3, 4, 12)
T1 = "2025-01-10T09:00:00+00:00"
T2 = "2025-06-10T09:00:00+00:00"


# -- newsletter -------------------------------------------------------------------------------


def test_newsletter_to_a_subscriber(kit):
    d = kit.decide("newsletter", person(newsletter=True), NOW)
    assert (d.allowed, d.reasons, d.category, d.channel, d.legal_basis) == (True, [], "service", "email", "consent")


def test_newsletter_to_someone_not_subscribed(kit):
    d = kit.decide("newsletter", person(newsletter=False), NOW)
    assert (d.allowed, d.reasons) == (False, ["unsubscribed"])


@pytest.mark.parametrize("channel", ["email", "all"])
def test_a_ledger_subscription_is_enough(kit, channel):
    d = kit.decide(
        "newsletter",
        person(newsletter=None),
        NOW,
        ledger=[ledger(channel, True, datetime(2025, 5, 1, tzinfo=UTC), purpose="newsletter")],
    )
    assert d.reasons == []


def test_newsletter_false_in_the_mapping_wins_over_an_older_ledger_subscription(kit):
    """The undated newsletter: false is an objection: it always wins (SPEC §3)."""
    subscribed = ledger("email", True, NOW - timedelta(seconds=1), purpose="newsletter")
    d = kit.decide("newsletter", person(newsletter=False), NOW, ledger=[subscribed])
    assert (d.allowed, d.reasons) == (False, ["unsubscribed"])
    assert "customer data says no" in d.notes["unsubscribed"]
    no_flag = kit.decide("newsletter", person(newsletter=None), NOW, ledger=[subscribed])
    assert (no_flag.allowed, no_flag.reasons) == (True, [])


@pytest.mark.parametrize("newsletter", [True, None])
def test_a_ledger_unsubscribe_a_second_ago_beats_the_flag_or_its_absence(kit, newsletter):
    subscribed = ledger("email", True, datetime(2025, 5, 1, tzinfo=UTC), purpose="newsletter")
    withdrawn = ledger("email", False, NOW - timedelta(seconds=1), purpose="newsletter")
    d = kit.decide("newsletter", person(newsletter=newsletter), NOW, ledger=[subscribed, withdrawn])
    assert d.reasons == ["unsubscribed"]


def test_no_flag_and_no_entry_is_not_subscribed(kit):
    assert kit.decide("newsletter", person(newsletter=None), NOW).reasons == ["unsubscribed"]


def test_a_ledger_subscription_dated_after_now_does_not_count_yet(kit):
    early = ledger("email", True, NOW + timedelta(seconds=1), purpose="newsletter")
    assert kit.decide("newsletter", person(newsletter=None), NOW, ledger=[early]).reasons == ["unsubscribed"]
    on_time = ledger("email", True, NOW, purpose="newsletter")
    assert kit.decide("newsletter", person(newsletter=None), NOW, ledger=[on_time]).reasons == []


@pytest.mark.parametrize("channel", ["email", "all"])
def test_a_ledger_unsubscribe_beats_the_flag(kit, channel):
    d = kit.decide(
        "newsletter",
        person(newsletter=True),
        NOW,
        ledger=[ledger(channel, False, datetime(2025, 5, 1, tzinfo=UTC), purpose="newsletter")],
    )
    assert d.reasons == ["unsubscribed"]


def test_newsletter_subscribe_then_unsubscribe_then_subscribe(kit):
    entries = [consent("email", True, T1, purpose="newsletter"), consent("email", False, T2, purpose="newsletter")]
    assert kit.decide("newsletter", person(consents=entries), NOW).reasons == ["unsubscribed"]
    again = ledger("email", True, datetime(2025, 12, 1, tzinfo=UTC), purpose="newsletter")
    assert kit.decide("newsletter", person(consents=entries), NOW, ledger=[again]).reasons == []


def test_an_unsubscribe_on_sms_does_not_touch_the_email_newsletter(kit):
    entries = [consent("sms", False, T2, purpose="newsletter")]
    assert kit.decide("newsletter", person(newsletter=True, consents=entries), NOW).reasons == []


def test_newsletter_is_not_marketing(kit):
    """A marketing objection, no consent, age and frequency do not stop a subscribed newsletter."""
    recipient = person(
        status="prospect",
        newsletter=True,
        birth_date="2012-01-01",
        marketing_blocked=True,
        consents=[consent("all", False, T2)],
    )
    d = kit.decide("newsletter", recipient, NOW, history=contacts(*days_before(NOW, 1, 2, 3, 4, 5)))
    assert (d.allowed, d.reasons) == (True, [])


def test_newsletter_without_email_is_no_address(kit):
    d = kit.decide("newsletter", person(newsletter=True, email=None), NOW)
    assert (d.channel, d.reasons) == (None, ["no_address"])


# -- survey -----------------------------------------------------------------------------------


def test_survey_without_objection_goes(kit):
    d = kit.decide("survey", person(), NOW)
    assert (d.allowed, d.reasons, d.legal_basis) == (True, [], "legitimate_interest")


@pytest.mark.parametrize("channel", ["email", "all"])
def test_survey_honours_an_objection(kit, channel):
    d = kit.decide("survey", person(consents=[consent(channel, False, T1, purpose="survey")]), NOW)
    assert (d.allowed, d.reasons) == (False, ["unsubscribed"])


def test_survey_objection_from_the_ledger(kit):
    d = kit.decide("survey", person(), NOW, ledger=[ledger("all", False, datetime(2025, 1, 1, tzinfo=UTC), "survey")])
    assert d.reasons == ["unsubscribed"]


def test_survey_objection_on_sms_does_not_stop_an_email_survey(kit):
    d = kit.decide("survey", person(consents=[consent("sms", False, T1, purpose="survey")]), NOW)
    assert (d.channel, d.reasons) == ("email", [])


def test_survey_objection_withdrawn_later(kit):
    entries = [consent("all", False, T1, purpose="survey"), consent("all", True, T2, purpose="survey")]
    assert kit.decide("survey", person(consents=entries), NOW).reasons == []


def test_survey_ignores_a_marketing_objection(kit):
    assert kit.decide("survey", person(marketing_blocked=True), NOW).reasons == []


# -- renewal_offer ----------------------------------------------------------------------------


def test_renewal_of_the_same_product_is_a_service_message(kit):
    recipient = person(consents=[consent("all", False, T1)])  # no marketing at all, please
    d = kit.decide("renewal_offer", recipient, NOW, data={"current_product": "Kiinteä 24"})
    assert (d.category, d.allowed, d.reasons, d.legal_basis) == ("service", True, [], "contract")


@pytest.mark.parametrize("current", [None, "", "  "])
def test_renewal_without_current_product_is_refused_not_guessed(kit, current):
    """No silent default: without current_product a renewal cannot be told from an offer."""
    with pytest.raises(InvalidData, match="current_product"):  # refused when the data is checked
        kit.decide("renewal_offer", person(marketing_blocked=True), NOW, data={"current_product": current})
    with pytest.raises(InvalidData, match="current_product"):
        effective_category(TYPES["renewal_offer"], {"product": "Kiinteä 24", "current_product": current})


def test_renewal_category_on_both_sides_of_the_product_edge():
    renewal = TYPES["renewal_offer"]
    assert effective_category(renewal, {"product": "Kiinteä 24", "current_product": "Kiinteä 24"}) == "service"
    assert effective_category(renewal, {"product": "Kiinteä 24", "current_product": "Kiinteä 12"}) == "marketing"
    assert effective_category(TYPES["newsletter"], {}) == "service"  # other types need no current_product


def test_renewal_of_the_same_product_ignores_a_marketing_ban(kit):
    d = kit.decide("renewal_offer", person(marketing_blocked=True), NOW, data={"current_product": "Kiinteä 24"})
    assert (d.category, d.reasons) == ("service", [])


@pytest.mark.parametrize(
    ("fields", "reasons"),
    [
        ({}, []),
        ({"consents": [consent("email", False, T1)]}, ["opted_out"]),
        ({"marketing_blocked": True}, ["opted_out"]),
        ({"birth_date": "2010-06-01"}, ["minor"]),
        ({"status": "former", "last_invoice_paid_on": "2025-03-01"}, ["no_consent"]),
        (
            {"status": "former", "last_invoice_paid_on": "2026-01-01", "consents": [consent("email", True, T1)]},
            ["quiet_period"],
        ),
    ],
)
def test_renewal_offering_another_product_follows_marketing_rules(kit, fields, reasons):
    d = kit.decide("renewal_offer", person(**fields), NOW, data={"current_product": "Spot"})
    assert (d.category, d.reasons) == ("marketing", reasons)


def test_renewal_offering_another_product_has_a_marketing_legal_basis(kit):
    d = kit.decide("renewal_offer", person(), NOW, data={"current_product": "Spot"})
    assert (d.allowed, d.legal_basis) == (True, "soft_opt_in")


def test_renewal_offering_another_product_is_frequency_capped(kit):
    d = kit.decide(
        "renewal_offer", person(), NOW, data={"current_product": "Spot"}, history=contacts(NOW.replace(day=1))
    )
    assert d.reasons == ["frequency_cap"]


def test_renewal_offering_another_product_to_a_listed_person_by_letter(kit):
    recipient = person(status="former", last_invoice_paid_on="2025-03-01", preferred_channels={"marketing": "letter"})
    d = kit.decide("renewal_offer", recipient, NOW, data={"current_product": "Spot"}, listed_on={"asml"})
    assert (d.channel, d.reasons) == ("letter", ["do_not_contact"])


def test_renewal_channel_follows_the_effective_category_preference(kit):
    prefs = {"service": "letter", "marketing": "sms"}
    same = kit.decide("renewal_offer", person(preferred_channels=prefs), NOW)
    other = kit.decide("renewal_offer", person(preferred_channels=prefs), NOW, data={"current_product": "Spot"})
    assert (same.channel, other.channel) == ("letter", "sms")
