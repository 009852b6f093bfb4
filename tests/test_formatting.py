"""Babel formatting in the message's locale (SPEC §5)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from dispatch.formatting import Formatter, locale_for
from dispatch.messages import PriceElement


def test_finnish_price_change_formats():
    f = Formatter("fi_FI", "FI")
    energy = PriceElement("Energia", "c/kWh", Decimal("8.90"), Decimal("7.49"))
    fee = PriceElement("Perusmaksu", "EUR/month", Decimal("4.90"), Decimal("3.95"))
    assert f.date(date(2027, 5, 1)) == "1.5.2027"
    assert f.price(energy) == "8,90 c/kWh"
    assert f.old_price(energy) == "7,49 c/kWh"
    assert f.price(fee) == "4,90 €/kk"
    assert f.change(energy) == "+18,8 %"
    assert f.money(Decimal("1234.5")) == "1 234,50 €"
    assert f.months(12) == "12 kuukautta"


def test_swedish_formats_in_sweden_and_finland():
    se = Formatter(locale_for("sv", "SE"), "SE")
    fi = Formatter(locale_for("sv", "FI"), "FI")
    assert se.locale == "sv_SE" and fi.locale == "sv_FI"
    assert se.date(date(2027, 5, 1)) == "1 maj 2027"
    assert se.unit_price(Decimal("89.5"), "öre/kWh") == "89,50 öre/kWh"
    assert se.unit_price(Decimal("49"), "SEK/month") == "49,00 kr/mån"
    assert fi.money(Decimal("4.9")) == "4,90 €"
    assert se.months(24) == "24 månader"


def test_norwegian_formats_use_the_words_of_norwegian_price_lists():
    f = Formatter(locale_for("nb", "NO"), "NO")
    energy = PriceElement("Strømpris", "øre/kWh", Decimal("79.90"), Decimal("69.90"))
    fee = PriceElement("Fastbeløp", "NOK/month", Decimal("49"), Decimal("39"))
    assert f.locale == "nb_NO"
    assert f.date(date(2027, 5, 1)) == "1. mai 2027"
    assert f.price(energy) == "79,90 øre/kWh"
    assert f.old_price(energy) == "69,90 øre/kWh"
    assert f.price(fee) == "49,00 kr/mnd"
    assert f.unit_price(Decimal("588"), "NOK/year") == "588,00 kr/år"
    assert f.unit("NOK/month") == "kr/mnd"
    assert f.change(fee) == "+25,6 %"
    assert f.money(Decimal("1234.5")) == "1 234,50 kr"
    assert f.months(12) == "12 måneder"
    assert f.percent(Decimal("0.25"), 0) == "25 %"


def test_english_formats():
    f = Formatter(locale_for("en", "NO"), "NO")
    assert f.date(date(2027, 5, 1)) == "1 May 2027"
    assert f.unit_price(Decimal("49"), "NOK/month") == "NOK 49.00 per month"
    assert f.unit_price(Decimal("79.90"), "øre/kWh") == "79.90 øre/kWh"
    assert f.percent(Decimal("0.125")) == "12.5%"


def test_precision_given_by_the_company_is_kept():
    f = Formatter("fi_FI", "FI")
    assert f.unit_price(Decimal("8.905"), "c/kWh") == "8,905 c/kWh"
    assert f.unit_price(Decimal("9"), "c/kWh") == "9,00 c/kWh"


def test_output_has_no_no_break_spaces_so_sms_stays_gsm7():
    f = Formatter("fi_FI", "FI")
    for text in (f.money(Decimal("1234.5")), f.unit_price(Decimal("4.9"), "EUR/month"), f.months(12)):
        assert "\u00a0" not in text and "\u202f" not in text


def test_times_are_shown_in_the_recipients_time_zone():
    moment = datetime(2027, 1, 11, 7, 0, tzinfo=UTC)
    assert Formatter("fi_FI", "FI").time(moment) == "9.00"
    assert Formatter("sv_SE", "SE").time(moment) == "08:00"
    assert Formatter("nb_NO", "NO").time(moment) == "08:00"
