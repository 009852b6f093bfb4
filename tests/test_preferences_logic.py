"""What the preference page shows and which ledger entries a form makes, without HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dispatch.errors import InputError
from dispatch.models import Consent
from dispatch.recipients import parse_recipient
from dispatch.samples import sample_recipient
from dispatch.web.preferences import (
    Change,
    Masked,
    changes_from_form,
    current_preferences,
    mask_email,
    mask_phone,
    masked_addresses,
    opt_out_summary,
    stop_all_marketing,
)

NOW = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)
ORDER = ("email", "letter", "sms")


def view(person=None, ledger=(), usable=("email", "sms", "letter"), **extra):
    person = parse_recipient({**sample_recipient("fi", "FI"), **extra}) if person is None else person
    return current_preferences(person, ledger, usable=lambda c: c in usable, notice_order=ORDER, now=NOW)


def at(days: int) -> datetime:
    return NOW - timedelta(days=days)


def test_what_is_shown_follows_the_policy_engines_reading():
    state = view(status="prospect", newsletter=False)
    assert state.notice_options == ("email", "letter", "sms") and state.notice_channel == "email"
    assert state.marketing == {"letter", "phone"}  # no consent for electronic marketing: opt-in needed
    assert (state.newsletter, state.survey, state.marketing_ban) == (False, True, False)
    assert view(status="active").marketing == {"email", "sms", "letter", "phone"}  # soft opt-in
    assert view(preferred_channels={"default": "letter"}).notice_channel == "letter"
    assert view(usable=("letter",)).notice_options == ("letter",)
    chosen = [Consent("notice_channel", "sms", True, at(2), "preference_centre")]
    assert view(ledger=chosen, preferred_channels={"price_change": "letter"}).notice_channel == "sms"
    assert view(ledger=chosen, usable=("email",)).notice_channel == "email"  # no phone now: the normal choice
    banned = [Consent("marketing", "all", False, at(3), "preference_centre")]
    assert view(ledger=banned).marketing_ban and not view(ledger=banned).marketing
    later = [*banned, Consent("marketing", "email", True, at(1), "preference_centre")]
    assert not view(ledger=later).marketing_ban and view(ledger=later).marketing == {"email"}
    future = [Consent("newsletter", "all", False, NOW + timedelta(days=1), "preference_centre")]
    assert view(ledger=future).newsletter  # not yet
    locked = view(marketing_blocked=True)
    assert locked.marketing_ban and locked.ban_locked


def test_each_change_is_one_entry_and_unchanged_boxes_make_none():
    before = view(status="active")
    same = {"notice_channel": ["email"], "marketing": ["email", "sms", "letter", "phone"]}
    assert changes_from_form(before, {**same, "newsletter": ["on"], "survey": ["on"]}) == []
    form = {"notice_channel": ["sms"], "marketing": ["sms", "letter", "phone"], "newsletter": ["on"]}
    assert changes_from_form(before, form) == [
        Change("notice_channel", "sms", True),
        Change("marketing", "email", False),
        Change("survey", "all", False),
    ]


def test_the_ban_wins_and_lifting_it_sets_every_channel():
    before = view(status="active")
    form = {"marketing": ["email"], "marketing_ban": ["on"], "newsletter": ["on"], "survey": ["on"]}
    assert changes_from_form(before, form) == [Change("marketing", "all", False)]
    banned = view(ledger=[Consent("marketing", "all", False, at(3), "preference_centre")])
    lifted = changes_from_form(banned, {"marketing": ["letter"], "newsletter": ["on"], "survey": ["on"]})
    assert lifted == [Change("marketing", c, c == "letter") for c in ("email", "sms", "letter", "phone")]
    locked = view(marketing_blocked=True)  # the disabled box is not sent: still no marketing entries
    assert changes_from_form(locked, {"marketing": ["email"], "newsletter": ["on"], "survey": ["on"]}) == []


@pytest.mark.parametrize(
    "form",
    [
        {"notice_channel": ["phone"]},
        {"notice_channel": ["email", "sms"]},
        {"marketing": ["fax"]},
        {"newsletter": ["yes"]},
        {"survey": ["on", "on"]},
    ],
)
def test_values_the_page_did_not_offer_are_refused(form):
    with pytest.raises(InputError):
        changes_from_form(view(usable=("email", "sms")), form)


def test_masks_show_little():
    assert mask_email("matti.meikalainen@example.fi") == "m•••@example.fi"
    assert mask_phone("+358401234567") == "+358 •••• ••67"
    assert mask_phone("+4791234567") == "+47 •••• ••67"
    assert mask_phone("nonsense") == "•••"


def test_masked_addresses_carry_what_a_screen_reader_says_instead_of_the_dots():
    person = parse_recipient({**sample_recipient("fi", "FI"), "phone": "+358401234543"})
    masked = masked_addresses(person)
    assert masked["email"] == Masked("m•••@example.fi", first="m", domain="example.fi")
    assert masked["sms"] == masked["phone"] == Masked("+358 •••• ••43", ending="43")
    assert "401234" not in repr(masked) and "matti" not in repr(masked)
    bare = parse_recipient({**sample_recipient("fi", "FI"), "phone": None, "email": None})
    assert masked_addresses(bare) == {}


def test_stop_all_marketing_is_a_ban_unless_one_is_in_force():
    assert stop_all_marketing(view(status="active")) == [Change("marketing", "all", False)]
    banned = view(ledger=[Consent("marketing", "all", False, at(3), "preference_centre")])
    assert stop_all_marketing(banned) == []
    assert stop_all_marketing(view(marketing_blocked=True)) == []


def test_the_opt_out_summary_says_what_stopped_and_what_goes_on():
    after = view(status="active", ledger=[Consent("marketing", "email", False, at(1), "unsubscribe_link")])
    summary = opt_out_summary(after, "marketing", "email")
    assert summary.stopped == ("marketing:email",)
    assert summary.continuing == ("marketing:sms", "marketing:letter", "marketing:phone", "newsletter", "survey")
    assert summary.notice_channel == "email"
    everything = opt_out_summary(view(ledger=[Consent("marketing", "all", False, at(1), "x")]), "marketing", "all")
    assert everything.stopped == ("marketing:email", "marketing:sms", "marketing:letter", "marketing:phone")
    assert everything.continuing == ("newsletter", "survey")
    quiet = view(newsletter=False, ledger=[Consent("survey", "all", False, at(1), "unsubscribe_link")])
    survey = opt_out_summary(quiet, "survey", "all", marketing_channels=("email",))
    assert survey.stopped == ("survey",) and "survey" not in survey.continuing and "newsletter" not in survey.continuing
