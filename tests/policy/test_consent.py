"""Consent, soft opt-in and objections (SPEC §4: no_consent, opted_out).

The newest entry per (purpose, channel) wins, an entry on "all" counts for every
channel, the ledger is merged with the mapping, and a consent problem never moves
the message to another channel.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from policykit import at, consent, ledger, person

NOW = at("FI", 2026, 3, 4, 12)  # a Wednesday, midday
T1 = "2025-01-10T09:00:00+00:00"
T2 = "2025-06-10T09:00:00+00:00"
T3 = "2025-11-10T09:00:00+00:00"
FRESH = {"data_verified_on": "2026-02-01"}  # a prospect's data, one month old


def prospect(country: str = "FI", **fields):
    return person(country, status="prospect", **{**FRESH, **fields})


# -- no_consent and soft opt-in ------------------------------------------------------------


@pytest.mark.parametrize("country", ["FI", "SE", "NO"])
def test_active_customer_without_consent_gets_email_on_soft_opt_in(kit, country):
    d = kit.decide("marketing", person(country), at(country, 2026, 3, 4, 12))
    assert (d.allowed, d.reasons, d.channel, d.legal_basis) == (True, [], "email", "soft_opt_in")


def test_active_customer_without_consent_gets_sms_on_soft_opt_in(kit):
    d = kit.decide("marketing", person(preferred_channels={"marketing": "sms"}), NOW)
    assert (d.allowed, d.reasons, d.channel, d.legal_basis) == (True, [], "sms", "soft_opt_in")


@pytest.mark.parametrize("country", ["FI", "SE", "NO"])
def test_prospect_without_consent_is_refused_no_consent(kit, country):
    d = kit.decide("marketing", prospect(country), at(country, 2026, 3, 4, 12))
    assert (d.allowed, d.reasons, d.channel, d.legal_basis) == (False, ["no_consent"], "email", None)


def test_former_customer_without_consent_is_refused_no_consent(kit):
    d = kit.decide("marketing", person(status="former", last_invoice_paid_on="2025-03-01"), NOW)
    assert d.reasons == ["no_consent"]


def test_prospect_without_consent_by_sms_is_refused_no_consent(kit):
    d = kit.decide("marketing", prospect(preferred_channels={"default": "sms"}), NOW)
    assert (d.channel, d.reasons) == ("sms", ["no_consent"])


@pytest.mark.parametrize("channel", ["email", "all"])
def test_prospect_with_consent_is_allowed_on_consent(kit, channel):
    d = kit.decide("marketing", prospect(consents=[consent(channel, True, T1)]), NOW)
    assert (d.allowed, d.reasons, d.legal_basis) == (True, [], "consent")


def test_active_customer_with_consent_has_basis_consent(kit):
    d = kit.decide("marketing", person(consents=[consent("email", True, T1)]), NOW)
    assert (d.allowed, d.legal_basis) == (True, "consent")


def test_consent_on_another_channel_does_not_count(kit):
    d = kit.decide("marketing", prospect(consents=[consent("sms", True, T1)]), NOW)
    assert (d.channel, d.reasons) == ("email", ["no_consent"])


def test_consent_for_another_purpose_does_not_count(kit):
    d = kit.decide("marketing", prospect(consents=[consent("all", True, T1, purpose="newsletter")]), NOW)
    assert d.reasons == ["no_consent"]


def test_ledger_consent_counts_like_a_mapping_one(kit):
    d = kit.decide("marketing", prospect(), NOW, ledger=[ledger("email", True, datetime(2025, 1, 1, tzinfo=UTC))])
    assert (d.reasons, d.legal_basis) == ([], "consent")


@pytest.mark.parametrize("channel", ["letter", "phone"])
def test_letter_and_phone_marketing_need_no_consent(kit, channel):
    d = kit.decide("marketing", prospect(preferred_channels={"marketing": channel}), NOW)
    assert (d.allowed, d.channel, d.legal_basis) == (True, channel, "legitimate_interest")


# -- opted_out ----------------------------------------------------------------------------


def test_consent_then_withdrawal_is_opted_out(kit):
    d = kit.decide("marketing", prospect(consents=[consent("email", True, T1), consent("email", False, T2)]), NOW)
    assert (d.allowed, d.reasons, d.legal_basis) == (False, ["opted_out"], None)


def test_consent_withdrawal_then_consent_again_is_allowed(kit):
    entries = [consent("email", True, T1), consent("email", False, T2), consent("email", True, T3)]
    d = kit.decide("marketing", prospect(consents=entries), NOW)
    assert (d.allowed, d.reasons, d.legal_basis) == (True, [], "consent")


def test_newest_entry_wins_whatever_the_list_order(kit):
    entries = [consent("email", False, T2), consent("email", True, T1)]
    d = kit.decide("marketing", prospect(consents=entries), NOW)
    assert d.reasons == ["opted_out"]


def test_withdrawal_on_all_channels_beats_an_older_channel_consent(kit):
    entries = [consent("email", True, T1), consent("all", False, T2)]
    d = kit.decide("marketing", prospect(consents=entries), NOW)
    assert d.reasons == ["opted_out"]


def test_channel_consent_newer_than_a_withdrawal_on_all_is_allowed(kit):
    entries = [consent("all", True, T1), consent("all", False, T2), consent("email", True, T3)]
    d = kit.decide("marketing", prospect(consents=entries), NOW)
    assert (d.reasons, d.legal_basis) == ([], "consent")


def test_active_customer_who_withdrew_is_opted_out_not_soft_opt_in(kit):
    d = kit.decide("marketing", person(consents=[consent("email", False, T1)]), NOW)
    assert (d.reasons, d.legal_basis) == (["opted_out"], None)


def test_objection_on_sms_does_not_block_email(kit):
    entries = [consent("all", True, T1), consent("sms", False, T2)]
    by_email = kit.decide("marketing", prospect(consents=entries), NOW)
    by_sms = kit.decide("marketing", prospect(consents=entries, preferred_channels={"marketing": "sms"}), NOW)
    assert (by_email.channel, by_email.reasons, by_email.legal_basis) == ("email", [], "consent")
    assert (by_sms.channel, by_sms.reasons) == ("sms", ["opted_out"])


def test_objection_on_sms_does_not_block_email_for_soft_opt_in(kit):
    d = kit.decide("marketing", person(consents=[consent("sms", False, T2)]), NOW)
    assert (d.channel, d.reasons, d.legal_basis) == ("email", [], "soft_opt_in")


def test_ledger_withdrawal_newer_than_the_mapping_consent_wins(kit):
    d = kit.decide(
        "marketing",
        prospect(consents=[consent("email", True, T1)]),
        NOW,
        ledger=[ledger("email", False, datetime(2025, 6, 1, tzinfo=UTC))],
    )
    assert d.reasons == ["opted_out"]


def test_mapping_consent_newer_than_a_ledger_withdrawal_wins(kit):
    d = kit.decide(
        "marketing",
        prospect(consents=[consent("email", True, T3)]),
        NOW,
        ledger=[ledger("all", False, datetime(2025, 6, 1, tzinfo=UTC))],
    )
    assert (d.reasons, d.legal_basis) == ([], "consent")


@pytest.mark.parametrize(
    ("mapping_granted", "ledger_granted", "reasons"),
    [
        (True, False, ["opted_out"]),
        (False, True, []),
    ],
)
def test_at_the_same_moment_the_ledger_wins(kit, mapping_granted, ledger_granted, reasons):
    moment = datetime(2025, 6, 10, 9, tzinfo=UTC)
    d = kit.decide(
        "marketing",
        prospect(consents=[consent("email", mapping_granted, moment)]),
        NOW,
        ledger=[ledger("email", ledger_granted, moment)],
    )
    assert d.reasons == reasons


@pytest.mark.parametrize("channel", ["email", "sms", "letter", "phone"])
def test_marketing_blocked_is_opted_out_on_every_channel(kit, channel):
    d = kit.decide("marketing", person(marketing_blocked=True, preferred_channels={"marketing": channel}), NOW)
    assert (d.channel, d.reasons, d.legal_basis) == (channel, ["opted_out"], None)


def test_marketing_blocked_beats_a_consent(kit):
    d = kit.decide("marketing", person(marketing_blocked=True, consents=[consent("email", True, T3)]), NOW)
    assert d.reasons == ["opted_out"]


def test_blocked_prospect_without_consent_lists_both_reasons(kit):
    d = kit.decide("marketing", prospect(marketing_blocked=True), NOW)
    assert d.reasons == ["no_consent", "opted_out"]


def test_marketing_blocked_beats_a_newer_ledger_consent(kit):
    """The undated objection always wins, even over a consent recorded a second ago (SPEC §3)."""
    fresh = [ledger("email", True, NOW - timedelta(seconds=1)), ledger("letter", True, NOW - timedelta(seconds=1))]
    for channel in ("email", "letter"):
        recipient = prospect(marketing_blocked=True, preferred_channels={"marketing": channel})
        d = kit.decide("marketing", recipient, NOW, ledger=fresh)
        assert (d.channel, d.reasons, d.legal_basis) == (channel, ["opted_out"], None)
    unblocked = kit.decide("marketing", prospect(), NOW, ledger=fresh)
    assert (unblocked.reasons, unblocked.legal_basis) == ([], "consent")


# -- a consent dated after now does not count yet (SPEC §3) ----------------------------------


@pytest.mark.parametrize(
    ("offset", "reasons", "basis"),
    [
        (timedelta(seconds=-1), [], "consent"),
        (timedelta(0), [], "consent"),
        (timedelta(seconds=1), ["no_consent"], None),
    ],
)
def test_consent_in_the_mapping_counts_from_its_moment(kit, offset, reasons, basis):
    d = kit.decide("marketing", prospect(consents=[consent("email", True, NOW + offset)]), NOW)
    assert (d.reasons, d.legal_basis) == (reasons, basis)


@pytest.mark.parametrize(("offset", "reasons"), [(timedelta(seconds=-1), []), (timedelta(seconds=1), ["no_consent"])])
def test_consent_in_the_ledger_counts_from_its_moment(kit, offset, reasons):
    d = kit.decide("marketing", prospect(), NOW, ledger=[ledger("all", True, NOW + offset)])
    assert d.reasons == reasons


def test_a_prospect_consenting_on_20_march_gets_no_marketing_on_15_march(kit):
    """The case of issue 9: the consent is in the data already, but not yet given."""
    recipient = prospect(consents=[consent("email", True, "2026-03-20")], data_verified_on="2026-03-01")
    before = kit.decide("marketing", recipient, at("FI", 2026, 3, 15, 12))
    after = kit.decide("marketing", recipient, at("FI", 2026, 3, 20, 12))
    assert (before.allowed, before.reasons) == (False, ["no_consent"])
    assert (after.allowed, after.legal_basis) == (True, "consent")


def test_a_future_consent_does_not_override_a_withdrawal(kit):
    entries = [consent("email", False, T2), consent("email", True, NOW + timedelta(days=1))]
    d = kit.decide("marketing", prospect(consents=entries), NOW)
    assert (d.reasons, d.legal_basis) == (["opted_out"], None)


def test_a_future_consent_on_letters_does_not_lift_the_register(kit):
    recipient = prospect(preferred_channels={"marketing": "letter"})
    early = kit.decide(
        "marketing", recipient, NOW, ledger=[ledger("letter", True, NOW + timedelta(seconds=1))], listed_on={"asml"}
    )
    given = kit.decide(
        "marketing", recipient, NOW, ledger=[ledger("letter", True, NOW - timedelta(seconds=1))], listed_on={"asml"}
    )
    assert (early.reasons, early.legal_basis) == (["do_not_contact"], "legitimate_interest")
    assert (given.reasons, given.legal_basis) == ([], "consent")


def test_a_withdrawal_dated_after_now_already_counts(kit):
    """Failing closed: a withdrawal is honoured whatever its date (a clock ahead, a late import)."""
    entries = [consent("email", True, T1), consent("email", False, NOW + timedelta(hours=1))]
    d = kit.decide("marketing", prospect(consents=entries), NOW)
    assert d.reasons == ["opted_out"]


# -- the channel is never moved because of a consent problem (SPEC §4, last paragraph) ------


def test_withdrawn_email_is_not_moved_to_a_consented_sms(kit):
    entries = [consent("email", False, T2), consent("sms", True, T2)]
    d = kit.decide("marketing", prospect(consents=entries), NOW)
    assert (d.channel, d.reasons) == ("email", ["opted_out"])


def test_missing_consent_on_the_preferred_sms_is_not_moved_to_email(kit):
    d = kit.decide(
        "marketing", prospect(consents=[consent("email", True, T1)], preferred_channels={"marketing": "sms"}), NOW
    )
    assert (d.channel, d.reasons) == ("sms", ["no_consent"])


def test_withdrawn_preferred_sms_is_not_moved_to_letter(kit):
    d = kit.decide(
        "marketing", person(consents=[consent("sms", False, T2)], preferred_channels={"default": "sms"}), NOW
    )
    assert (d.channel, d.reasons) == ("sms", ["opted_out"])


def test_a_channel_without_address_is_skipped(kit):
    d = kit.decide("marketing", prospect(email=None, consents=[consent("sms", True, T1)]), NOW)
    assert (d.channel, d.reasons, d.legal_basis) == ("sms", [], "consent")
