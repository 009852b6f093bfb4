"""Business-day calendars and time windows for FI, SE and NO.

Public holidays come from the ``holidays`` package; for Sweden its ``de_facto``
category adds the days offices close although the law does not say so
(Midsummer Eve, Christmas Eve, New Year's Eve). Working days are Monday to
Friday that are not holidays.
"""

from __future__ import annotations

import calendar as _calendar
import re
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from ..errors import ConfigError

#: Holiday categories that close offices, per country.
HOLIDAY_CATEGORIES: dict[str, tuple[str, ...]] = {
    "FI": ("public",),
    "SE": ("public", "de_facto"),
    "NO": ("public",),
}
_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$")


class BusinessCalendar:
    """Working days of one country."""

    def __init__(self, country: str, categories: tuple[str, ...] | None = None) -> None:
        self.country = country
        self._holidays = holidays.country_holidays(
            country, categories=categories or HOLIDAY_CATEGORIES.get(country, ("public",))
        )
        self.is_working_day = lru_cache(maxsize=8192)(self._is_working_day)

    def _is_working_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self._holidays

    def is_holiday(self, day: date) -> bool:
        """True on a public holiday (whatever the weekday)."""
        return day in self._holidays

    def holiday_name(self, day: date) -> str | None:
        """The holiday's name, or None on an ordinary day."""
        return self._holidays.get(day)

    def add_working_days(self, start: date, count: int) -> date:
        """The date ``count`` working days after ``start`` (``start`` itself not counted)."""
        day = start
        remaining = count
        while remaining > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                remaining -= 1
        return day

    def next_working_day(self, day: date) -> date:
        """``day`` if it is a working day, otherwise the next one."""
        while not self.is_working_day(day):
            day += timedelta(days=1)
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


def add_months(day: date, months: int) -> date:
    """``day`` plus whole calendar months; the 31st becomes the month's last day."""
    month_index = day.month - 1 + months
    year = day.year + month_index // 12
    month = month_index % 12 + 1
    last = _calendar.monthrange(year, month)[1]
    return date(year, month, min(day.day, last))


def add_duration(day: date, duration: tuple[int, int]) -> date:
    """``day`` plus a (months, days) duration."""
    months, days = duration
    return add_months(day, months) + timedelta(days=days) if months else day + timedelta(days=days)


def add_years(day: date, years: int) -> date:
    """The anniversary ``years`` later; 29 February maps to 1 March in common years."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return date(day.year + years, 3, 1)


def next_window_start(
    now: datetime,
    tz: ZoneInfo,
    days: frozenset[int],
    start: time,
    end: time,
    calendar: BusinessCalendar | None,
) -> datetime:
    """The earliest moment at or after ``now`` inside a daily window on allowed days.

    ``days`` are ISO weekdays (1 = Monday); with a ``calendar``, its holidays are
    skipped too. Returns ``now`` itself when it is already inside the window.
    """
    local = now.astimezone(tz)
    day = local.date()
    for offset in range(0, 400):
        candidate = day + timedelta(days=offset)
        if candidate.isoweekday() not in days:
            continue
        if calendar is not None and calendar.is_holiday(candidate):
            continue
        opens = datetime.combine(candidate, start, tzinfo=tz)
        closes = datetime.combine(candidate, end, tzinfo=tz)
        if offset == 0:
            if local < opens:
                return opens
            if local < closes:
                return now
            continue
        return opens
    raise ValueError("no allowed window within 400 days")  # pragma: no cover - needs an empty week


def quiet_until(now: datetime, tz: ZoneInfo, start: time, end: time) -> datetime | None:
    """When quiet hours (``start``–``end``, crossing midnight) are on, the moment they end."""
    local = now.astimezone(tz)
    clock = local.time()
    if start > end:  # e.g. 21:00–08:00
        if clock >= start:
            return datetime.combine(local.date() + timedelta(days=1), end, tzinfo=tz)
        if clock < end:
            return datetime.combine(local.date(), end, tzinfo=tz)
        return None
    if start <= clock < end:
        return datetime.combine(local.date(), end, tzinfo=tz)
    return None
