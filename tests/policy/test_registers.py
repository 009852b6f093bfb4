"""register_unavailable: registers fail closed (SPEC §4).

Letter and phone marketing to someone a register would apply to is suppressed
while that register has never been loaded or its copy is older than the country's
refresh period (31 days by default): never assume "not listed".
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from policykit import REGISTERS, at, consent, person

NOW = at("FI", 2026, 3, 4, 12)
ALL_FRESH = {name: NOW for name in REGISTERS}


def _recipient(country: str, status: str, channel: str, **fields):
    extra = {"prospect": {"data_verified_on": "2026-02-01"}, "former": {"last_invoice_paid_on": "2025-03-01"}}
    return person(country, status=status, preferred_channels={"marketing": channel}, **extra.get(status, {}), **fields)


def _loaded(name: str, age: timedelta) -> dict:
    return {**ALL_FRESH, name: NOW - age}


@pytest.mark.parametrize("channel", ["letter", "phone"])
@pytest.mark.parametrize(
    ("age", "reasons"),
    [
        (timedelta(days=31), []),
        (timedelta(days=31, seconds=1), ["register_unavailable"]),
        (timedelta(days=32), ["register_unavailable"]),
    ],
)
def test_asml_loaded_31_days_ago_is_fresh_and_32_days_ago_is_not(kit, channel, age, reasons):
    d = kit.decide("marketing", _recipient("FI", "prospect", channel), NOW, registers_as_of=_loaded("asml", age))
    assert (d.channel, d.reasons, d.allowed) == (channel, reasons, not reasons)


def test_the_note_names_the_register_and_its_age(kit):
    d = kit.decide(
        "marketing", _recipient("FI", "active", "letter"), NOW, registers_as_of=_loaded("asml", timedelta(days=40))
    )
    assert d.notes["register_unavailable"] == "asml is as of 2026-01-23, older than 31 days"


@pytest.mark.parametrize("status", ["prospect", "active", "former"])
def test_a_register_never_loaded_suppresses_letters_in_finland_whatever_the_status(kit, status):
    loaded = {n: t for n, t in ALL_FRESH.items() if n != "asml"}
    d = kit.decide("marketing", _recipient("FI", status, "letter"), NOW, registers_as_of=loaded)
    assert "register_unavailable" in d.reasons
    assert d.notes["register_unavailable"] == "asml has never been loaded"


def test_nothing_loaded_at_all_fails_closed(kit):
    d = kit.decide("marketing", _recipient("FI", "active", "phone"), NOW, registers_as_of={})
    assert (d.allowed, d.reasons) == (False, ["register_unavailable"])


@pytest.mark.parametrize(
    ("country", "register", "channel"),
    [
        ("SE", "nix-adresserat", "letter"),
        ("SE", "nix-telefon", "phone"),
        ("NO", "reservasjonsregisteret", "letter"),
        ("NO", "reservasjonsregisteret", "phone"),
    ],
)
def test_se_and_no_registers_fail_closed_for_prospects_but_exempt_active_customers(kit, country, register, channel):
    now = at(country, 2026, 3, 4, 12)
    stale = {**ALL_FRESH, register: now - timedelta(days=32)}
    prospect = kit.decide("marketing", _recipient(country, "prospect", channel), now, registers_as_of=stale)
    active = kit.decide("marketing", _recipient(country, "active", channel), now, registers_as_of=stale)
    assert (prospect.channel, prospect.reasons) == (channel, ["register_unavailable"])
    assert (active.channel, active.reasons) == (channel, [])


@pytest.mark.parametrize(("missing", "channel"), [("nix-telefon", "letter"), ("nix-adresserat", "phone")])
def test_only_the_register_covering_the_channel_matters(kit, missing, channel):
    loaded = {n: t for n, t in ALL_FRESH.items() if n != missing}
    d = kit.decide("marketing", _recipient("SE", "prospect", channel), at("SE", 2026, 3, 4, 12), registers_as_of=loaded)
    assert d.reasons == []


def test_a_register_of_another_country_does_not_matter(kit):
    loaded = {"asml": NOW}  # no Swedish or Norwegian register at all
    assert kit.decide("marketing", _recipient("FI", "prospect", "letter"), NOW, registers_as_of=loaded).reasons == []


def test_a_person_who_asked_for_letters_needs_no_register(kit):
    asked = _recipient("FI", "prospect", "letter", consents=[consent("letter", True, "2025-10-01")])
    d = kit.decide("marketing", asked, NOW, registers_as_of={})
    assert (d.reasons, d.legal_basis) == ([], "consent")


@pytest.mark.parametrize("channel", ["email", "sms"])
def test_electronic_marketing_does_not_depend_on_registers(kit, channel):
    d = kit.decide("marketing", _recipient("FI", "active", channel), NOW, registers_as_of={})
    assert (d.channel, d.reasons) == (channel, [])


def test_statutory_and_service_letters_do_not_depend_on_registers(kit):
    letter_only = {"email": None, "phone": None}
    notice = kit.decide("price_change", person(**letter_only), NOW, registers_as_of={})
    renewal = kit.decide("renewal_offer", person(**letter_only), NOW, registers_as_of={})
    assert (notice.channel, notice.reasons) == ("letter", [])
    assert (renewal.category, renewal.channel, renewal.reasons) == ("service", "letter", [])


def test_a_renewal_offering_another_product_by_letter_fails_closed(kit):
    d = kit.decide(
        "renewal_offer",
        person(email=None, phone=None),
        NOW,
        data={"current_product": "Spot"},
        registers_as_of={},
    )
    assert (d.category, d.channel, d.reasons) == ("marketing", "letter", ["register_unavailable"])


def test_listed_on_a_stale_register_lists_both_reasons(kit):
    d = kit.decide(
        "marketing",
        _recipient("FI", "prospect", "letter"),
        NOW,
        listed_on={"asml"},
        registers_as_of=_loaded("asml", timedelta(days=90)),
    )
    assert d.reasons == ["do_not_contact", "register_unavailable"]
