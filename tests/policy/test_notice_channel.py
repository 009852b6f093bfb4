"""The preference centre's channel for price and terms notices (SPEC §11, interfaces.md).

The newest ledger entry ``purpose="notice_channel", channel=<channel>, granted=True``
wins over the mapping's ``preferred_channels`` for price_change and terms_change,
when that channel has a usable address; otherwise the normal choice applies.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from policykit import at, person

from dispatch.models import Consent

NOW = at("FI", 2026, 3, 4, 12)
DATA = {"effective_on": "2026-09-01"}


def chosen(channel: str, when: datetime = datetime(2026, 1, 10, tzinfo=UTC), granted: bool = True) -> Consent:
    return Consent("notice_channel", channel, granted, when, source="preference_centre")


@pytest.mark.parametrize("type_name", ["price_change", "terms_change"])
@pytest.mark.parametrize("channel", ["sms", "letter"])
def test_the_preference_centre_choice_wins_over_the_mapping(kit, type_name, channel):
    recipient = person(preferred_channels={type_name: "email", "statutory": "email", "default": "email"})
    assert kit.decide(type_name, recipient, NOW, data=DATA).channel == "email"
    d = kit.decide(type_name, recipient, NOW, data=DATA, ledger=[chosen(channel)])
    assert (d.channel, d.allowed) == (channel, True)


def test_a_chosen_channel_without_a_usable_address_falls_back_to_the_normal_choice(kit):
    recipient = person(phone="+358921234567", preferred_channels={"price_change": "letter"})  # a landline: no SMS
    d = kit.decide("price_change", recipient, NOW, data=DATA, ledger=[chosen("sms")])
    assert d.channel == "letter"


def test_the_newest_choice_wins(kit):
    entries = [chosen("letter", datetime(2025, 5, 1, tzinfo=UTC)), chosen("sms", datetime(2025, 9, 1, tzinfo=UTC))]
    assert kit.decide("price_change", person(), NOW, data=DATA, ledger=entries).channel == "sms"
    assert kit.decide("price_change", person(), NOW, data=DATA, ledger=entries[::-1]).channel == "sms"


def test_a_choice_dated_after_now_does_not_count_yet(kit):
    early = kit.decide("price_change", person(), NOW, data=DATA, ledger=[chosen("sms", NOW + timedelta(seconds=1))])
    made = kit.decide("price_change", person(), NOW, data=DATA, ledger=[chosen("sms", NOW - timedelta(seconds=1))])
    assert (early.channel, made.channel) == ("email", "sms")


def test_a_withdrawn_choice_leaves_the_mapping_in_charge(kit):
    entries = [chosen("sms", datetime(2025, 5, 1, tzinfo=UTC)), chosen("sms", datetime(2025, 9, 1, tzinfo=UTC), False)]
    d = kit.decide(
        "price_change", person(preferred_channels={"price_change": "letter"}), NOW, data=DATA, ledger=entries
    )
    assert d.channel == "letter"


@pytest.mark.parametrize("type_name", ["contract_confirmation", "marketing", "renewal_offer"])
def test_other_types_ignore_the_notice_channel(kit, type_name):
    d = kit.decide(type_name, person(), NOW, ledger=[chosen("letter")])
    assert d.channel == "email"


def test_the_notice_channel_still_checks_the_lead_time_for_its_own_channel(kit):
    """A letter takes 3 working days: the notice-period check follows the chosen channel."""
    on_the_edge = {"effective_on": "2026-04-04"}  # a month after 4 March, by email
    by_email = kit.decide("price_change", person(), NOW, data=on_the_edge)
    by_letter = kit.decide("price_change", person(), NOW, data=on_the_edge, ledger=[chosen("letter")])
    assert (by_email.channel, by_email.reasons) == ("email", [])
    assert (by_letter.channel, by_letter.reasons) == ("letter", ["notice_period"])
