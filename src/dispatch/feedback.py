"""What providers tell dispatch after the send, in one normalised shape (SPEC §10).

Each channel plugin turns its provider's own reports — a DSN or ARF mail that came
back to the VERP Return-Path, a Twilio status callback, an inbound SMS "STOP" —
into :class:`ProviderEvent` values and hands them to
:meth:`dispatch.Dispatcher.handle_feedback`. The core never sees provider codes
or formats: it moves the message through its lifecycle, updates the suppression
list and the consent ledger, and emits events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class FeedbackKind(StrEnum):
    """What a provider reported."""

    #: The provider confirms the message reached the recipient's mailbox or handset.
    DELIVERED = "delivered"
    #: A permanent failure: unknown mailbox (5.x.x), invalid or unreachable number.
    BOUNCED = "bounced"
    #: A temporary failure reported after the send (4.x.x DSN, mailbox full); counted.
    SOFT_BOUNCED = "soft_bounced"
    #: The recipient reported the message as spam (ARF, RFC 5965).
    COMPLAINED = "complained"
    #: The recipient opted out through the provider (SMS STOP, Twilio 21610).
    OPTED_OUT = "opted_out"
    #: The recipient opted back in through the provider (SMS START).
    OPTED_IN = "opted_in"


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """One provider report, normalised.

    ``message_id`` is dispatch's message id when the provider's report could be
    matched to one (VERP address, provider id); ``address`` is the address the
    report concerns (an email address or E.164 number) and is used for the
    suppression list and to find recipients when no message is known (an inbound
    STOP). ``code`` is the status or error code as the provider gives it
    (``5.1.1``, ``30003``); ``detail`` holds non-personal diagnostics for the
    record. Logs show ids and codes only, never ``address``.
    """

    kind: FeedbackKind
    channel: str
    occurred_at: datetime
    message_id: str | None = None
    provider_id: str | None = None
    address: str | None = None
    code: str | None = None
    permanent: bool = False
    detail: dict[str, Any] = field(default_factory=dict)
    #: Where the report came from, e.g. ``dsn``, ``arf``, ``twilio_status``, ``sms_inbound``.
    source: str = ""


__all__ = ["FeedbackKind", "ProviderEvent"]
