"""address_suppressed (SPEC §4): a bounced, invalid or complaining address is not used again.

A statutory message moves on to the next channel with a usable address (email → letter);
anything else is suppressed rather than moved to a channel the person did not choose.
"""

from __future__ import annotations

from policykit import at, consent, person

NOW = at("FI", 2026, 3, 4, 12)


def test_a_statutory_notice_skips_a_suppressed_email_and_goes_by_letter(kit):
    clean = kit.decide("price_change", person(), NOW)
    listed = kit.decide("price_change", person(), NOW, suppressed={"email"})
    assert (clean.channel, clean.allowed) == ("email", True)
    assert (listed.channel, listed.allowed, listed.reasons) == ("letter", True, [])


def test_a_statutory_notice_with_every_address_suppressed_has_no_address(kit):
    nobody = person(address=None)
    d = kit.decide("price_change", nobody, NOW, suppressed={"email"})
    assert (d.allowed, d.reasons) == (False, ["no_address"])
    assert "email suppressed" in d.notes["no_address"]


def test_a_newsletter_to_a_suppressed_address_is_suppressed_not_moved(kit):
    subscriber = person(newsletter=True)
    assert kit.decide("newsletter", subscriber, NOW).allowed
    d = kit.decide("newsletter", subscriber, NOW, suppressed={"email"})
    assert (d.allowed, d.channel, d.reasons) == (False, "email", ["address_suppressed"])


def test_marketing_is_suppressed_on_the_suppressed_channel_only(kit):
    granted = [consent(channel, True, "2026-01-01") for channel in ("email", "sms")]
    fan = person(consents=granted, preferred_channels={"marketing": "email"})
    d = kit.decide("marketing", fan, NOW, suppressed={"email"})
    assert (d.channel, d.allowed, d.reasons) == ("email", False, ["address_suppressed"])
    other = kit.decide("marketing", fan, NOW, suppressed={"sms"})
    assert (other.channel, other.allowed) == ("email", True)
