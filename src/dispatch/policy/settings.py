"""Policy settings compiled from ``[policy]``: durations parsed, hours as times.

Compiling once means the hot path of :func:`dispatch.policy.decide` never parses
text, and a bad value is reported when the configuration loads, naming its key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from zoneinfo import ZoneInfo

from ..config import PolicyConfig
from ..errors import ConfigError
from ..models import COUNTRY_TIMEZONES
from .calendar import BusinessCalendar, calendar_for, parse_clock, parse_duration

#: Bump when a rule's meaning changes; stored with every decision.
RULES_VERSION = "2026.12-1"


@dataclass(frozen=True, slots=True)
class CountryPolicy:
    """One country's compiled rules."""

    country: str
    tz: ZoneInfo
    calendar: BusinessCalendar
    notice_household: tuple[int, int]
    notice_business: tuple[int, int]
    calling_days: frozenset[int]
    calling_start: time
    calling_end: time
    register_refresh_days: int
    registers_exempt_active_customers: bool
    #: (earliest, latest) before a fixed term ends that the renewal notice must arrive; None: no rule.
    renewal_notice: tuple[tuple[int, int], tuple[int, int]] | None = None


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """All policy settings, ready for the rules."""

    marketing_per_year: int
    marketing_min_days_between: int
    adult_age: int
    former_quiet_months: int
    former_retention_months: int
    prospect_retention_months: int
    sms_quiet_start: time
    sms_quiet_end: time
    delivery_days: dict[str, int]
    countries: dict[str, CountryPolicy]
    version: str = RULES_VERSION

    @classmethod
    def from_config(cls, config: PolicyConfig) -> PolicySettings:
        for key in (
            "marketing_per_year",
            "marketing_min_days_between",
            "adult_age",
            "former_quiet_months",
            "former_retention_months",
            "prospect_retention_months",
        ):
            if getattr(config, key) < 0:
                raise ConfigError(f"policy.{key} must not be negative")
        if len(config.sms_quiet_hours) != 2:
            raise ConfigError('policy.sms_quiet_hours must be [start, end], e.g. ["21:00", "08:00"]')
        countries = {}
        for code, rules in config.countries.items():
            where = f"policy.countries.{code}"
            if len(rules.calling_hours) != 2:
                raise ConfigError(f'{where}.calling_hours must be [start, end], e.g. ["09:00", "20:00"]')
            if not rules.calling_days or not set(rules.calling_days) <= set(range(1, 8)):
                raise ConfigError(f"{where}.calling_days must list ISO weekdays 1 (Mon) to 7 (Sun)")
            start = parse_clock(rules.calling_hours[0], f"{where}.calling_hours")
            end = parse_clock(rules.calling_hours[1], f"{where}.calling_hours")
            if start >= end:
                raise ConfigError(f"{where}.calling_hours must start before they end")
            renewal_notice = None
            if rules.renewal_notice:
                if len(rules.renewal_notice) != 2:
                    raise ConfigError(f'{where}.renewal_notice must be [earliest, latest], e.g. ["P90D", "P60D"]')
                earliest = parse_duration(rules.renewal_notice[0], f"{where}.renewal_notice")
                latest = parse_duration(rules.renewal_notice[1], f"{where}.renewal_notice")
                if earliest[0] * 31 + earliest[1] <= latest[0] * 28 + latest[1]:
                    raise ConfigError(
                        f"{where}.renewal_notice: the earliest must be longer before the end than the latest"
                    )
                renewal_notice = (earliest, latest)
            countries[code] = CountryPolicy(
                country=code,
                tz=ZoneInfo(COUNTRY_TIMEZONES[code]),
                calendar=calendar_for(code),
                notice_household=parse_duration(rules.notice_household, f"{where}.notice_household"),
                notice_business=parse_duration(rules.notice_business, f"{where}.notice_business"),
                calling_days=frozenset(rules.calling_days),
                calling_start=start,
                calling_end=end,
                register_refresh_days=rules.register_refresh_days,
                registers_exempt_active_customers=rules.registers_exempt_active_customers,
                renewal_notice=renewal_notice,
            )
        for channel, days in config.delivery_days.items():
            if days < 0:
                raise ConfigError(f"policy.delivery_days.{channel} must not be negative")
        return cls(
            marketing_per_year=config.marketing_per_year,
            marketing_min_days_between=config.marketing_min_days_between,
            adult_age=config.adult_age,
            former_quiet_months=config.former_quiet_months,
            former_retention_months=config.former_retention_months,
            prospect_retention_months=config.prospect_retention_months,
            sms_quiet_start=parse_clock(config.sms_quiet_hours[0], "policy.sms_quiet_hours"),
            sms_quiet_end=parse_clock(config.sms_quiet_hours[1], "policy.sms_quiet_hours"),
            delivery_days=dict(config.delivery_days),
            countries=countries,
        )
