"""What the policy engine knows beyond the recipient mapping.

The caller (the :class:`~dispatch.Dispatcher`, or a test) reads these from the
store — past marketing contacts, the consent ledger, register matches — and hands
them in, so that :func:`dispatch.policy.decide` stays a pure function.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import attrgetter
from types import MappingProxyType

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


def register_is_fresh(as_of: datetime | None, now: datetime, refresh_days: int) -> bool:
    """Is a register copy produced at ``as_of`` recent enough to rely on at ``now``?

    Never loaded (``None``) is not fresh; exactly ``refresh_days`` old still is.
    """
    return as_of is not None and now - as_of <= timedelta(days=refresh_days)


_NOTHING_LOADED: Mapping[str, datetime] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Facts:
    """History, ledger entries and register matches for one recipient.

    ``registers_as_of`` maps each *loaded* register's name to the moment its current
    copy was produced (the file date). A register missing from it has never been
    loaded: the engine then fails closed (``register_unavailable``), so a caller that
    knows nothing of registers must not pretend otherwise. ``suppressed`` names the
    channels whose address is on the suppression list.
    """

    history: tuple[Contact, ...] = ()
    ledger: tuple[Consent, ...] = ()
    listed_on: frozenset[str] = frozenset()
    registers_as_of: Mapping[str, datetime] = field(default_factory=lambda: _NOTHING_LOADED)
    #: Channels whose address of this recipient is on the suppression list (bounced, invalid, complained).
    suppressed: frozenset[str] = frozenset()


NO_FACTS = Facts()
_AT = attrgetter("at")


class ConsentView:
    """The recipient's consents merged with the ledger; the newest entry wins.

    With ``now``, a consent (``granted=True``) dated after it does not count yet; a
    withdrawal counts whatever its date (failing closed on a clock that runs ahead).
    """

    __slots__ = ("_entries",)

    def __init__(self, *sources: Iterable[Consent], now: datetime | None = None) -> None:
        entries = [c for source in sources for c in source if now is None or not c.granted or c.at <= now]
        # Stable sort: equal timestamps keep source order (the ledger comes last and wins).
        entries.sort(key=_AT)
        self._entries = entries

    def newest(self, purpose: str) -> Consent | None:
        """The newest entry for ``purpose`` on any channel."""
        for entry in reversed(self._entries):
            if entry.purpose == purpose:
                return entry
        return None

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
