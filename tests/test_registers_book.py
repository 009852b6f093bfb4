"""Do-not-contact registers through the dispatcher: import, matching, exemptions, staleness."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from dispatch.errors import RegisterError
from dispatch.register_book import describe_unavailable
from dispatch.samples import sample_data, sample_recipient

NOW = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)


def letter_person(language="fi", country="FI", **extra):
    return {
        **sample_recipient(language, country),
        "email": None,
        "phone": None,
        "preferred_channels": {"marketing": "letter"},
        **extra,
    }


def test_an_asml_listed_address_gets_no_marketing_letter(dispatcher, tmp_path):
    (tmp_path / "asml.csv").write_text(
        "nimi;katuosoite;postinumero\nMATTI  MEIKÄLÄINEN;Mannerheimintie 12 b 7;00100\n", encoding="utf-8"
    )
    result = dispatcher.registers.import_file("asml", tmp_path / "asml.csv", now=NOW)
    assert result["entries"] == 1
    decision = dispatcher.decide("marketing", letter_person(), sample_data("marketing"), now=NOW)
    assert decision.channel == "letter" and decision.reasons == ["do_not_contact"]
    assert decision.notes["do_not_contact"] == "listed on asml"
    statutory = dispatcher.decide("price_change", letter_person(), sample_data("price_change"), now=NOW)
    assert statutory.allowed and statutory.channel == "letter"


def test_swedish_active_customers_are_exempt_but_prospects_are_not(dispatcher, tmp_path):
    (tmp_path / "nix.csv").write_text("namn,adress,postnummer\nKarin Andersson,Storgatan 5,114 51\n", encoding="utf-8")
    dispatcher.registers.import_file("nix-adresserat", tmp_path / "nix.csv", now=NOW)
    active = dispatcher.decide("marketing", letter_person("sv", "SE"), sample_data("marketing", "SE"), now=NOW)
    assert active.allowed
    prospect = letter_person("sv", "SE", status="prospect", data_verified_on="2026-12-01")
    assert dispatcher.decide("marketing", prospect, sample_data("marketing", "SE"), now=NOW).reasons == [
        "do_not_contact"
    ]


def test_a_new_import_replaces_the_old_one_and_a_bad_file_changes_nothing(dispatcher, tmp_path):
    (tmp_path / "one.csv").write_text("phone\n040 123 4567\n", encoding="utf-8")
    (tmp_path / "two.csv").write_text("phone\n050 765 4321\n", encoding="utf-8")
    (tmp_path / "bad.csv").write_text("phone\n050 111 2222\nnot-a-number\n", encoding="utf-8")
    phone_person = {
        **sample_recipient("fi", "FI"),
        "email": None,
        "preferred_channels": {"marketing": "phone"},
        "status": "prospect",
        "data_verified_on": "2026-12-01",
    }
    dispatcher.registers.import_file("asml", tmp_path / "one.csv", now=NOW)
    assert dispatcher.decide("marketing", phone_person, sample_data("marketing"), now=NOW).reasons == ["do_not_contact"]
    dispatcher.registers.import_file("asml", tmp_path / "two.csv", now=NOW)
    assert dispatcher.decide("marketing", phone_person, sample_data("marketing"), now=NOW).allowed
    with pytest.raises(RegisterError, match="line 3: phone cannot be parsed"):
        dispatcher.registers.import_file("asml", tmp_path / "bad.csv", now=NOW)
    [status] = [s for s in dispatcher.registers.status(NOW) if s["name"] == "asml"]
    assert status["entries"] == 1 and status["source_file"] if "source_file" in status else status["entries"] == 1
    other = {**phone_person, "phone": "050 765 4321"}
    assert dispatcher.decide("marketing", other, sample_data("marketing"), now=NOW).reasons == ["do_not_contact"]


def test_register_age_is_reported_and_a_stale_register_is_logged_on_use(dispatcher, tmp_path, caplog):
    (tmp_path / "res.csv").write_text("telefonnummer\n412 34 567\n", encoding="utf-8")
    dispatcher.registers.import_file(
        "reservasjonsregisteret", tmp_path / "res.csv", file_date=datetime(2026, 11, 1, tzinfo=UTC), now=NOW
    )
    [status] = [s for s in dispatcher.registers.status(NOW) if s["name"] == "reservasjonsregisteret"]
    assert status["stale"] is True and status["age_days"] == 71 and status["refresh_days"] == 31
    fresh = [
        s
        for s in dispatcher.registers.status(datetime(2026, 11, 20, tzinfo=UTC))
        if s["name"] == "reservasjonsregisteret"
    ]
    assert fresh[0]["stale"] is False
    person = {
        **sample_recipient("en", "NO"),
        "email": None,
        "status": "former",
        "last_invoice_paid_on": "2026-01-01",
        "preferred_channels": {"marketing": "phone"},
    }
    with caplog.at_level(logging.WARNING, logger="dispatch.registers"):
        decision = dispatcher.decide("marketing", person, sample_data("marketing", "NO"), now=NOW)
    assert decision.reasons == ["do_not_contact", "register_unavailable"]
    assert "register reservasjonsregisteret is stale" in caplog.text


def test_unknown_register_and_unreadable_files_are_clear_errors(dispatcher, tmp_path):
    with pytest.raises(RegisterError, match="unknown register 'robinson'"):
        dispatcher.registers.import_file("robinson", tmp_path / "x.csv")
    with pytest.raises(RegisterError, match="cannot read register file"):
        dispatcher.registers.import_file("asml", tmp_path / "missing.csv")
    (tmp_path / "cols.csv").write_text("foo,bar\n1,2\n", encoding="utf-8")
    with pytest.raises(RegisterError, match="no phone column and no name\\+street\\+postal_code columns"):
        dispatcher.registers.import_file("asml", tmp_path / "cols.csv")


def _prospect_by_letter():
    return letter_person(status="prospect", data_verified_on="2026-12-01")


def test_marketing_letters_fail_closed_until_the_register_is_loaded(dispatcher, tmp_path):
    """Issue 9: the demo sent FI marketing letters with ASML never loaded. Now they wait for an import."""
    never = dispatcher.decide("marketing", _prospect_by_letter(), sample_data("marketing"), now=NOW)
    assert (never.channel, never.reasons) == ("letter", ["register_unavailable"])
    assert never.notes["register_unavailable"] == "asml has never been loaded"
    receipt = dispatcher.dispatch("marketing", _prospect_by_letter(), sample_data("marketing"), now=NOW)
    assert (receipt.status, receipt.reasons) == ("suppressed", ["register_unavailable"])
    by_email = dispatcher.decide("marketing", sample_recipient("fi", "FI"), sample_data("marketing"), now=NOW)
    assert by_email.channel == "email" and by_email.allowed  # registers cover letters and calls only
    (tmp_path / "asml.csv").write_text("puhelin\n040 999 9999\n", encoding="utf-8")
    dispatcher.registers.import_file("asml", tmp_path / "asml.csv", now=NOW)
    assert dispatcher.decide("marketing", _prospect_by_letter(), sample_data("marketing"), now=NOW).allowed


@pytest.mark.parametrize(("age", "allowed"), [(timedelta(days=31), True), (timedelta(days=32), False)])
def test_a_register_file_31_days_old_is_fresh_and_32_days_old_is_not(dispatcher, tmp_path, age, allowed):
    (tmp_path / "asml.csv").write_text("puhelin\n040 999 9999\n", encoding="utf-8")
    dispatcher.registers.import_file("asml", tmp_path / "asml.csv", file_date=NOW - age, now=NOW)
    decision = dispatcher.decide("marketing", _prospect_by_letter(), sample_data("marketing"), now=NOW)
    assert (decision.allowed, decision.reasons) == (allowed, [] if allowed else ["register_unavailable"])
    [status] = [s for s in dispatcher.registers.status(NOW) if s["name"] == "asml"]
    assert status["stale"] is not allowed
    assert dispatcher.registers.as_of()["asml"] == NOW - age


def test_status_says_plainly_what_is_held_back(dispatcher, tmp_path):
    (tmp_path / "asml.csv").write_text("puhelin\n040 999 9999\n", encoding="utf-8")
    dispatcher.registers.import_file(
        "asml", tmp_path / "asml.csv", file_date=datetime(2026, 11, 1, tzinfo=UTC), now=NOW
    )
    lines = describe_unavailable(dispatcher.registers.status(NOW))
    assert lines[0] == (
        "asml (FI) is as of 2026-11-01, older than 31 days: marketing letters and calls it covers are suppressed "
        "(register_unavailable) until `dispatch registers import asml FILE`."
    )
    assert any(line.startswith("nix-telefon (SE) has never been loaded: marketing calls") for line in lines)
    assert not [
        line
        for line in describe_unavailable(dispatcher.registers.status(datetime(2026, 11, 20, tzinfo=UTC)))
        if line.startswith("asml")
    ]


def test_a_renewal_of_the_same_product_by_letter_needs_no_register(dispatcher):
    data = sample_data("renewal_offer")
    decision = dispatcher.decide("renewal_offer", _prospect_by_letter(), data, now=NOW)
    assert (decision.category, decision.channel, decision.allowed) == ("service", "letter", True)
    other = dispatcher.decide("renewal_offer", _prospect_by_letter(), {**data, "current_product": "Spot"}, now=NOW)
    assert (other.category, other.reasons) == ("marketing", ["register_unavailable"])
