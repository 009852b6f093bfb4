"""decide() as a whole: bad input, odd dates, configured settings, and the calendar helpers."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from policykit import TZ, Kit, at, contacts, days_before, person

from dispatch.config import CountryRules, PolicyConfig
from dispatch.errors import InputError, UnsupportedCountry
from dispatch.policy import PolicySettings
from dispatch.policy.calendar import add_duration, add_months, add_years, calendar_for, next_window_start, quiet_until
from dispatch.policy.engine import RULES_BY_CATEGORY

NOW = at("FI", 2026, 3, 4, 12)


# -- input errors ---------------------------------------------------------------------------


def test_naive_now_is_refused(kit):
    with pytest.raises(InputError, match="timezone-aware"):
        kit.decide("marketing", person(), datetime(2026, 3, 4, 12))


@pytest.mark.parametrize(
    "now",
    [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 22, tzinfo=TZ["FI"]),
        datetime(9998, 6, 1, tzinfo=UTC),
    ],
)
def test_now_at_the_ends_of_the_calendar_is_refused(kit, now):
    with pytest.raises(InputError, match="outside the range"):
        kit.decide(
            "marketing",
            person(preferred_channels={"default": "phone"}),
            now,
            history=contacts(datetime(2026, 1, 1, tzinfo=UTC)),
        )


def test_now_just_inside_the_supported_range_is_decided(kit):
    d = kit.decide("marketing", person(preferred_channels={"default": "phone"}), datetime(9997, 12, 31, 23, tzinfo=UTC))
    assert d.channel == "phone" and d.send_after > datetime(9997, 12, 31, 23, tzinfo=UTC)


def test_a_country_without_policy_is_unsupported():
    only_finland = Kit(PolicySettings.from_config(PolicyConfig(countries={"FI": CountryRules()})))
    with pytest.raises(UnsupportedCountry, match="SE"):
        only_finland.decide("marketing", person("SE"), at("SE", 2026, 3, 4, 12))


# -- dates at the ends of the calendar do not crash the rules ------------------------------


def test_birth_date_far_in_the_future_is_a_minor(kit):
    assert kit.decide("marketing", person(birth_date="9990-06-01"), NOW).reasons == ["minor"]


def test_last_invoice_far_in_the_future_is_quiet(kit):
    d = kit.decide(
        "marketing",
        person(
            status="former",
            last_invoice_paid_on="9999-11-01",
            consents=[{"purpose": "marketing", "channel": "all", "granted": True, "at": "2025-01-01"}],
        ),
        NOW,
    )
    assert d.reasons == ["quiet_period"]


def test_confirmation_signed_at_the_end_of_the_calendar_has_the_last_deadline(kit):
    d = kit.decide("contract_confirmation", person(), NOW, data={"signed_on": "9999-12-30"})
    assert d.deadline == datetime.combine(date.max, time(23, 59, 59), tzinfo=TZ["FI"])


def test_notice_effective_at_the_start_of_the_calendar_is_too_late(kit):
    assert kit.decide("price_change", person(), NOW, data={"effective_on": "0001-01-01"}).reasons == ["notice_period"]


# -- settings from the configuration are honoured -----------------------------------------


def _kit(**policy) -> Kit:
    return Kit(PolicySettings.from_config(PolicyConfig(**policy)))


def test_configured_marketing_per_year():
    history = contacts(*days_before(NOW, 200, 100))
    assert _kit(marketing_per_year=3).decide("marketing", person(), NOW, history=history).reasons == []
    assert _kit(marketing_per_year=2).decide("marketing", person(), NOW, history=history).reasons == ["frequency_cap"]


def test_configured_days_between_marketing_messages():
    history = contacts(NOW - timedelta(days=10))
    assert _kit(marketing_min_days_between=14).decide("marketing", person(), NOW, history=history).reasons == [
        "frequency_cap"
    ]


def test_configured_calling_hours():
    kit = _kit(countries={"FI": CountryRules(calling_days=[1, 2, 3, 4, 5, 6], calling_hours=["10:00", "18:00"])})
    phone = person(preferred_channels={"marketing": "phone"})
    assert kit.decide("marketing", phone, at("FI", 2026, 3, 7, 9)).send_after == at("FI", 2026, 3, 7, 10)
    assert kit.decide("marketing", phone, at("FI", 2026, 3, 7, 18)).send_after == at("FI", 2026, 3, 9, 10)


def test_configured_sms_quiet_hours():
    kit = _kit(sms_quiet_hours=["22:00", "09:00"])
    sms = person(preferred_channels={"marketing": "sms"})
    assert kit.decide("marketing", sms, at("FI", 2026, 3, 4, 21, 30)).send_after is None
    assert kit.decide("marketing", sms, at("FI", 2026, 3, 4, 8, 30)).send_after == at("FI", 2026, 3, 4, 9)


def test_configured_letter_delivery_days():
    letter = person(email=None)
    sent = at("FI", 2026, 3, 2, 12)  # a Monday: 3 working days → Thursday, 5 → next Monday
    data = {"effective_on": "2026-04-05"}
    assert _kit().decide("price_change", letter, sent, data=data).reasons == []
    assert _kit(delivery_days={"letter": 5}).decide("price_change", letter, sent, data=data).reasons == [
        "notice_period"
    ]


def test_configured_notice_lead_time():
    kit = _kit(countries={"FI": CountryRules(notice_household="P2M")})
    assert kit.decide("price_change", person(), NOW, data={"effective_on": "2026-05-03"}).reasons == ["notice_period"]


def test_only_no_address_and_notice_period_apply_to_statutory_messages():
    assert [code for code, _ in RULES_BY_CATEGORY["statutory"]] == ["notice_period"]
    # notice_period joined service in issue 20: Sweden's window for telling a fixed-term customer the term ends.
    assert [code for code, _ in RULES_BY_CATEGORY["service"]] == ["unsubscribed", "address_suppressed", "notice_period"]


# -- calendar helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2026, 8, 31), 6, date(2027, 2, 28)),
        (date(2026, 3, 15), 24, date(2028, 3, 15)),
        (date(2026, 11, 30), 3, date(2027, 2, 28)),
        (date(2100, 1, 31), 1, date(2100, 2, 28)),  # 2100 is not a leap year
        (date(2000, 1, 31), 1, date(2000, 2, 29)),  # 2000 is
        (date(9999, 11, 1), 6, date.max),
    ],
)
def test_add_months(day, months, expected):
    assert add_months(day, months) == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2008, 2, 29), date(2026, 3, 1)),
        (date(2008, 2, 28), date(2026, 2, 28)),
        (date(2008, 3, 4), date(2026, 3, 4)),
        (date(9990, 1, 1), date.max),
    ],
)
def test_add_years_18(day, expected):
    assert add_years(day, 18) == expected


def test_add_years_29_february_to_a_leap_year():
    assert add_years(date(2004, 2, 29), 4) == date(2008, 2, 29)


def test_add_duration_saturates():
    assert add_duration(date(9999, 12, 20), (0, 30)) == date.max
    assert add_duration(date(2026, 1, 31), (1, 14)) == date(2026, 3, 14)


def test_working_days_skip_weekends_and_holidays():
    finland = calendar_for("FI")
    assert finland.add_working_days(date(2026, 4, 2), 1) == date(2026, 4, 7)  # Good Friday to Easter Monday
    assert finland.add_working_days(date(2026, 4, 2), 0) == date(2026, 4, 2)
    assert finland.add_working_days(date(9999, 12, 29), 7) == date.max
    assert finland.next_working_day(date(2026, 12, 24)) == date(2026, 12, 28)
    assert finland.is_working_day(date(2026, 6, 18))
    assert not finland.is_working_day(date(2026, 6, 19))  # Midsummer Eve
    assert calendar_for("NO").is_working_day(date(2026, 6, 19))
    assert calendar_for("SE").is_holiday(date(2026, 12, 31))  # New Year's Eve, de facto
    assert not calendar_for("FI").is_holiday(date(2026, 12, 31))


def test_windows_keep_the_zone_of_local_time():
    oslo = TZ["NO"]
    saturday = datetime(2026, 3, 28, 10, tzinfo=oslo)
    opens = next_window_start(saturday, frozenset({1, 2, 3, 4, 5}), time(9), time(21), calendar_for("NO"))
    assert opens == datetime(2026, 3, 30, 9, tzinfo=oslo) and opens.tzinfo is oslo
    assert quiet_until(datetime(2026, 3, 28, 23, tzinfo=oslo), time(21), time(8)) == datetime(
        2026, 3, 29, 8, tzinfo=oslo
    )
    assert quiet_until(datetime(2026, 3, 28, 12, tzinfo=oslo), time(12), time(13)) == datetime(
        2026, 3, 28, 13, tzinfo=oslo
    )
    assert quiet_until(datetime(2026, 3, 28, 13, tzinfo=oslo), time(12), time(13)) is None
