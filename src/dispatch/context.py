"""The variables a template sees (the translators' contract, SPEC §5).

Every template gets:

``recipient``
    ``id``, ``name`` (from the address, may be None), ``country``, ``language``,
    ``kind``, ``status``, ``email``, ``phone``, ``address`` (mapping or None).
``message``
    ``id``, ``type``, ``category``, ``channel``, ``language``, ``locale``,
    ``country``, ``currency``, ``date`` (today in the recipient's time zone),
    ``unsubscribe_url`` (marketing, newsletters and surveys; None otherwise),
    ``send_after`` and ``deadline`` (datetimes or None).
``company``
    ``name``, ``email``, ``phone``, ``website``, ``address`` (list of lines),
    ``business_id``, ``service_hours`` — per-country values applied.
the data fields
    every field of the message data at top level (``effective_on``,
    ``price_elements``...), dates as ``date``, amounts as ``Decimal``, texts given
    per language already resolved to the message's language.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from .messages import MessageData, MessageType
from .models import Decision, Recipient

RESERVED = ("recipient", "message", "company")


def recipient_view(recipient: Recipient) -> dict[str, Any]:
    return {
        "id": recipient.id,
        "name": recipient.name,
        "country": recipient.country,
        "language": recipient.language,
        "kind": recipient.kind,
        "status": recipient.status,
        "email": recipient.email,
        "phone": recipient.phone,
        "address": recipient.address.as_dict() if recipient.address else None,
    }


def build_context(
    *,
    message_type: MessageType,
    decision: Decision,
    recipient: Recipient,
    data: MessageData,
    chain: tuple[str, ...],
    message_id: str,
    locale: str,
    currency: str,
    today: date,
    company: Mapping[str, Any],
    unsubscribe_url: str | None,
) -> dict[str, Any]:
    """The render context for one message."""
    context: dict[str, Any] = dict(data.localized(chain))
    for name in RESERVED:
        context.pop(name, None)
    context["recipient"] = recipient_view(recipient)
    context["message"] = {
        "id": message_id,
        "type": message_type.name,
        "category": decision.category,
        "channel": decision.channel,
        "language": decision.language,
        "locale": locale,
        "country": recipient.country,
        "currency": currency,
        "date": today,
        "unsubscribe_url": unsubscribe_url,
        "send_after": decision.send_after,
        "deadline": decision.deadline,
    }
    context["company"] = company
    return context


def needs_unsubscribe(message_type: MessageType, category: str) -> bool:
    """Marketing, newsletters and surveys carry an unsubscribe (objection) link."""
    return message_type.unsubscribe or category == "marketing"
