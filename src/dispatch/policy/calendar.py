"""Business-day calendars and time windows for FI, SE and NO.

Public holidays come from the ``holidays`` package; for Sweden its ``de_facto``
category adds the days offices close although the law does not say so
(Midsummer Eve, Christmas Eve, New Year's Eve). Working days are Monday to
Friday that are not holidays.

Everything here is pure. The calendar caches its lookups (a year's days off, a
working-day sum), so the policy engine pays for a holiday table once per year and
country. Date arithmetic saturates: a result beyond 9999-12-31 is ``date.max``,
which the rules read as "not within the calendar" (an anniversary that never
comes, a deadline that never passes) instead of failing on odd input dates.
"""

from __future__ import annotations

import re
from datetime import MAXYEAR, MINYEAR, date, datetime, time, timedelta
from functools import lru_cache

import holidays

from ..errors import ConfigError

#: Holiday categories that close offices, per country.
HOLIDAY_CATEGORIES: dict[str, tuple[str, ...]] = {
    "FI": ("public",),
    "SE": ("public", "de_facto"),
    "NO": ("public",),
}
_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$")
_ONE_DAY = timedelta(days=1)
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class BusinessCalendar:
    """Working days of one country."""

    def __init__(self, country: str, categories: tuple[str, ...] | None = None) -> None:
        self.country = country
        self.categories = categories or HOLIDAY_CATEGORIES.get(country, ("public",))
        self._holidays = holidays.country_holidays(country, categories=self.categories)
        # Pure lookups, cached per calendar.
        self._days_off = lru_cache(maxsize=512)(self._compute_days_off)
        self.add_working_days = lru_cache(maxsize=8192)(self._add_working_days)

    def _compute_days_off(self, year: int) -> frozenset[date]:
        return frozenset(holidays.country_holidays(self.country, categories=self.categories, years=year))

    def is_working_day(self, day: date) -> bool:
        """Monday to Friday and not a holiday."""
        return day.weekday() < 5 and day not in self._days_off(day.year)

    def is_holiday(self, day: date) -> bool:
        """True on a public holiday (whatever the weekday)."""
        return day in self._days_off(day.year)

    def holiday_name(self, day: date) -> str | None:
        """The holiday's name, or None on an ordinary day."""
        return self._holidays.get(day)

    def _add_working_days(self, start: date, count: int) -> date:
        """The date ``count`` working days after ``start`` (``start`` itself not counted).

        ``date.max`` when the calendar ends first.
        """
        day = start
        remaining = count
        while remaining > 0:
            if day == date.max:
                return day
            day += _ONE_DAY
            if self.is_working_day(day):
                remaining -= 1
        return day

    def next_working_day(self, day: date) -> date:
        """``day`` if it is a working day, otherwise the next one (``date.max`` at the calendar's end)."""
        while not self.is_working_day(day) and day != date.max:
            day += _ONE_DAY
        return day


@lru_cache(maxsize=8)
def calendar_for(country: str) -> BusinessCalendar:
    """The shared calendar of ``country``."""
    return BusinessCalendar(country)


def parse_duration(text: str, where: str) -> tuple[int, int]:
    """Parse an ISO-8601 date duration (``P1M``, ``P30D``, ``P2W``) into (months, days)."""
    match = _DURATION.match(text.strip().upper()) if isinstance(text, str) else None
    if not match or not any(match.groups()):
        raise ConfigError(f"{where} {text!r} is not a duration like P1M, P2M, P30D or P2W")
    years, months, weeks, days = (int(g) if g else 0 for g in match.groups())
    return years * 12 + months, weeks * 7 + days


def parse_clock(text: str, where: str) -> time:
    """Parse ``HH:MM`` into a time."""
    try:
        hours, minutes = text.split(":")
        return time(int(hours), int(minutes))
    except (ValueError, AttributeError):
        raise ConfigError(f"{where} {text!r} is not a time like 09:00") from None


def _last_day_of_month(year: int, month: int) -> int:
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS_IN_MONTH[month - 1]


def add_months(day: date, months: int) -> date:
    """``day`` plus whole calendar months; the 31st becomes the month's last day.

    Saturates at ``date.min`` / ``date.max``.
    """
    month_index = day.month - 1 + months
    year = day.year + month_index // 12
    if year > MAXYEAR:
        return date.max
    if year < MINYEAR:
        return date.min
    month = month_index % 12 + 1
    return date(year, month, min(day.day, _last_day_of_month(year, month)))


def add_duration(day: date, duration: tuple[int, int]) -> date:
    """``day`` plus a (months, days) duration, saturating at ``date.max``."""
    months, days = duration
    shifted = add_months(day, months) if months else day
    try:
        return shifted + timedelta(days=days)
    except OverflowError:
        return date.max if days > 0 else date.min


def add_years(day: date, years: int) -> date:
    """The anniversary ``years`` later; 29 February maps to 1 March in common years.

    Saturates at ``date.max``: someone born in 9990 is not 18 within the calendar.
    """
    year = day.year + years
    if year > MAXYEAR:
        return date.max
    if day.month == 2 and day.day == 29 and _last_day_of_month(year, 2) == 28:
        return date(year, 3, 1)
    return day.replace(year=year)


def next_window_start(
    local: datetime,
    days: frozenset[int],
    start: time,
    end: time,
    calendar: BusinessCalendar | None,
) -> datetime:
    """The earliest moment at or after ``local`` inside a daily window on allowed days.

    ``local`` is an aware datetime in the window's time zone; the result is in that
    zone. ``days`` are ISO weekdays (1 = Monday); with a ``calendar``, its holidays
    are skipped too. Returns ``local`` itself when it is already inside the window.
    """
    tz = local.tzinfo
    today = local.date()
    clock = local.time()
    for offset in range(0, 400):
        candidate = today + timedelta(days=offset)
        if candidate.isoweekday() not in days:
            continue
        if calendar is not None and calendar.is_holiday(candidate):
            continue
        if offset == 0:
            if clock < start:
                return datetime.combine(candidate, start, tzinfo=tz)
            if clock < end:
                return local
            continue
        return datetime.combine(candidate, start, tzinfo=tz)
    raise ValueError("no allowed window within 400 days")  # pragma: no cover - needs an empty week


def quiet_until(local: datetime, start: time, end: time) -> datetime | None:
    """When quiet hours (``start``–``end``, may cross midnight) are on at ``local``, the moment they end.

    ``local`` is an aware datetime in the recipient's time zone; so is the result.
    """
    clock = local.time()
    tz = local.tzinfo
    if start > end:  # e.g. 21:00–08:00
        if clock >= start:
            return datetime.combine(local.date() + _ONE_DAY, end, tzinfo=tz)
        if clock < end:
            return datetime.combine(local.date(), end, tzinfo=tz)
        return None
    if start <= clock < end:
        return datetime.combine(local.date(), end, tzinfo=tz)
    return None
