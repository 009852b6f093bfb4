"""The consent ledger: an append-only record of every consent, withdrawal and objection.

Who (recipient id), what (purpose), where (channel or ``all``), when, how (source:
web form, customer service, unsubscribe link, SMS STOP, import, provider) and the
wording version shown. Nothing is updated or deleted here; the policy engine
merges these entries with the recipient mapping's and the newest wins.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from datetime import datetime
from typing import Any

from .clock import now_utc
from .errors import InputError
from .events import Event
from .models import ALL_CHANNELS, Consent
from .recipients import parse_moment
from .store import Store

SOURCES = (
    "web_form",
    "customer_service",
    "unsubscribe_link",
    "preference_centre",
    "sms_stop",
    "sms_start",
    "complaint",
    "import",
    "provider",
)
#: ``notice_channel`` is not a consent but the customer's choice of channel for price and terms
#: notices (SPEC §11): ``granted`` is true and ``channel`` names the channel chosen.
#: ``paper_letters``: the customer wants letters on paper, not in a digital mailbox (SPEC §6).
PURPOSES = ("marketing", "newsletter", "survey", "notice_channel", "paper_letters")


class ConsentLedger:
    """Record and read consents (``Dispatcher.consents``)."""

    def __init__(
        self,
        store: Store,
        channels: Collection[str],
        purposes: Collection[str] = PURPOSES,
        *,
        on_change: Callable[[Iterable[Event]], None] | None = None,
    ) -> None:
        self.store = store
        self.channels = set(channels)
        self.purposes = set(purposes)
        self._on_change = on_change

    def record(
        self,
        recipient_id: str,
        purpose: str,
        granted: bool,
        *,
        channel: str = ALL_CHANNELS,
        at: datetime | str | None = None,
        source: str = "customer_service",
        wording_version: str | None = None,
        evidence: str | None = None,
    ) -> dict[str, Any]:
        """Append one entry; every argument is checked and a bad one named."""
        problems = []
        if not recipient_id or not str(recipient_id).strip():
            problems.append("recipient_id is missing")
        if purpose not in self.purposes:
            problems.append(f"purpose {purpose!r} is not one of {', '.join(sorted(self.purposes))}")
        if channel != ALL_CHANNELS and channel not in self.channels:
            problems.append(f"channel {channel!r} is not one of all, {', '.join(sorted(self.channels))}")
        if not isinstance(granted, bool):
            problems.append("granted must be true or false")
        if source not in SOURCES:
            problems.append(f"source {source!r} is not one of {', '.join(SOURCES)}")
        moment = now_utc()
        if at is not None:
            try:
                moment = parse_moment(at)
            except (ValueError, TypeError):
                problems.append(f"at {at!r} is not a date or time")
        if problems:
            raise InputError("consent not recorded:", problems)
        row = {
            "recipient_id": str(recipient_id).strip(),
            "purpose": purpose,
            "channel": channel,
            "granted": granted,
            "at": moment,
            "source": source,
            "wording_version": wording_version,
            "evidence": evidence,
            "recorded_at": now_utc(),
        }
        self.store.add_consent(row)
        if self._on_change is not None:
            self._on_change(
                [
                    Event(
                        "consent.changed",
                        row["recorded_at"],
                        {
                            "recipient_id": row["recipient_id"],
                            "purpose": purpose,
                            "channel": channel,
                            "granted": granted,
                            "source": source,
                            "wording_version": wording_version,
                        },
                    )
                ]
            )
        return row

    def history(self, recipient_id: str) -> list[dict[str, Any]]:
        """Every entry for a recipient, oldest first."""
        return self.store.consent_history(recipient_id)

    def for_recipients(self, recipient_ids: Iterable[str]) -> dict[str, tuple[Consent, ...]]:
        """Ledger entries as :class:`Consent` values, per recipient (for the policy engine)."""
        out: dict[str, list[Consent]] = {}
        for rid, purpose, channel, granted, at, source, wording in self.store.consent_entries(recipient_ids):
            out.setdefault(rid, []).append(Consent(purpose, channel, granted, at, source, wording))
        return {rid: tuple(entries) for rid, entries in out.items()}
