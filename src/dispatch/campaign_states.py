"""A scheduled campaign's life, written in one place like a message's (:mod:`dispatch.lifecycle`).

What is stored (``campaigns.status``; a campaign sent at once has none)::

    (new) ──► scheduled ──► releasing ──► released      (its batches recorded and queued)
                  │             │  ▲
                  │             │  └── releasing        (a stale claim taken over by another process)
                  ▼             └────► failed           (its type, data or templates no longer pass)
              cancelled

:data:`CAMPAIGN_TRANSITIONS` is the whole table; the store's compare-and-set updates take
their source states from it (:func:`campaign_sources`), and a change not in it raises
:class:`~dispatch.lifecycle.IllegalTransition`.

What an operator sees (:class:`CampaignState`, ``dispatch campaign list``) is derived from
the stored status and the campaign's messages: ``running`` while it is released or its
messages are still on their way, ``done`` after.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum

from .lifecycle import IllegalTransition, Status


class CampaignStatus(StrEnum):
    """What ``campaigns.status`` holds for a scheduled campaign."""

    SCHEDULED = "scheduled"
    RELEASING = "releasing"
    RELEASED = "released"
    CANCELLED = "cancelled"
    FAILED = "failed"


#: Every allowed change of a scheduled campaign's stored status (``None``: not stored yet).
CAMPAIGN_TRANSITIONS: Mapping[CampaignStatus | None, frozenset[CampaignStatus]] = {
    None: frozenset({CampaignStatus.SCHEDULED}),
    CampaignStatus.SCHEDULED: frozenset({CampaignStatus.RELEASING, CampaignStatus.CANCELLED}),
    # releasing → releasing: another process takes over a release whose claim went stale.
    CampaignStatus.RELEASING: frozenset({CampaignStatus.RELEASING, CampaignStatus.RELEASED, CampaignStatus.FAILED}),
    CampaignStatus.RELEASED: frozenset(),
    CampaignStatus.CANCELLED: frozenset(),
    CampaignStatus.FAILED: frozenset(),
}


def check_campaign(source: CampaignStatus | None, target: CampaignStatus) -> None:
    """Raise :class:`IllegalTransition` unless ``source`` → ``target`` is in :data:`CAMPAIGN_TRANSITIONS`."""
    if target not in CAMPAIGN_TRANSITIONS.get(source, frozenset()):
        raise IllegalTransition(f"a campaign cannot go from {source or 'new'} to {target}")


def campaign_sources(target: CampaignStatus) -> frozenset[CampaignStatus]:
    """The stored states a campaign may be in to move to ``target`` (for compare-and-set updates)."""
    return frozenset(s for s, targets in CAMPAIGN_TRANSITIONS.items() if s is not None and target in targets)


class CampaignState(StrEnum):
    """What ``dispatch campaign list`` shows for a campaign."""

    SCHEDULED = "scheduled"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


def campaign_state(status: str | None, released: bool, counts: Callable[[], Mapping[str, int]]) -> CampaignState:
    """The shown state of a campaign from its stored ``status``, whether its stats were written
    (``released``: every batch recorded) and its messages' ``status → count`` (read only if needed)."""
    if status in (CampaignStatus.SCHEDULED, CampaignStatus.CANCELLED, CampaignStatus.FAILED):
        return CampaignState(status)
    if status == CampaignStatus.RELEASING or not released:
        return CampaignState.RUNNING
    messages = counts()
    on_the_way = messages.get(Status.QUEUED, 0) + messages.get(Status.SENDING, 0)
    return CampaignState.RUNNING if on_the_way else CampaignState.DONE


__all__ = [
    "CAMPAIGN_TRANSITIONS",
    "CampaignState",
    "CampaignStatus",
    "campaign_sources",
    "campaign_state",
    "check_campaign",
]
