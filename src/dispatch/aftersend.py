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
  marketing, START grants it again;
- falls back: a statutory message that bounced goes again on its type's next channel.

Every report may come twice (a mail server retries after a 451, Twilio repeats a
callback): each step is idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .errors import AddressRejected
from .feedback import FeedbackKind, ProviderEvent
from .lifecycle import Lifecycle, Status
from .store import Claimed, Store, now_utc

logger = logging.getLogger("dispatch.aftersend")

_TARGETS = {
    FeedbackKind.DELIVERED: Status.DELIVERED,
    FeedbackKind.BOUNCED: Status.BOUNCED,
    FeedbackKind.COMPLAINED: Status.COMPLAINED,
}
_CONSENT_SOURCES = {"sms_inbound": "sms_stop", "arf": "complaint"}


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
        moved = store.transition(
            message["id"],
            target,
            event.occurred_at,
            cause,
            detail={"code": event.code} if event.code else None,
            error=cause if target in (Status.BOUNCED, Status.FAILED) else None,
        )
        if moved is not None:
            self.lifecycle.record([moved])
            if target in (Status.BOUNCED, Status.FAILED) and message["category"] == "statutory":
                self.fallback(store.message(message["id"]), cause)
        return True

    def rejected_at_send(self, message: Claimed, error: AddressRejected) -> None:
        """The provider refused the address while we sent (SMTP 550 5.1.1, Twilio 21211): list it."""
        cause = "hard_bounce" if message.channel == "email" else "invalid_number"
        self._store().suppress(
            message.channel, message.address, cause, now_utc(), message_id=message.id, code=error.code
        )

    # -- steps -----------------------------------------------------------------------------

    @staticmethod
    def _address(event: ProviderEvent, message: dict[str, Any] | None) -> str | None:
        """The address a report is about: the one we sent to (a report may name a forwarding target)."""
        if message is not None and message.get("channel") == event.channel and isinstance(message.get("address"), str):
            return message["address"]
        return event.address

    def _bounce(self, store: Store, event: ProviderEvent, message_id: str, address: str) -> None:
        if event.kind == FeedbackKind.BOUNCED and event.permanent:
            cause = "hard_bounce" if event.channel == "email" else "invalid_number"
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
        for recipient_id in recipients:
            self._consents().record(
                recipient_id,
                "marketing",
                event.kind == FeedbackKind.OPTED_IN,
                channel=event.channel,
                source=_CONSENT_SOURCES.get(event.source, "provider"),
                evidence=f"{event.source} {event.code or ''} {event.message_id or ''}".strip()[:200],
            )
        return bool(recipients)
