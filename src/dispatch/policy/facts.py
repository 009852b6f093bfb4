"""What the policy engine knows beyond the recipient mapping.

The caller (the :class:`~dispatch.Dispatcher`, or a test) reads these from the
store — past marketing contacts, the consent ledger, register matches — and hands
them in, so that :func:`dispatch.policy.decide` stays a pure function.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter

from ..models import ALL_CHANNELS, Consent


@dataclass(frozen=True, slots=True)
class Contact:
    """One earlier message that counts towards frequency caps."""

    at: datetime
    message_type: str
    channel: str
    category: str = "marketing"


@dataclass(frozen=True, slots=True)
class RegisterInfo:
    """What the engine needs to know of a do-not-contact register."""

    name: str
    country: str
    channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Facts:
    """History, ledger entries and register matches for one recipient."""

    history: tuple[Contact, ...] = ()
    ledger: tuple[Consent, ...] = ()
    listed_on: frozenset[str] = frozenset()


NO_FACTS = Facts()
_AT = attrgetter("at")


class ConsentView:
    """The recipient's consents merged with the ledger; the newest entry wins."""

    __slots__ = ("_entries",)

    def __init__(self, *sources: Iterable[Consent]) -> None:
        entries = [c for source in sources for c in source]
        # Stable sort: equal timestamps keep source order (the ledger comes last and wins).
        entries.sort(key=_AT)
        self._entries = entries

    def latest(self, purpose: str, channel: str) -> Consent | None:
        """The newest entry for ``purpose`` on ``channel`` (or on all channels)."""
        for entry in reversed(self._entries):
            if entry.purpose == purpose and (entry.channel == channel or entry.channel == ALL_CHANNELS):
                return entry
        return None

    def granted(self, purpose: str, channel: str) -> bool | None:
        """True/False from the newest entry, None when there is none."""
        entry = self.latest(purpose, channel)
        return None if entry is None else entry.granted

    def __bool__(self) -> bool:
        return bool(self._entries)
