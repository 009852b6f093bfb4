"""Message types are data; their required data is validated with every problem named at once."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from dispatch.errors import InvalidData, PluginError, UnknownMessageType
from dispatch.messages import BUILTIN_TYPES, FieldSpec, MessageType, MessageTypeRegistry, validate_data

TYPES = {t.name: t for t in BUILTIN_TYPES}


def test_the_eight_types_of_spec_section_2():
    assert {t.name: t.category for t in BUILTIN_TYPES} == {
        "contract_confirmation": "statutory",
        "price_change": "statutory",
        "terms_change": "statutory",
        "renewal_offer": "service",
        "newsletter": "service",
        "marketing": "marketing",
        "survey": "service",
        "sales_offer": "statutory",
    }
    assert TYPES["sales_offer"].required == (
        "sold_on",
        "product",
        "price_elements",
        "duration",
        "terms_url",
        "valid_until",
    )
    assert "phone" not in TYPES["sales_offer"].channels  # the offer is in writing (SPEC §13)
    assert TYPES["price_change"].required == ("effective_on", "reason", "price_elements")
    assert TYPES["marketing"].required == (
        "campaign",
        "product",
        "duration",
        "offer_ends_on",
        "after_offer",
        "price_elements",
    )
    assert set(TYPES["contract_confirmation"].channels) == {"email", "letter"}


def test_valid_data_is_parsed_into_dates_and_decimals():
    data = validate_data(
        TYPES["price_change"],
        {
            "effective_on": "2027-05-01",
            "reason": "costs rose",
            "price_elements": [{"name": "Energia", "unit": "c/kWh", "old": "7.49", "new": "8.90"}],
            "extra_field": "kept",
        },
    )
    assert data["effective_on"] == date(2027, 5, 1)
    element = data["price_elements"][0]
    assert (element.old, element.new, element.unit) == (Decimal("7.49"), Decimal("8.90"), "c/kWh")
    assert data["extra_field"] == "kept"


def test_all_missing_and_malformed_fields_are_named_at_once():
    with pytest.raises(InvalidData) as caught:
        validate_data(
            TYPES["price_change"],
            {
                "effective_on": "1.5.2027",
                "price_elements": [
                    {"name": "Energia", "unit": "c/kWh", "new": 8.9},
                    {"name": "Perusmaksu", "new": "3,90"},
                ],
            },
        )
    problems = caught.value.problems
    assert "effective_on '1.5.2027' is not a date (use YYYY-MM-DD)" in problems
    assert any(p.startswith("reason is missing") for p in problems)
    assert any("price_elements[0].new 8.9 must be a decimal string" in p and "not a float" in p for p in problems)
    assert any("price_elements[0].old is missing" in p for p in problems)
    assert "price_elements[1].unit is missing (e.g. c/kWh, EUR/month)" in problems
    assert any("price_elements[1].new '3,90' is not a decimal string" in p for p in problems)
    assert str(caught.value).startswith("price_change data is invalid:")


def test_localized_texts_resolve_along_the_language_chain():
    data = validate_data(
        TYPES["terms_change"],
        {
            "effective_on": "2027-06-01",
            "reason": {"fi": "laki muuttuu", "en": "the law changes"},
            "changes": [{"fi": "A", "sv": "B"}, "plain"],
        },
    )
    assert data.localized(("sv", "en"))["reason"] == "the law changes"
    assert data.localized(("sv", "en"))["changes"] == ["B", "plain"]
    assert data.localized(("fi",))["reason"] == "laki muuttuu"
    with pytest.raises(InvalidData, match="unknown language"):
        validate_data(TYPES["terms_change"], {"effective_on": "2027-06-01", "reason": {"de": "x"}, "changes": ["a"]})


def test_duration_accepts_months_and_iso_durations():
    base = {
        "campaign": "c",
        "product": "p",
        "offer_ends_on": "2027-01-31",
        "after_offer": "normal prices",
        "price_elements": [{"name": "E", "unit": "c/kWh", "new": "5.00"}],
    }
    assert validate_data(TYPES["marketing"], {**base, "duration": "P24M"})["duration"] == 24
    assert validate_data(TYPES["marketing"], {**base, "duration": 12})["duration"] == 12
    with pytest.raises(InvalidData, match="duration 'two years'"):
        validate_data(TYPES["marketing"], {**base, "duration": "two years"})


def test_survey_url_must_be_http():
    with pytest.raises(InvalidData, match="survey_url 'javascript:alert' is not an http"):
        validate_data(TYPES["survey"], {"contact_on": "2027-01-01", "survey_url": "javascript:alert"})


def test_registry_names_the_known_types_and_refuses_duplicates():
    registry = MessageTypeRegistry(BUILTIN_TYPES)
    with pytest.raises(UnknownMessageType, match=r"unknown message type 'price_chnage'.*price_change"):
        registry.get("price_chnage")
    with pytest.raises(PluginError, match="registered twice"):
        registry.register(TYPES["survey"])
    bad = MessageType("x", "urgent", (FieldSpec("a", "text"),), ("email",), ("email",), "consent")
    with pytest.raises(PluginError, match="unknown category 'urgent'"):
        registry.register(bad)


def test_renewal_offer_requires_the_current_product_and_checks_optional_fields_when_given():
    assert TYPES["renewal_offer"].required == (
        "current_ends_on",
        "current_product",
        "product",
        "respond_by",
        "price_elements",
    )
    base = {
        "current_ends_on": "2027-08-31",
        "current_product": "Kiinteä 24",
        "product": "Kiinteä 24",
        "respond_by": "2027-08-15",
        "price_elements": [{"name": "Energia", "unit": "c/kWh", "new": "8.90"}],
    }
    plain = validate_data(TYPES["renewal_offer"], {**base, "duration": None})
    assert "duration" not in plain and "if_no_action" not in plain  # templates test `is defined`
    full = validate_data(
        TYPES["renewal_offer"],
        {
            **base,
            "duration": "P24M",
            "if_no_action": {
                "product": {"fi": "Perussähkö", "sv": "Bas-el"},
                "price_elements": [{"name": {"fi": "Energia", "sv": "Energi"}, "unit": "c/kWh", "new": "9.49"}],
            },
            "offer_url": "https://energia.example.fi/jatko/R-1",
        },
    )
    assert full["duration"] == 24
    sv = full.localized(("sv",))["if_no_action"]
    assert sv["product"] == "Bas-el"
    assert (sv["price_elements"][0].name, sv["price_elements"][0].new) == ("Energi", Decimal("9.49"))
    with pytest.raises(InvalidData) as raised:
        validate_data(
            TYPES["renewal_offer"],
            {**base, "duration": 0, "if_no_action": ["Perus"], "offer_url": "ftp://x"},
        )
    assert [p.split(" ")[0] for p in raised.value.problems] == ["duration", "if_no_action", "offer_url"]


def test_contract_confirmation_takes_duration_end_date_and_terms_link():
    data = validate_data(
        TYPES["contract_confirmation"],
        {
            "signed_on": "2027-02-15",
            "product": "Kiinteä 24",
            "starts_on": "2027-03-01",
            "price_elements": [{"name": "Energia", "unit": "c/kWh", "new": "8.90"}],
            "duration": 24,
            "ends_on": "2029-02-28",
            "terms_url": "https://energia.example.fi/ehdot",
        },
    )
    assert (data["duration"], data["ends_on"]) == (24, date(2029, 2, 28))
    with pytest.raises(InvalidData, match="ends_on 'soon' is not a date"):
        validate_data(TYPES["contract_confirmation"], {**data, "ends_on": "soon"})


@pytest.mark.parametrize(
    ("duration", "expected"),
    [(24, 24), ("P12M", 12), ({"until": "2029-02-28"}, {"until": date(2029, 2, 28)})],
)
def test_a_sales_offer_lasts_some_months_or_until_a_day(duration, expected):
    data = {
        "sold_on": "2027-01-11",
        "product": "Kiinteä 24",
        "price_elements": [{"name": "Energia", "unit": "c/kWh", "new": "8.90"}],
        "duration": duration,
        "terms_url": "https://energia.example.fi/ehdot",
        "valid_until": "2027-01-25",
    }
    assert validate_data(TYPES["sales_offer"], data)["duration"] == expected


@pytest.mark.parametrize("duration", [0, "forever", {"until": "soon"}, {"until": "2029-02-28", "months": 3}, True])
def test_a_sales_offer_duration_that_is_neither_is_named(duration):
    data = {"sold_on": "2027-01-11", "product": "X", "duration": duration}
    with pytest.raises(InvalidData) as caught:
        validate_data(TYPES["sales_offer"], data)
    assert "duration" in str(caught.value) and "valid_until is missing" in str(caught.value)
