"""Sweden: a fixed-term customer must be told the term ends no earlier than 90 and no later than 60
days before it does (ellagen; Energimarknadsinspektionen). Enforced like the price-notice lead time."""

from __future__ import annotations

import pytest
from policykit import at, person

from dispatch.config import ConfigError, PolicyConfig
from dispatch.policy import PolicySettings

ENDS = "2026-06-30"  # 60 days before: 1 May; 90 days before: 1 April


@pytest.mark.parametrize("kind", ["household", "business"])
def test_a_swedish_renewal_by_email_must_arrive_60_to_90_days_before_the_end(kit, kind):
    recipient = person("SE", kind=kind)
    data = {"current_ends_on": ENDS, "respond_by": "2026-06-01"}
    for day, allowed in (((2026, 3, 31), False), ((2026, 4, 1), True), ((2026, 5, 1), True), ((2026, 5, 2), False)):
        d = kit.decide("renewal_offer", recipient, at("SE", *day, 12), data=data)
        assert d.allowed is allowed, day
        assert d.reasons == ([] if allowed else ["notice_period"]), day
    late = kit.decide("renewal_offer", recipient, at("SE", 2026, 5, 2, 12), data=data)
    assert "too soon" in late.notes["notice_period"] and "2026-05-01" in late.notes["notice_period"]
    early = kit.decide("renewal_offer", recipient, at("SE", 2026, 3, 31, 12), data=data)
    assert "too far off" in early.notes["notice_period"] and "2026-04-01" in early.notes["notice_period"]
    assert "earliest_effective_on" not in late.notes  # that note belongs to change notices


def test_a_letter_counts_its_delivery_days(kit):
    recipient = person("SE", email=None, preferred_channels={"renewal_offer": "letter"})
    data = {"current_ends_on": ENDS, "respond_by": "2026-06-01"}
    # Mon 27 April + 3 working days = Thu 30 April: arrives in time. Tue 28 April: arrives 4 May (1 May holiday).
    on_time = kit.decide("renewal_offer", recipient, at("SE", 2026, 4, 27, 12), data=data)
    too_late = kit.decide("renewal_offer", recipient, at("SE", 2026, 4, 28, 12), data=data)
    assert (on_time.channel, on_time.allowed) == ("letter", True), on_time.notes
    assert (too_late.channel, too_late.reasons) == ("letter", ["notice_period"])
    assert "by letter" in too_late.notes["notice_period"]


@pytest.mark.parametrize("country", ["FI", "NO"])
def test_finland_and_norway_set_no_such_window(kit, country):
    data = {"current_ends_on": ENDS, "respond_by": "2026-06-01"}
    for day in ((2026, 1, 5), (2026, 6, 15)):
        assert kit.decide("renewal_offer", person(country), at(country, *day, 12), data=data).allowed


def test_an_offer_of_another_product_is_held_to_the_same_window(kit):
    data = {"current_ends_on": ENDS, "respond_by": "2026-06-01", "current_product": "Spot"}
    d = kit.decide("renewal_offer", person("SE"), at("SE", 2026, 5, 20, 12), data=data)
    assert d.category == "marketing" and "notice_period" in d.reasons


def test_the_window_is_configurable_and_checked():
    config = PolicyConfig()
    config.countries["FI"].renewal_notice = ["P2M", "P1M"]
    assert PolicySettings.from_config(config).countries["FI"].renewal_notice == ((2, 0), (1, 0))
    config.countries["FI"].renewal_notice = ["P30D", "P60D"]
    with pytest.raises(ConfigError, match=r"policy\.countries\.FI\.renewal_notice"):
        PolicySettings.from_config(config)
    config.countries["FI"].renewal_notice = ["P90D"]
    with pytest.raises(ConfigError, match=r"renewal_notice must be \[earliest, latest\]"):
        PolicySettings.from_config(config)
