"""Language choice: the preferred language, then its fallback chain (SPEC §5).

A statutory message is never sent in a language outside its statutory chain.
"""

from __future__ import annotations

import pytest
from policykit import at, parts_only_in, person

from dispatch.errors import DispatchError, TemplateNotFound

NOW = at("FI", 2026, 3, 4, 12)
DATA = {"effective_on": "2026-06-01"}


def test_preferred_language_when_its_templates_exist(kit):
    d = kit.decide("marketing", person(language="sv"), NOW)
    assert (d.language, d.requested_language) == ("sv", None)


@pytest.mark.parametrize(("country", "language"), [("FI", "fi"), ("SE", "sv"), ("NO", "nb")])
def test_no_language_means_the_country_default(kit, country, language):
    d = kit.decide("marketing", person(country), at(country, 2026, 3, 4, 12))
    assert d.language == language


@pytest.mark.parametrize(
    ("preferred", "available", "chosen"),
    [
        ("fi", ("sv", "en"), "sv"),  # fi → sv → en
        ("fi", ("en",), "en"),
        ("sv", ("fi", "en"), "fi"),  # sv → fi → en
        ("sv", ("en",), "en"),
        ("nb", ("fi", "sv", "en"), "en"),  # nb → en
    ],
)
def test_marketing_falls_back_along_the_chain(kit, preferred, available, chosen):
    d = kit.decide("marketing", person(language=preferred), NOW, has_parts=parts_only_in(*available))
    assert (d.allowed, d.language, d.requested_language) == (True, chosen, preferred)


@pytest.mark.parametrize(
    ("preferred", "available", "chosen"),
    [
        ("fi", ("sv", "en"), "sv"),
        ("sv", ("fi", "en"), "fi"),
        ("nb", ("fi", "sv", "en"), "en"),  # nb statutory chain: nb, en
    ],
)
def test_statutory_falls_back_inside_its_chain(kit, preferred, available, chosen):
    d = kit.decide("price_change", person(language=preferred), NOW, data=DATA, has_parts=parts_only_in(*available))
    assert (d.language, d.requested_language) == (chosen, preferred)


@pytest.mark.parametrize(
    ("preferred", "available"),
    [
        ("fi", ("en",)),  # fi statutory chain: fi, sv
        ("sv", ("en",)),  # sv statutory chain: sv, fi
        ("en", ("fi", "sv")),  # en statutory chain: en
        ("nb", ("fi", "sv")),  # nb statutory chain: nb, en
    ],
)
@pytest.mark.parametrize("type_name", ["price_change", "terms_change", "contract_confirmation"])
def test_statutory_never_in_a_language_outside_its_chain(kit, type_name, preferred, available):
    with pytest.raises(TemplateNotFound) as caught:
        kit.decide(type_name, person(language=preferred), NOW, data=DATA, has_parts=parts_only_in(*available))
    assert isinstance(caught.value, DispatchError)
    assert type_name in str(caught.value)


def test_english_marketing_has_no_fallback(kit):
    with pytest.raises(TemplateNotFound):
        kit.decide("marketing", person(language="en"), NOW, has_parts=parts_only_in("fi", "sv"))


def test_templates_are_looked_up_for_the_chosen_channel(kit):
    """Swedish letter templates exist, Finnish ones only for email: a letter goes in Swedish."""
    seen = []

    def probe(message_type, channel, language):
        seen.append((message_type, channel, language))
        return language == "sv" if channel == "letter" else True

    d = kit.decide("price_change", person(email=None), NOW, data=DATA, has_parts=probe)
    assert (d.channel, d.language) == ("letter", "sv")
    assert seen == [("price_change", "letter", "fi"), ("price_change", "letter", "sv")]


def test_without_a_channel_the_preferred_language_is_kept(kit):
    d = kit.decide(
        "price_change",
        person(email=None, phone=None, address=None, language="sv"),
        NOW,
        data=DATA,
        has_parts=parts_only_in(),
    )
    assert (d.channel, d.language, d.reasons) == (None, "sv", ["no_address"])
