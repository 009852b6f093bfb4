"""national_id (SPEC §3): each country's checksum, normalised form, never shown in errors or logs."""

from __future__ import annotations

import logging

import pytest

from dispatch.errors import InvalidRecipient
from dispatch.logs import RedactingFilter, redact
from dispatch.national_id import InvalidNationalId, mask, normalise
from dispatch.recipients import parse_recipient

VALID = [
    ("FI", "131052-308T", "131052-308T"),
    ("FI", "131052-308t", "131052-308T"),
    ("FI", "010594Y0020", "010594Y0020"),  # century sign Y (since 2023) for the 1900s
    ("FI", "020502E002W", "020502E002W"),  # century sign E for the 2000s
    ("SE", "880320-0016", "198803200016"),
    ("SE", "19880320-0016", "198803200016"),
    ("SE", "198803200016", "198803200016"),
    ("SE", "701063-2391", "197010632391"),  # samordningsnummer: day 03 + 60
    ("NO", "15108695088", "15108695088"),
    ("NO", "41018036736", "41018036736"),  # D-nummer: day 01 + 40
    ("NO", "01018010018", "01018010018"),
    ("NO", "1018010018", "01018010018"),  # as Excel wrote it: the leading zero dropped
    ("SE", "050101-1233", "200501011233"),
    ("SE", "501011233", "200501011233"),  # as Excel wrote 0501011233
]

INVALID = [
    ("FI", "131052-308U"),  # wrong check character
    ("FI", "131052-908T"),  # temporary number (900-999)
    ("FI", "311352-308T"),  # no 31st of month 13
    ("SE", "880320-0017"),  # wrong Luhn digit
    ("SE", "701063-2392"),  # samordningsnummer with a wrong Luhn digit
    ("SE", "701093-2391"),  # day 93 - 60 = 33: not a date
    ("SE", "88032000"),
    ("NO", "15108695089"),  # wrong second check digit
    ("NO", "41018036737"),  # D-nummer with a wrong check digit
    ("NO", "1510869508"),
    ("FI", "198803200016"),  # a Swedish number is not a Finnish one
    ("NO", "1018010019"),  # a dropped zero put back still has to pass the checksum
]


@pytest.mark.parametrize(("country", "raw", "expected"), VALID)
def test_valid_numbers_are_accepted_and_normalised(country, raw, expected):
    assert normalise(raw, country) == expected
    person = parse_recipient({"id": "C-1", "country": country, "national_id": raw})
    assert person.national_id == expected


@pytest.mark.parametrize(("country", "raw"), INVALID)
def test_invalid_numbers_are_refused_naming_the_field_not_the_value(country, raw):
    with pytest.raises(InvalidNationalId):
        normalise(raw, country)
    with pytest.raises(InvalidRecipient) as info:
        parse_recipient({"id": "C-1", "country": country, "national_id": raw})
    text = str(info.value) + " ".join(info.value.problems)
    assert "national_id" in text
    assert raw not in text
    assert raw[:6] not in text  # not even the birth date part


def test_national_id_is_optional_and_needs_a_country():
    assert parse_recipient({"id": "C-1", "country": "FI"}).national_id is None
    assert parse_recipient({"id": "C-1", "country": "FI", "national_id": ""}).national_id is None
    with pytest.raises(InvalidRecipient) as info:
        parse_recipient({"id": "C-1", "country": "DK", "national_id": "131052-308T"})
    assert "131052-308T" not in " ".join(info.value.problems)


def test_a_recipient_repr_never_shows_the_number():
    person = parse_recipient({"id": "C-1", "country": "FI", "national_id": "131052-308T"})
    assert "308T" not in repr(person)
    assert person.as_dict()["national_id"] == "131052-308T"  # stored with the message's inputs (fallback)


def test_mask_keeps_only_the_last_two_characters():
    assert mask("131052-308T") == "•••••••••8T"
    assert "1310" not in mask("131052-308T")
    assert mask(None) is None


def test_logs_redact_valid_national_ids_but_not_other_numbers():
    text = "recipient 131052-308T and 198803200016 and 15108695088; order 12345678901 amount 1200"
    cleaned = redact(text)
    assert "308T" not in cleaned and "198803200016" not in cleaned and "15108695088" not in cleaned
    assert cleaned.count("<national_id>") == 3
    assert "12345678901" in cleaned  # eleven digits that fail the fødselsnummer checksum stay


def test_the_logging_filter_removes_a_national_id_from_a_record(caplog):
    logger = logging.getLogger("dispatch.test.national_id")
    handler_filter = RedactingFilter()
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "lookup failed for %s", ("880320-0016",), None)
    handler_filter.filter(record)
    assert "0016" not in record.getMessage()


def test_history_and_exports_mask_the_national_id_unless_asked(dispatcher):
    from datetime import UTC, datetime

    from dispatch.history import export_history, person_history
    from dispatch.samples import sample_data, sample_recipient

    person = {**sample_recipient("fi", "FI"), "national_id": "131052-308T"}
    receipt = dispatcher.dispatch(
        "price_change", person, sample_data("price_change"), now=datetime(2027, 1, 11, tzinfo=UTC)
    )
    shown = person_history(dispatcher.store, person["id"])
    stored = next(m for m in shown["messages"] if m["id"] == receipt.message_id)
    assert stored["inputs"]["recipient"]["national_id"] == "•••••••••8T"
    assert "131052-308T" not in str(shown)
    assert "131052-308T" not in str(export_history(dispatcher.store, person["id"]))
    asked = export_history(dispatcher.store, person["id"], national_id=True)
    assert "131052-308T" in str(asked)


def test_a_written_offer_in_the_history_shows_the_national_id_masked(dispatcher):
    from datetime import UTC, datetime

    from dispatch.history import export_history, person_history
    from dispatch.offers import ADDED_FIELDS
    from dispatch.samples import sample_data, sample_recipient

    person = {**sample_recipient("fi", "FI"), "national_id": "131052-308T"}
    data = {k: v for k, v in sample_data("sales_offer", "FI").items() if k not in ADDED_FIELDS}
    data = {**data, "sold_on": "2027-01-11", "valid_until": "2027-01-25"}
    dispatcher.offer(person, data, now=datetime(2027, 1, 11, 10, tzinfo=UTC))
    shown = person_history(dispatcher.store, person["id"])
    assert shown["offers"] and shown["offers"][0]["recipient"]["national_id"] == "•••••••••8T"
    assert "131052-308T" not in str(shown)
    assert "131052-308T" in str(export_history(dispatcher.store, person["id"], national_id=True))
