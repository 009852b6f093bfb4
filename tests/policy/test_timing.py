"""send_after and calling_window: calling hours for phone tasks, no SMS at night (SPEC §4)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from policykit import TYPES, TZ, address_probe, all_parts, at, person

from dispatch.messages import validate_data
from dispatch.models import Receipt
from dispatch.policy import Facts, decide
from dispatch.recipients import parse_recipient
from dispatch.samples import sample_data

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


# -- no SMS at night, whatever the category (SPEC §4) ---------------------------------------

#: A type of each category sent by SMS; the renewal offers the customer's own product (service).
SMS_BY_CATEGORY = [
    ("marketing", {}),
    ("renewal_offer", {}),
    ("price_change", {"effective_on": "2027-03-01"}),
    ("terms_change", {"effective_on": "2027-03-01"}),
]


def sms(kit, type_name, now, data, country="FI"):
    recipient = person(country, preferred_channels={type_name: "sms"})
    d = kit.decide(type_name, recipient, now, data=data)
    assert (d.channel, d.reasons) == ("sms", [])
    return d


@pytest.mark.parametrize(("type_name", "data"), SMS_BY_CATEGORY)
def test_sms_of_every_category_goes_at_20_59_and_waits_from_21_00(kit, type_name, data):
    assert sms(kit, type_name, at("FI", 2026, 6, 3, 20, 59), data).send_after is None
    assert sms(kit, type_name, at("FI", 2026, 6, 3, 21, 0), data).send_after == at("FI", 2026, 6, 4, 8)


@pytest.mark.parametrize(("type_name", "data"), SMS_BY_CATEGORY)
def test_sms_of_every_category_waits_at_07_59_and_goes_at_08_00(kit, type_name, data):
    assert sms(kit, type_name, at("FI", 2026, 6, 3, 7, 59), data).send_after == at("FI", 2026, 6, 3, 8)
    assert sms(kit, type_name, at("FI", 2026, 6, 3, 8, 0), data).send_after is None


@pytest.mark.parametrize(("type_name", "data"), SMS_BY_CATEGORY)
def test_sms_night_across_the_spring_switch_to_summer_time(kit, type_name, data):
    """Clocks go forward in the night to Sunday 29 March 2026: 21:00 EET is 19:00 UTC, 08:00 EEST 05:00 UTC."""
    assert sms(kit, type_name, datetime(2026, 3, 28, 18, 59, tzinfo=UTC), data).send_after is None  # 20:59
    waits = sms(kit, type_name, datetime(2026, 3, 28, 19, 0, tzinfo=UTC), data).send_after  # 21:00
    assert waits == datetime(2026, 3, 29, 5, 0, tzinfo=UTC) == at("FI", 2026, 3, 29, 8)
    assert sms(kit, type_name, datetime(2026, 3, 29, 4, 59, tzinfo=UTC), data).send_after == waits  # 07:59
    assert sms(kit, type_name, datetime(2026, 3, 29, 5, 0, tzinfo=UTC), data).send_after is None  # 08:00


@pytest.mark.parametrize(("type_name", "data"), SMS_BY_CATEGORY)
def test_sms_night_across_the_autumn_switch_to_winter_time(kit, type_name, data, country="SE"):
    """Clocks go back in the night to Sunday 25 October 2026: 08:00 CET is 07:00 UTC."""
    assert sms(kit, type_name, datetime(2026, 10, 25, 6, 59, tzinfo=UTC), data, country).send_after == datetime(
        2026, 10, 25, 7, 0, tzinfo=UTC
    )
    assert sms(kit, type_name, datetime(2026, 10, 25, 7, 0, tzinfo=UTC), data, country).send_after is None
    evening = sms(kit, type_name, datetime(2026, 10, 24, 19, 0, tzinfo=UTC), data, country)  # 21:00 CEST
    assert evening.send_after == at("SE", 2026, 10, 25, 8) == datetime(2026, 10, 25, 7, 0, tzinfo=UTC)


# -- a statutory SMS goes at night when waiting would break its deadline --------------------


def test_price_change_sms_waits_for_morning_while_the_morning_still_keeps_the_lead_time(kit):
    """FI households: a month's notice. For 1 May, 1 April is the last day to send (see test_statutory)."""
    data = {"effective_on": "2026-05-01"}
    d = sms(kit, "price_change", at("FI", 2026, 3, 31, 22, 30), data)
    assert d.send_after == at("FI", 2026, 4, 1, 8)


def test_price_change_sms_on_the_last_evening_goes_at_once(kit):
    data = {"effective_on": "2026-05-01"}
    d = sms(kit, "price_change", at("FI", 2026, 4, 1, 22, 30), data)
    assert (d.allowed, d.send_after) == (True, None)


def test_price_change_sms_on_the_last_early_morning_still_waits_until_08(kit):
    data = {"effective_on": "2026-05-01"}
    assert sms(kit, "price_change", at("FI", 2026, 4, 1, 6, 0), data).send_after == at("FI", 2026, 4, 1, 8)


def test_a_statutory_sms_already_too_late_is_refused_not_rushed(kit):
    recipient = person(preferred_channels={"price_change": "sms"})
    d = kit.decide("price_change", recipient, at("FI", 2026, 4, 2, 22, 30), data={"effective_on": "2026-05-01"})
    assert d.reasons == ["notice_period"]


def _confirmation_by_sms(kit, now):
    """A plugin's confirmation type that may go by SMS: 7 working days after signing."""
    mtype = replace(TYPES["contract_confirmation"], channels=("sms", "email"), default_order=("sms", "email"))
    values = validate_data(mtype, {**sample_data("contract_confirmation", "FI"), "signed_on": "2026-04-01"})
    return decide(
        mtype,
        parse_recipient(person("FI")),
        values,
        now,
        settings=kit.settings,
        chains=kit.chains,
        address=address_probe,
        has_parts=all_parts,
        facts=Facts(),
    )


def test_a_statutory_sms_waits_when_the_morning_is_before_its_deadline(kit):
    """Signed 1 April 2026 in Finland: the deadline is the end of 14 April (Easter in between)."""
    d = _confirmation_by_sms(kit, at("FI", 2026, 4, 13, 21, 30))
    assert (d.channel, d.deadline, d.send_after) == (
        "sms",
        datetime(2026, 4, 14, 23, 59, 59, tzinfo=TZ["FI"]),
        at("FI", 2026, 4, 14, 8),
    )


def test_a_statutory_sms_goes_at_night_when_the_morning_is_past_its_deadline(kit):
    d = _confirmation_by_sms(kit, at("FI", 2026, 4, 14, 21, 30))
    assert (d.channel, d.allowed, d.send_after) == ("sms", True, None)


# -- phone tasks carry the calling window itself --------------------------------------------


def window(kit, now, country="NO"):
    d = kit.decide("renewal_offer", person(country, **PHONE), now)
    assert d.channel == "phone"
    return d


def test_a_call_asked_for_on_saturday_carries_mondays_window(kit):
    d = window(kit, at("NO", 2026, 3, 7, 10))
    assert d.calling_window == (at("NO", 2026, 3, 9, 9), at("NO", 2026, 3, 9, 21))
    assert d.send_after == d.calling_window[0]


def test_a_call_inside_the_window_carries_todays_whole_window(kit):
    d = window(kit, at("FI", 2026, 3, 4, 14, 27), "FI")
    assert d.calling_window == (at("FI", 2026, 3, 4, 9), at("FI", 2026, 3, 4, 20))
    assert d.send_after == at("FI", 2026, 3, 4, 14, 27)


@pytest.mark.parametrize(("country", "last_minute"), [("NO", (20, 59)), ("FI", (19, 59)), ("SE", (19, 59))])
def test_calling_window_on_both_sides_of_its_end(kit, country, last_minute):
    inside = window(kit, at(country, 2026, 3, 4, *last_minute), country)
    after = window(kit, at(country, 2026, 3, 4, last_minute[0] + 1, 0), country)
    assert inside.calling_window[0].date() == date(2026, 3, 4)
    assert after.calling_window[0] == at(country, 2026, 3, 5, 9)


def test_calling_window_across_the_switch_to_summer_time_is_in_local_hours(kit):
    """Saturday 28 March 2026 in UTC: Monday's 09–21 in Oslo is 07–19 UTC (CEST)."""
    d = window(kit, datetime(2026, 3, 28, 10, tzinfo=UTC))
    start, end = d.calling_window
    assert (start.astimezone(UTC), end.astimezone(UTC)) == (
        datetime(2026, 3, 30, 7, tzinfo=UTC),
        datetime(2026, 3, 30, 19, tzinfo=UTC),
    )
    autumn = window(kit, at("NO", 2026, 10, 23, 21, 30)).calling_window  # Friday evening; Monday is CET
    assert autumn[0].astimezone(UTC) == datetime(2026, 10, 26, 8, tzinfo=UTC)


def test_calling_window_skips_a_holiday(kit):
    d = window(kit, at("SE", 2026, 6, 19, 11), "SE")  # Midsummer Eve
    assert d.calling_window == (at("SE", 2026, 6, 22, 9), at("SE", 2026, 6, 22, 20))


def test_calling_window_is_in_the_decision_as_dict(kit):
    d = window(kit, at("NO", 2026, 3, 7, 10))
    assert d.as_dict()["calling_window"] == ["2026-03-09T09:00:00+01:00", "2026-03-09T21:00:00+01:00"]


@pytest.mark.parametrize("channel", ["email", "sms", "letter"])
def test_only_calls_carry_a_calling_window(kit, channel):
    d = kit.decide("marketing", person(preferred_channels={"marketing": channel}), at("FI", 2026, 3, 7, 23))
    assert (d.channel, d.calling_window, d.as_dict()["calling_window"]) == (channel, None, None)


def test_the_receipt_carries_the_calling_window(kit):
    d = window(kit, at("NO", 2026, 3, 7, 10))
    receipt = Receipt.from_decision(d, message_id="M-1", status="queued", queue="phone")
    assert receipt.calling_window == d.calling_window and receipt.decision == d
    assert receipt.as_dict()["calling_window"] == ["2026-03-09T09:00:00+01:00", "2026-03-09T21:00:00+01:00"]
