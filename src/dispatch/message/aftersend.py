"""After the send (SPEC §10): what providers report moves messages, addresses and consents on.

:class:`AfterSend` takes the normalised :class:`~dispatch.feedback.ProviderEvent` of any
channel plugin (a DSN, an ARF complaint, a Twilio callback, an inbound STOP) and, in
one place:

- moves the message through its lifecycle (``sent`` → ``delivered`` / ``bounced`` /
  ``complained``; a provider-side opt-out after the send → ``failed``);
- keeps the suppression list: a hard bounce, an invalid number or a complaint lists
  the address at once; soft bounces are counted and list it after
  ``[policy] soft_bounce_limit`` in a row; a confirmed delivery resets the count;
- writes the consent ledger: a complaint withdraws email marketing, STOP withdraws SMS
  marketing, START re-grants it — only for a customer whose SMS marketing was last
  withdrawn by a STOP, never over an objection, an unsubscribe, a complaint or a
  preference-centre withdrawal (GDPR Art 21(3): an objection is honoured until the
  person lifts it; a text from a number another customer shares is not that);
- falls back: a statutory message that bounced goes again on its type's next channel.

A report acts only on the message it is matched to, on that message's channel and
address: an email report (DSN, ARF) naming an SMS's id is refused, and the address a
report names is never used when a message is matched (it is whatever the sender wrote).

Every report may come twice (a mail server retries after a 451, Twilio repeats a
callback): each step is idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..clock import now_utc
from ..errors import AddressRejected, RecipientOptedOut, ReportRejected
from ..feedback import FeedbackKind, ProviderEvent
from ..lifecycle import Lifecycle, Status
from ..store import Claimed, Store
from ..store.suppressions import BOUNCE_CAUSES

logger = logging.getLogger("dispatch.aftersend")

_TARGETS = {
    FeedbackKind.DELIVERED: Status.DELIVERED,
    FeedbackKind.BOUNCED: Status.BOUNCED,
    FeedbackKind.COMPLAINED: Status.COMPLAINED,
}
_CONSENT_SOURCES = {"sms_inbound": "sms_stop", "arf": "complaint"}
#: The ledger source of an opt-in by the provider's channel (SMS START).
_OPT_IN_SOURCE = "sms_start"


class AfterSend:
    """Applies provider feedback (see the module docstring)."""

    def __init__(
        self,
        store: Callable[[], Store],
        consents: Callable[[], Any],
        lifecycle: Lifecycle,
        fallback: Callable[[Any, str], str | None],
        *,
        soft_bounce_limit: int = 3,
    ) -> None:
        self._store = store
        self._consents = consents
        self.lifecycle = lifecycle
        self.fallback = fallback
        self.soft_bounce_limit = soft_bounce_limit

    def handle(self, event: ProviderEvent) -> bool:
        """Apply ``event``; False when it matched no message and no recipient (kept aside by the caller)."""
        store = self._store()
        message = None
        if event.message_id:
            message = store.message(event.message_id, content=False)
        elif event.provider_id:
            message = store.message_by_provider_id(event.provider_id)
        if message is not None and message.get("channel") != event.channel:
            logger.warning(
                "%s report (%s) names message %s, which went by %s: not acted on",
                event.channel,
                event.source or "provider",
                message["id"],
                message.get("channel"),
            )
            raise ReportRejected(
                f"a {event.channel} report for message {message['id']}, which was sent by {message.get('channel')}"
            )
        if message is not None:
            status = str(event.detail.get("status") or event.kind)
            store.record_provider_status(message["id"], status, event.code, event.occurred_at)
        address = self._address(event, message)
        matched = message is not None
        if event.kind in (FeedbackKind.OPTED_OUT, FeedbackKind.OPTED_IN, FeedbackKind.COMPLAINED):
            matched = self._consent(store, event, message) or matched
        if message is None:
            if not matched:
                logger.info("%s report from %s matched no message", event.kind, event.source or event.channel)
            return matched
        if event.kind == FeedbackKind.DELIVERED and address:
            store.delivered_to(event.channel, address)
        elif event.kind == FeedbackKind.COMPLAINED and address:
            store.suppress(event.channel, address, "complaint", event.occurred_at, message_id=message["id"])
        elif event.kind in (FeedbackKind.BOUNCED, FeedbackKind.SOFT_BOUNCED) and address:
            self._bounce(store, event, message["id"], address)
        target = _TARGETS.get(event.kind)
        if event.kind == FeedbackKind.OPTED_OUT and event.permanent:
            target = Status.FAILED  # the provider refused the send: the person had opted out with it
        if target is None:
            return True
        cause = f"{event.source or 'provider'}: {event.kind}" + (f" {event.code}" if event.code else "")
        moved = self.lifecycle.move(
            store,
            message["id"],
            target,
            event.occurred_at,
            cause,
            detail={"code": event.code} if event.code else None,
            error=cause if target in (Status.BOUNCED, Status.FAILED) else None,
        )
        if moved is not None and target in (Status.BOUNCED, Status.FAILED) and message["category"] == "statutory":
            self.fallback(store.message(message["id"]), cause)
        return True

    def rejected_at_send(self, message: Claimed, error: AddressRejected) -> None:
        """The provider refused the address while we sent (SMTP 550 5.1.1, Twilio 21211): list it."""
        cause = "hard_bounce" if message.channel == "email" else "invalid_number"
        self._store().suppress(
            message.channel, message.address, cause, now_utc(), message_id=message.id, code=error.code
        )

    def opted_out_at_send(self, message: Claimed, error: RecipientOptedOut) -> None:
        """The provider refused the send because the person opted out with it (Twilio 21610)."""
        self._consents().record(
            message.recipient_id,
            "marketing",
            False,
            channel=message.channel,
            source="provider",
            evidence=f"message {message.id}: {error.code or 'opted out'}",
        )

    # -- steps -----------------------------------------------------------------------------

    @staticmethod
    def _address(event: ProviderEvent, message: dict[str, Any] | None) -> Any | None:
        """The address a report acts on: the one the matched message was sent to, never one the report names.

        Without a matched message, the address the provider vouches for (the number an SMS came from).
        """
        if message is not None:
            address = message.get("address")
            return address if isinstance(address, str | dict) else None  # a letter's address is a mapping
        return event.address

    def _bounce(self, store: Store, event: ProviderEvent, message_id: str, address: Any) -> None:
        if event.kind == FeedbackKind.BOUNCED and event.permanent:
            cause = BOUNCE_CAUSES.get(event.channel, "invalid_number")
            store.suppress(event.channel, address, cause, event.occurred_at, message_id=message_id, code=event.code)
            return
        count = store.soft_bounce(event.channel, address, event.occurred_at)
        if count >= self.soft_bounce_limit:
            store.suppress(
                event.channel, address, "soft_bounces", event.occurred_at, message_id=message_id, code=event.code
            )
            logger.info("message %s: %d soft bounces in a row; address suppressed", message_id, count)

    def _consent(self, store: Store, event: ProviderEvent, message: dict[str, Any] | None) -> bool:
        if message is not None:
            recipients = [message["recipient_id"]]
        elif event.address:
            recipients = store.recipients_by_address(event.channel, event.address)
        else:
            recipients = []
        ledger = self._consents()
        for recipient_id in recipients:
            opt_in = event.kind == FeedbackKind.OPTED_IN
            if opt_in and not self._stop_to_undo(ledger, recipient_id, event.channel):
                logger.info("%s opt-in for recipient %s: no STOP to undo, nothing changed", event.channel, recipient_id)
                continue
            ledger.record(
                recipient_id,
                "marketing",
                opt_in,
                channel=event.channel,
                source=_OPT_IN_SOURCE if opt_in else _CONSENT_SOURCES.get(event.source, "provider"),
                evidence=f"{event.source} {event.code or ''} {event.message_id or ''}".strip()[:200],
            )
        return bool(recipients)

    @staticmethod
    def _stop_to_undo(ledger: Any, recipient_id: str, channel: str) -> bool:
        """True when the customer's marketing on ``channel`` was last withdrawn by a STOP (and nothing since).

        START gives back what that STOP took: the state before it was a consent, or the soft
        opt-in of an active customer (no entry). A STOP on top of an earlier withdrawal took
        nothing; any other newer withdrawal (all channels or this one) stands.
        """
        entries = [
            e for e in ledger.history(recipient_id) if e["purpose"] == "marketing" and e["channel"] in (channel, "all")
        ]
        if not entries:
            return False
        last = entries[-1]
        if last["granted"] or last["source"] != "sms_stop" or last["channel"] != channel:
            return False
        before = entries[-2] if len(entries) > 1 else None
        return before is None or bool(before["granted"])
