"""Locale-aware formatting for templates, all done by Babel.

A :class:`Formatter` is bound to one locale, currency and time zone; its methods are
the Jinja filters templates use (``date``, ``money``, ``unit_price``, ``price``,
``number``, ``percent``, ``months``...). Results are memoised because bulk runs
format the same prices and dates again and again.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_currency, format_decimal, format_percent
from babel.units import format_unit

from .messages import PriceElement
from .models import COUNTRY_TIMEZONES

CURRENCY = {"FI": "EUR", "SE": "SEK", "NO": "NOK"}
TIMEZONE = COUNTRY_TIMEZONES
#: Default Babel locale per (language, country); ``*`` matches any country.
DEFAULT_LOCALES: dict[str, dict[str, str]] = {
    "fi": {"*": "fi_FI"},
    "sv": {"FI": "sv_FI", "*": "sv_SE"},
    "nb": {"*": "nb_NO"},
    "en": {"*": "en_GB"},
}
#: CLDR units for the denominators of price units ("EUR/month" → per month).
PER_UNITS = {
    "month": "duration-month",
    "mo": "duration-month",
    "year": "duration-year",
    "yr": "duration-year",
    "day": "duration-day",
    "kwh": "energy-kilowatt-hour",
    "mwh": "energy-kilowatt-hour",
}
#: Default date format per language: 1.5.2027 (fi), 1 maj 2027 (sv), 1. mai 2027 (nb), 1 May 2027 (en).
DATE_FORMATS = {"fi": "medium", "sv": "long", "nb": "long", "en": "long"}
#: English reads "€3.90 per month"; the Nordic languages use the short "3,90 €/kk".
PER_LENGTH = {"en": "long"}
#: Where a language's price lists abbreviate differently from CLDR's short unit: Norwegian
#: retailers write "49,00 kr/mnd" and "kr/år", where CLDR has "kr/md.".
PER_WORDS: dict[str, dict[str, str]] = {
    "nb": {"month": "mnd", "mo": "mnd", "year": "år", "yr": "år", "day": "dag"},
}
_CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")
#: Babel separates groups and units with no-break spaces; SMS (GSM-7) has none, and
#: people searching a message for "8,90 c/kWh" type a plain space, so output uses plain ones.
_PLAIN_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " "})


def plain(text: str) -> str:
    """Replace the no-break and thin spaces Babel emits with plain spaces."""
    return text.translate(_PLAIN_SPACES)


def locale_for(language: str, country: str, overrides: dict[str, dict[str, str]] | None = None) -> str:
    """The Babel locale for a message in ``language`` to someone in ``country``."""
    table = (overrides or {}).get(language) or DEFAULT_LOCALES.get(language, {"*": language})
    return table.get(country) or table.get("*") or language


class Formatter:
    """Babel formatting bound to one locale; its public methods are template filters."""

    FILTERS = (
        "date",
        "datetime",
        "time",
        "money",
        "unit_price",
        "price",
        "old_price",
        "number",
        "percent",
        "change",
        "months",
        "unit",
        "compound",
    )

    def __init__(
        self,
        locale: str,
        country: str,
        currency: str | None = None,
        timezone: str | None = None,
        unit_labels: dict[str, str] | None = None,
    ):
        self.locale = locale
        #: How this language writes a unit the data gives, e.g. {"c/kWh": "snt/kWh"} for Finnish text
        #: (``[languages] unit_labels``); units not listed print as given.
        self.unit_labels = dict(unit_labels or {})
        self.language = locale.split("_")[0]
        self.country = country
        self.currency = currency or CURRENCY.get(country, "EUR")
        self.tz = ZoneInfo(timezone or TIMEZONE.get(country, "UTC"))
        Locale.parse(locale)  # fail early on a locale Babel does not know

    def filters(self) -> dict[str, Any]:
        """The filters to install in a Jinja environment."""
        return {name: getattr(self, name) for name in self.FILTERS}

    def date(self, value: date | datetime | str, format: str | None = None) -> str:
        """A date: ``1.5.2027`` (fi), ``1 maj 2027`` (sv), ``1. mai 2027`` (nb), ``1 May 2027`` (en); or given."""
        format = format or DATE_FORMATS.get(self.language, "medium")
        if isinstance(value, str):
            value = date.fromisoformat(value)
        if isinstance(value, datetime):
            value = value.astimezone(self.tz).date()
        return _date(value, format, self.locale)

    def datetime(self, value: datetime, format: str = "medium") -> str:
        """A moment in the recipient's time zone."""
        return plain(format_datetime(value, format, tzinfo=self.tz, locale=self.locale))

    def time(self, value: datetime, format: str = "short") -> str:
        """A time of day in the recipient's time zone: ``9.00`` (fi), ``09:00`` (sv)."""
        return plain(format_time(value, format, tzinfo=self.tz, locale=self.locale))

    def money(self, amount: Decimal | int | str, currency: str | None = None) -> str:
        """An amount of money in the country's currency: ``12,90 €``, ``129,00 kr``."""
        return _money(_dec(amount), currency or self.currency, self.locale)

    def number(self, value: Decimal | int | str, digits: int | None = None) -> str:
        """A number with the locale's separators; ``digits`` fixes the decimals."""
        return _number(_dec(value), digits, self.locale)

    def percent(self, value: Decimal | int | str, digits: int = 1) -> str:
        """A fraction as a percentage: ``0.125`` → ``12,5 %``."""
        return _percent(_dec(value), digits, self.locale)

    def unit(self, unit: str) -> str:
        """A price unit as the locale writes it: ``EUR/month`` → ``€/kk``; ``c/kWh`` stays."""
        return _unit_label(self.unit_labels.get(unit, unit), self.locale, self.language)

    def unit_price(self, amount: Decimal | int | str, unit: str) -> str:
        """An amount in a unit: ``8,90 c/kWh``, ``3,90 €/kk``, ``49,00 kr/mnd``, ``€3.90 per month``."""
        return _unit_price(_dec(amount), self.unit_labels.get(unit, unit), self.locale, self.language)

    def price(self, element: PriceElement) -> str:
        """A price element's new price with its unit."""
        return self.unit_price(element.new, element.unit)

    def old_price(self, element: PriceElement) -> str:
        """A price element's old price with its unit (empty if there is none)."""
        return self.unit_price(element.old, element.unit) if element.old is not None else ""

    def change(self, element: PriceElement) -> str:
        """The change from old to new as a signed percentage: ``+12,4 %``."""
        if element.old is None or element.old == 0:
            return ""
        ratio = (element.new - element.old) / element.old
        text = _percent(ratio, 1, self.locale)
        return text if ratio < 0 else "+" + text

    def compound(self, name: str, word: str) -> str:
        """A name joined to a word as Finnish writes it: ``Perussähkö-sopimuksena`` but
        ``Kiinteä 24 -sopimuksena`` (a space before the hyphen only after a name of several words;
        Kielitoimiston ohjepankki, "Yhdysmerkki: erisnimi + yleisnimi")."""
        name = str(name)
        return f"{name} -{word}" if " " in name.strip() else f"{name}-{word}"

    def months(self, count: int) -> str:
        """A duration in months: ``12 kuukautta``, ``12 månader``, ``12 måneder``, ``12 months``."""
        return _months(int(count), self.locale)


def _dec(value: Decimal | int | str) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        raise TypeError("amounts must be decimal strings or Decimal, not float")
    return Decimal(value)


def _decimal_pattern(value: Decimal, minimum: int = 2) -> str:
    exponent = value.as_tuple().exponent
    places = max(minimum, -exponent if isinstance(exponent, int) and exponent < 0 else 0)
    return "#,##0." + "0" * places if places else "#,##0"


@lru_cache(maxsize=8192)
def _date(value: date, format: str, locale: str) -> str:
    return plain(format_date(value, format, locale=locale))


_CODE_GLUED = re.compile(r"\b([A-Z]{3})(?=[\d-])")


@lru_cache(maxsize=8192)
def _money(amount: Decimal, currency: str, locale: str) -> str:
    text = format_currency(amount, currency, locale=locale, decimal_quantization=False)
    # CLDR glues ISO codes to the amount in some locales ("NOK1,234.50"); write "NOK 1,234.50".
    return plain(_CODE_GLUED.sub(r"\1 ", text))


def _zero_money(currency: str, locale: str) -> str:
    """Zero in ``currency`` without decimals: ``0 €``, ``0 kr``, ``€0``."""
    from babel.numbers import get_currency_symbol

    text = _money(Decimal(1), currency, locale)
    number = format_decimal(Decimal(1), format="#,##0.00", locale=locale)
    symbol = get_currency_symbol(currency, locale=locale)
    return text.replace(plain(number), "0") if plain(number) in text else f"0 {symbol}"


@lru_cache(maxsize=8192)
def _number(value: Decimal, digits: int | None, locale: str) -> str:
    if digits is None:
        return plain(format_decimal(value, locale=locale, decimal_quantization=False))
    pattern = "#,##0." + "0" * digits if digits else "#,##0"
    return plain(format_decimal(value, format=pattern, locale=locale))


@lru_cache(maxsize=4096)
def _percent(value: Decimal, digits: int, locale: str) -> str:
    pattern = "#,##0." + "#" * digits + "%" if digits else "#,##0%"
    text = format_percent(value, locale=locale)
    # Keep the locale's spacing and sign placement, but with the requested precision.
    number = format_decimal(value * 100, format=pattern[:-1], locale=locale)
    digits_in_default = re.search(r"[\d\s\u00a0\u202f.,]+\d|\d", text)
    return plain(text.replace(digits_in_default.group(0), number, 1) if digits_in_default else text)


@lru_cache(maxsize=1024)
def _months(count: int, locale: str) -> str:
    return plain(format_unit(count, "duration-month", length="long", locale=locale))


def _split_unit(unit: str) -> tuple[str, str | None]:
    head, _, per = unit.partition("/")
    return head.strip(), (per.strip() or None)


def _per_pattern(per: str | None, locale: str, language: str) -> str:
    if per is None:
        return "{0}"
    word = PER_WORDS.get(language, {}).get(per.lower())
    if word:
        return "{0}/" + word
    cldr = PER_UNITS.get(per.lower())
    if cldr and per.lower() != "mwh":
        patterns = Locale.parse(locale)._data["unit_patterns"].get(cldr, {})
        length = PER_LENGTH.get(language, "short")
        pattern = (patterns.get(length) or {}).get("per") or (patterns.get("short") or {}).get("per")
        if pattern:
            return pattern
    return "{0}/" + per


@lru_cache(maxsize=1024)
def _unit_label(unit: str, locale: str, language: str) -> str:
    head, per = _split_unit(unit)
    if _CURRENCY_CODE.match(head):
        from babel.numbers import get_currency_symbol

        head = get_currency_symbol(head, locale)
    return plain(_per_pattern(per, locale, language).replace("{0}", head).replace(" / ", "/"))


@lru_cache(maxsize=16384)
def _unit_price(amount: Decimal, unit: str, locale: str, language: str) -> str:
    head, per = _split_unit(unit)
    if _CURRENCY_CODE.match(head):
        # A fee of nothing reads "0 €/kk", not "0,00 €/kk".
        value = _money(amount, head, locale) if amount != 0 else _zero_money(head, locale)
        return plain(_per_pattern(per, locale, language).replace("{0}", value))
    number = format_decimal(amount, format=_decimal_pattern(amount), locale=locale, decimal_quantization=False)
    return plain(f"{number} {unit}")
