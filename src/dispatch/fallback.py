"""What a worker needs from the dispatcher when a delivery does not simply succeed.

- the unsubscribe link of a message (channels put it in headers);
- an opt-out reported by the provider (Twilio 21610) goes into the consent ledger;
- a statutory message that failed for good is sent again by letter (SPEC §2: the
  customer is always reached), rendered from the inputs stored with it.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ulid import ULID

from .delivery import DeliveryHooks
from .errors import RecipientOptedOut
from .messages import validate_data
from .policy.engine import choose_language
from .store import now_utc

if TYPE_CHECKING:
    from .dispatcher import Dispatcher

logger = logging.getLogger("dispatch")


class WorkerCallbacks:
    """The dispatcher's side of :class:`~dispatch.delivery.DeliveryHooks`."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.d = dispatcher

    def hooks(self) -> DeliveryHooks:
        return DeliveryHooks(fallback=self.fallback, opted_out=self.opted_out, unsubscribe_url=self.unsubscribe_url)

    def unsubscribe_url(self, row: dict[str, Any]) -> str | None:
        if row["category"] == "marketing" or self.d.types.get(row["message_type"]).unsubscribe:
            return self.d.links.unsubscribe_url(row["id"])
        return None

    def opted_out(self, row: dict[str, Any], error: RecipientOptedOut) -> None:
        self.d.consents.record(
            row["recipient_id"],
            "marketing",
            False,
            channel=row["channel"],
            source="provider",
            evidence=f"message {row['id']}: {error.code or error}",
        )

    def fallback(self, row: dict[str, Any], reason: str) -> str | None:
        """Send a statutory message again by letter after a permanent failure; the new id, or None."""
        d = self.d
        if row["channel"] == "letter" or "letter" not in d.channels:
            return None
        inputs = (row.get("content") or {}).get("inputs") or {}
        person = d.parse_recipient(inputs.get("recipient") or {})
        mtype = d.types.get(row["message_type"])
        if "letter" not in mtype.channels or d.channels["letter"].address(person) is None:
            logger.error(
                "statutory message %s failed and recipient %s has no postal address for a letter",
                row["id"],
                row["recipient_id"],
            )
            return None
        data = inputs.get("data")
        if data is None and row.get("campaign_id"):
            data = (d.store.campaign(row["campaign_id"]) or {}).get("data")
        values = validate_data(mtype, data)
        now = now_utc()
        base = d._decide(mtype, person, values, now, None)
        language = row["language"]
        if not d._has_parts(mtype.name, "letter", language):
            language = choose_language(person, mtype, "statutory", "letter", d.chains, d._has_parts)
        decision = replace(
            base,
            allowed=True,
            reasons=[],
            channel="letter",
            language=language,
            send_after=None,
            notes={**base.notes, "fallback": f"{row['channel']} failed for good: {reason}"},
        )
        message_id = str(ULID())
        new_row = d._row(mtype, person, values, decision, message_id, now, None, row.get("campaign_id"))
        new_row["fallback_of"] = row["id"]
        d.store.insert_message(new_row, d._variants.variants)
        d._enqueue([new_row], now)
        return message_id
