"""Recipient mappings (SPEC §3) are validated and normalised; every problem is named at once."""

from __future__ import annotations

from datetime import date

import pytest

from dispatch.errors import InvalidRecipient, UnsupportedCountry, UnsupportedLanguage
from dispatch.recipients import parse_recipient


def test_phone_is_normalised_to_e164_for_the_recipients_country():
    fi = parse_recipient({"id": "1", "country": "FI", "phone": "040 123 4567"})
    se = parse_recipient({"id": "2", "country": "SE", "phone": "070-123 45 67"})
    no = parse_recipient({"id": "3", "country": "NO", "phone": "412 34 567"})
    assert (fi.phone, se.phone, no.phone) == ("+358401234567", "+46701234567", "+4741234567")
    assert fi.phone_is_mobile and se.phone_is_mobile and no.phone_is_mobile


def test_a_landline_is_kept_but_not_usable_for_sms():
    person = parse_recipient({"id": "1", "country": "FI", "phone": "09 4289 1000"})
    assert person.phone == "+35894289 1000".replace(" ", "")
    assert person.phone_is_mobile is False


def test_language_defaults_by_country():
    assert parse_recipient({"id": "1", "country": "FI"}).language == "fi"
    assert parse_recipient({"id": "1", "country": "SE"}).language == "sv"
    assert parse_recipient({"id": "1", "country": "NO"}).language == "nb"
    assert parse_recipient({"id": "1", "country": "FI", "language": "sv"}).language == "sv"


def test_dates_emails_and_address_are_parsed():
    person = parse_recipient(
        {
            "id": "C-1",
            "country": "SE",
            "birth_date": "1990-05-01",
            "email": "Karin@Example.SE",
            "address": {
                "name": "Karin  Andersson",
                "street": "Storgatan 5",
                "postal_code": "114 51",
                "city": "Stockholm",
            },
        }
    )
    assert person.birth_date == date(1990, 5, 1)
    assert person.email == "Karin@example.se"  # the domain is normalised, the local part kept
    assert person.address.postal_code == "11451"
    assert person.address.name == "Karin Andersson"
    assert person.kind == "household"


def test_every_problem_is_named_at_once():
    with pytest.raises(InvalidRecipient) as caught:
        parse_recipient(
            {
                "id": "C-9",
                "country": "FI",
                "phone": "12345",
                "email": "not-an-email",
                "birth_date": "31.12.1990",
                "status": "customer",
                "kind": "company",
                "address": {"name": "A", "street": "", "postal_code": "1", "city": "X"},
            }
        )
    message = str(caught.value)
    for fragment in (
        "phone is not a valid number for FI",
        "email is not a valid address",
        "birth_date is not a date",
        "status 'customer'",
        "kind 'company'",
        "address is missing street",
    ):
        assert fragment in message
    assert len(caught.value.problems) == 6
    assert message.startswith("recipient 'C-9' is invalid:")
    # the field is named, its (personal) value is not repeated
    for value in ("12345", "not-an-email", "31.12.1990"):
        assert value not in message


def test_unsupported_country_and_language_have_their_own_errors():
    with pytest.raises(UnsupportedCountry, match="'DK' is not supported"):
        parse_recipient({"id": "1", "country": "DK"})
    with pytest.raises(UnsupportedLanguage, match="'de' is not supported"):
        parse_recipient({"id": "1", "country": "FI", "language": "de"})


def test_postal_codes_are_checked_per_country():
    ok = {"name": "Ola", "street": "Gate 1", "postal_code": "0159", "city": "Oslo"}
    assert parse_recipient({"id": "1", "country": "NO", "address": ok}).address.postal_code == "0159"
    with pytest.raises(InvalidRecipient, match="postal_code is not a valid postal code for NO"):
        parse_recipient({"id": "1", "country": "NO", "address": {**ok, "postal_code": "01590"}})


def test_consents_are_parsed_and_checked():
    person = parse_recipient(
        {
            "id": "1",
            "country": "FI",
            "consents": [
                {"purpose": "marketing", "channel": "email", "granted": True, "at": "2026-01-01"},
                {"purpose": "marketing", "granted": False, "at": "2026-02-01T10:00:00+02:00", "source": "web_form"},
            ],
        }
    )
    assert [c.granted for c in person.consents] == [True, False]
    assert person.consents[1].channel == "all"
    assert person.consents[0].at.tzinfo is not None
    with pytest.raises(InvalidRecipient, match=r"consents\[0\]\.granted must be true or false"):
        parse_recipient(
            {"id": "1", "country": "FI", "consents": [{"purpose": "marketing", "granted": "yes", "at": "2026-01-01"}]}
        )


def test_preferred_channels_are_checked_against_known_channels():
    channels = {"email", "sms", "letter", "phone"}
    person = parse_recipient({"id": "1", "country": "FI", "preferred_channels": {"default": "sms"}}, channels=channels)
    assert person.preferred_channels == {"default": "sms"}
    with pytest.raises(InvalidRecipient, match="unknown channel 'fax'"):
        parse_recipient({"id": "1", "country": "FI", "preferred_channels": {"default": "fax"}}, channels=channels)


def test_csv_style_booleans_are_accepted_and_others_refused():
    assert parse_recipient({"id": "1", "country": "FI", "newsletter": "true"}).newsletter is True
    assert parse_recipient({"id": "1", "country": "FI", "marketing_blocked": "0"}).marketing_blocked is False
    with pytest.raises(InvalidRecipient, match="newsletter 'maybe' must be true or false"):
        parse_recipient({"id": "1", "country": "FI", "newsletter": "maybe"})


@pytest.mark.parametrize(
    "email",
    [
        "abc\n@example.fi",
        "abc@example.fi\n",
        "abc@example.fi\r\nBcc: victim@example.org",
        "abc\r@example.fi",
        "a\x00b@example.fi",
        "Matti <abc@example.fi>",
        '"abc"@example.fi',
        "abc@example.fi, other@example.fi",
    ],
)
def test_an_email_is_one_plain_address_without_header_breaking_characters(email):
    with pytest.raises(InvalidRecipient, match="email") as caught:
        parse_recipient({"id": "C-1", "country": "FI", "email": email})
    assert "abc" not in str(caught.value)  # the address is not echoed


def test_names_and_addresses_have_no_line_breaks_or_control_characters():
    address = {"name": "Matti\r\nMeikäläinen", "street": "Katu\t1", "postal_code": "00100", "city": "Helsinki"}
    person = parse_recipient({"id": "1", "country": "FI", "address": address})
    assert (person.address.name, person.address.street) == ("Matti Meikäläinen", "Katu 1")
    with pytest.raises(InvalidRecipient, match="address name: control characters") as caught:
        parse_recipient({"id": "1", "country": "FI", "address": {**address, "name": "Matti\x1b[2J"}})
    assert "Matti" not in str(caught.value)
    with pytest.raises(InvalidRecipient, match="address street must be a string"):
        parse_recipient({"id": "1", "country": "FI", "address": {**address, "street": ["Katu 1"]}})


@pytest.mark.parametrize(
    ("recipient", "fragment"),
    [
        ({"id": "C-1\nX"}, "id contains a line break"),
        ({"id": "x" * 201}, "id is longer than 200"),
        ({"id": ["C-1"]}, "id must be a string"),
        ({"preferred_channels": {"default": ["email"]}}, "preferred_channels['default'] must map"),
        ({"preferred_channels": {"default": {"a": 1}}}, "preferred_channels['default'] must map"),
        ({"consents": [{"purpose": "marketing", "channel": ["x"], "granted": True, "at": "2026-01-01"}]}, "channel"),
        ({"consents": [{"purpose": ["marketing"], "granted": True, "at": "2026-01-01"}]}, "purpose must be"),
        ({"consents": [{"purpose": "marketing", "granted": True, "at": "2026-01-01", "source": ["web"]}]}, "source"),
        ({"country": ["FI"]}, "country is not supported"),
        ({"language": {"fi": 1}}, "language is not supported"),
        ({"kind": ["household"]}, "kind must be household or business"),
        ({"phone": True}, "phone must be a string"),
        ({"phone": "1" * 5000}, "phone is too long"),
        ({"email": 12}, "email must be a string"),
        ({"email": "a" * 300 + "@example.fi"}, "email is not a valid address"),
    ],
)
def test_malformed_values_of_any_type_are_named_problems(recipient, fragment):
    channels = {"email", "sms", "letter", "phone"}
    with pytest.raises(InvalidRecipient) as caught:
        parse_recipient({"id": "C-1", "country": "FI", **recipient}, channels=channels)
    assert fragment in str(caught.value)


def test_a_phone_number_is_not_echoed_in_errors():
    with pytest.raises(InvalidRecipient) as caught:
        parse_recipient({"id": "C-1", "country": "SE", "phone": "+358 40 999 88 77 66 55"})
    assert "999" not in str(caught.value) and "phone" in str(caught.value)
