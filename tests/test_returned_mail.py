"""Returned paper mail (SPEC §6): `dispatch letters returned FILE` bounces letters, suppresses the
postal address until it changes, and sends statutory ones on to the next channel."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from dispatch.cli import cli
from dispatch.errors import InputError
from dispatch.returned_mail import read_returns, reason_code
from dispatch.samples import sample_data, sample_recipient

NOW = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)
FIXTURES = Path(__file__).parent / "fixtures" / "returned_mail"


def _letters(d, people):
    receipts = []
    for person in people:
        receipt = d.dispatch(
            "price_change",
            {**person, "preferred_channels": {"default": "letter"}},
            sample_data("price_change"),
            now=NOW,
        )
        assert receipt.channel == "letter", receipt.reasons
        receipts.append(receipt)
    assert d.join(timeout=120)
    batch = d.channels["letter"].finish_batch()
    return receipts, Path(batch["manifest"])


def test_a_print_house_list_bounces_letters_suppresses_the_address_and_falls_back(make_dispatcher, tmp_path):
    d = make_dispatcher()
    with_email = sample_recipient("fi", "FI")
    paper_only = {**sample_recipient("sv", "FI"), "email": None, "phone": None}
    (first, second), manifest = _letters(d, [with_email, paper_only])
    batch = manifest.stem
    printed = [letter["message_id"] for letter in json.loads(manifest.with_suffix(".json").read_text())["letters"]]
    sequence = printed.index(second.message_id) + 1  # its place in the print batch
    # As a print house's Excel writes it: UTF-8 with a BOM, semicolons, Finnish headers, CRLF.
    text = (
        "Viesti ID;Erä;Järjestysnumero;Syy\r\n"
        f"{first.message_id};;;Osoite tuntematon\r\n"
        f";{batch};{sequence};Muuttanut\r\n"
        "01JZZZZZZZZZZZZZZZZZZZZZZZ;;;Tuntematon\r\n"
        ";;;\r\n"
        f";{batch};x;Muuttanut\r\n"
    )
    returns = tmp_path / "palautukset.csv"
    returns.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    d.close()

    result = CliRunner().invoke(cli, ["letters", "returned", str(returns), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["bounced"] == 2
    assert summary["unknown_lines"] == [4]
    assert [i["line"] for i in summary["invalid"]] == [6]

    d = make_dispatcher()
    first_row, second_row = d.store.message(first.message_id), d.store.message(second.message_id)
    # The statutory notice with an email address went on by email; the other stays bounced (no channel left).
    assert first_row["status"] == "fallback"
    assert second_row["status"] == "bounced"
    steps = [t["target"] for t in d.store.transitions_for([first.message_id])[first.message_id]]
    assert steps[-2:] == ["bounced", "fallback"]
    fallback = [m for m in d.store.messages_for(with_email["id"]) if m["fallback_of"] == first.message_id]
    assert [m["channel"] for m in fallback] == ["email"]
    listed = {(row["channel"], row["cause"], row["message_id"]) for row in d.store.suppression_list()}
    assert ("letter", "returned_mail", first.message_id) in listed
    assert ("letter", "returned_mail", second.message_id) in listed
    # The same address is suppressed for the next letter; a new address (the customer moved) is not.
    person = {**paper_only, "preferred_channels": {"default": "letter"}}
    held = d.decide("price_change", person, sample_data("price_change"), now=NOW)
    assert not held.allowed and "letter suppressed" in " ".join(held.notes.values())
    moved = {**person, "address": {**person["address"], "street": "Hovrättsesplanaden 9"}}
    assert d.decide("price_change", moved, sample_data("price_change"), now=NOW).allowed

    # The same list again changes nothing (a print house may send it twice).
    d.close()
    again = CliRunner().invoke(cli, ["letters", "returned", str(returns), "--json"], catch_exceptions=False)
    assert again.exit_code == 0
    d = make_dispatcher()
    assert len([m for m in d.store.messages_for(with_email["id"]) if m["fallback_of"] == first.message_id]) == 1


def test_the_fixture_lists_read_as_print_houses_write_them():
    rows = list(read_returns(FIXTURES / "postnord_se.csv"))
    assert [(r.message_id, r.reason) for r in rows] == [
        ("01JQ5Y7W6B2N4XG3T8R0K1M9AA", "unknown_address"),
        ("01JQ5Y7W6B2N4XG3T8R0K1M9AB", "moved"),
        ("01JQ5Y7W6B2N4XG3T8R0K1M9AC", "deceased"),
    ]
    rows = list(read_returns(FIXTURES / "posti_fi_batch.csv"))
    assert [(r.batch, r.sequence, r.reason) for r in rows] == [
        ("batch-20270111T093000-ABC123", 1, "unknown_address"),
        ("batch-20270111T093000-ABC123", 7, "refused"),
        ("batch-20270111T093000-ABC123", 12, "other"),
    ]


def test_a_list_without_an_id_column_is_refused(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("Nimi;Osoite\nMatti;Katu 1\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        list(read_returns(path))
    assert "message_id" in str(info.value) and "Matti" not in str(info.value)
    result = CliRunner().invoke(cli, ["letters", "returned", str(path)])
    assert result.exit_code == 2


def test_reasons_become_codes_and_free_text_is_not_kept():
    assert reason_code("Osoite tuntematon") == "unknown_address"
    assert reason_code("Flyttat, ny adress Storgatan 1") == "moved"
    assert reason_code("Adressaten avliden") == "deceased"
    assert reason_code("Kiitos") == "other"
