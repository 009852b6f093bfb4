"""A scheduled campaign's state machine (dispatch.campaign_states): the table, and the shown state."""

from __future__ import annotations

import pytest

from dispatch.campaign_states import (
    CampaignState,
    CampaignStatus,
    campaign_sources,
    campaign_state,
    check_campaign,
)
from dispatch.lifecycle import IllegalTransition
from dispatch.scheduled import STATES


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (None, CampaignStatus.SCHEDULED),
        (CampaignStatus.SCHEDULED, CampaignStatus.RELEASING),
        (CampaignStatus.SCHEDULED, CampaignStatus.CANCELLED),
        (CampaignStatus.RELEASING, CampaignStatus.RELEASING),  # a stale claim taken over
        (CampaignStatus.RELEASING, CampaignStatus.RELEASED),
        (CampaignStatus.RELEASING, CampaignStatus.FAILED),
    ],
)
def test_allowed_changes(source, target):
    check_campaign(source, target)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (None, CampaignStatus.RELEASING),
        (CampaignStatus.RELEASING, CampaignStatus.CANCELLED),  # too late to cancel
        (CampaignStatus.RELEASED, CampaignStatus.RELEASING),  # released once only
        (CampaignStatus.CANCELLED, CampaignStatus.RELEASING),
        (CampaignStatus.FAILED, CampaignStatus.SCHEDULED),
    ],
)
def test_other_changes_are_illegal(source, target):
    with pytest.raises(IllegalTransition):
        check_campaign(source, target)


def test_sources_for_compare_and_set():
    assert campaign_sources(CampaignStatus.CANCELLED) == {CampaignStatus.SCHEDULED}
    assert campaign_sources(CampaignStatus.RELEASING) == {CampaignStatus.SCHEDULED, CampaignStatus.RELEASING}


def test_shown_states_keep_their_words():
    assert STATES == ("scheduled", "running", "done", "cancelled", "failed")


def _never():
    raise AssertionError("the messages were read although the stored status decides")


@pytest.mark.parametrize(
    ("status", "released", "counts", "shown"),
    [
        ("scheduled", False, _never, CampaignState.SCHEDULED),
        ("cancelled", False, _never, CampaignState.CANCELLED),
        ("failed", True, _never, CampaignState.FAILED),
        ("releasing", True, _never, CampaignState.RUNNING),
        (None, False, _never, CampaignState.RUNNING),  # a campaign sent at once, before its stats
        ("released", True, lambda: {"queued": 1}, CampaignState.RUNNING),
        ("released", True, lambda: {"sending": 2, "sent": 5}, CampaignState.RUNNING),
        ("released", True, lambda: {"sent": 5, "suppressed": 1}, CampaignState.DONE),
        (None, True, lambda: {}, CampaignState.DONE),
    ],
)
def test_shown_state(status, released, counts, shown):
    assert campaign_state(status, released, counts) == shown
