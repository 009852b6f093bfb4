"""send_after: calling hours for phone tasks, quiet hours for SMS marketing (SPEC §4)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from policykit import TZ, at, person

PHONE = {"preferred_channels": {"renewal_offer": "phone", "marketing": "phone"}}
SMS = {"preferred_channels": {"default": "sms"}}


def call(kit, now, country="NO", type_name="renewal_offer"):
    d = kit.decide(type_name, person(country, **PHONE), now)
    assert (d.channel, d.reasons) == ("phone", [])
    return d.send_after


# -- calling hours ------------------------------------------------------------------------


def test_phone_task_on_a_saturday_in_norway_waits_until_monday_09_oslo(kit):
    assert call(kit, at("NO", 2026, 3, 7, 10)) == at("NO", 2026, 3, 9, 9)


def test_phone_task_on_a_sunday_evening_waits_until_monday_09(kit):
    assert call(kit, at("NO", 2026, 3, 8, 22)) == at("NO", 2026, 3, 9, 9)


@pytest.mark.parametrize(
    ("saturday", "next_call"),
    [
        ((2026, 4, 4), (2026, 4, 7)),  # Easter Monday
        ((2026, 5, 23), (2026, 5, 26)),  # Whit Monday
    ],
)
def test_phone_task_on_a_saturday_before_a_monday_holiday_waits_until_tuesday(kit, saturday, next_call):
    assert call(kit, at("NO", *saturday, 10)) == at("NO", *next_call, 9)


def test_phone_task_asked_for_in_utc_gets_oslo_calling_hours(kit):
    """Saturday 28 March 2026 in UTC; Monday 30 March is summer time in Oslo (UTC+2)."""
    send_after = call(kit, datetime(2026, 3, 28, 10, tzinfo=UTC))
    assert send_after == datetime(2026, 3, 30, 7, tzinfo=UTC)
    assert send_after.astimezone(TZ["NO"]).hour == 9


@pytest.mark.parametrize(("country", "last_minute"), [("NO", (20, 59)), ("FI", (19, 59)), ("SE", (19, 59))])
def test_calling_window_closes_at_21_in_norway_and_20_in_finland_and_sweden(kit, country, last_minute):
    inside = at(country, 2026, 3, 4, *last_minute)  # a Wednesday
    assert call(kit, inside, country) == inside
    closing = at(country, 2026, 3, 4, last_minute[0] + 1, 0)
    assert call(kit, closing, country) == at(country, 2026, 3, 5, 9)


@pytest.mark.parametrize("country", ["FI", "SE", "NO"])
def test_calling_window_opens_at_09(kit, country):
    assert call(kit, at(country, 2026, 3, 4, 8, 59), country) == at(country, 2026, 3, 4, 9)
    opening = at(country, 2026, 3, 4, 9, 0)
    assert call(kit, opening, country) == opening


@pytest.mark.parametrize(
    ("country", "holiday", "next_call"),
    [
        ("FI", (2026, 5, 14), (2026, 5, 15)),  # Ascension Day, a Thursday
        ("SE", (2026, 6, 19), (2026, 6, 22)),  # Midsummer Eve, a Friday
        ("FI", (2026, 12, 24), (2026, 12, 28)),  # Christmas Eve and Day
        ("NO", (2026, 5, 14), (2026, 5, 15)),
    ],
)
def test_a_public_holiday_on_a_weekday_is_skipped(kit, country, holiday, next_call):
    assert call(kit, at(country, *holiday, 11), country) == at(country, *next_call, 9)


def test_inside_the_window_a_call_can_be_made_now(kit):
    now = at("FI", 2026, 3, 4, 14, 27)
    assert call(kit, now, "FI") == now


def test_calling_hours_apply_to_marketing_calls_too(kit):
    assert call(kit, at("NO", 2026, 3, 7, 10), "NO", "marketing") == at("NO", 2026, 3, 9, 9)


@pytest.mark.parametrize("channel", ["email", "letter"])
def test_no_send_after_for_email_and_letter(kit, channel):
    d = kit.decide("marketing", person(preferred_channels={"marketing": channel}), at("FI", 2026, 3, 7, 23))
    assert (d.channel, d.send_after) == (channel, None)


# -- SMS marketing quiet hours ------------------------------------------------------------


@pytest.mark.parametrize(
    ("clock", "send_after"),
    [
        ((22, 30), (2026, 3, 5, 8, 0)),
        ((21, 0), (2026, 3, 5, 8, 0)),
        ((0, 15), (2026, 3, 4, 8, 0)),
        ((7, 59), (2026, 3, 4, 8, 0)),
    ],
)
def test_sms_marketing_at_night_waits_until_08_local(kit, clock, send_after):
    d = kit.decide("marketing", person(**SMS), at("FI", 2026, 3, 4, *clock))
    assert (d.channel, d.reasons, d.send_after) == ("sms", [], at("FI", *send_after))


@pytest.mark.parametrize("clock", [(8, 0), (12, 0), (20, 59)])
def test_sms_marketing_in_the_day_goes_at_once(kit, clock):
    d = kit.decide("marketing", person(**SMS), at("FI", 2026, 3, 4, *clock))
    assert (d.channel, d.send_after) == ("sms", None)


def test_sms_quiet_hours_are_local_to_the_recipient(kit):
    """21:30 UTC is 22:30 in Stockholm (and 23:30 in Helsinki)."""
    d = kit.decide("marketing", person("SE", **SMS), datetime(2026, 3, 4, 21, 30, tzinfo=UTC))
    assert d.send_after == at("SE", 2026, 3, 5, 8)
    early = kit.decide("marketing", person("SE", **SMS), datetime(2026, 3, 4, 19, 30, tzinfo=UTC))
    assert early.send_after is None  # 20:30 in Stockholm


def test_renewal_of_another_product_by_sms_is_held_like_marketing(kit):
    d = kit.decide("renewal_offer", person(**SMS), at("FI", 2026, 3, 4, 22, 30), data={"current_product": "Spot"})
    assert (d.category, d.channel, d.send_after) == ("marketing", "sms", at("FI", 2026, 3, 5, 8))


def test_email_marketing_at_night_is_not_held(kit):
    d = kit.decide("marketing", person(), at("FI", 2026, 3, 4, 23, 30))
    assert (d.channel, d.send_after) == ("email", None)
