"""The SMS channel: JSON lines in the outbox, or Twilio's Messages API when configured.

Each message's segment count (GSM-7 with its extension table, or UCS-2) is stored
when it is queued and returned with the delivery result. A text over its type's
``max_segments`` is *not* refused at send time: ``dispatch templates check``
reports it to translators before anything is sent, and refusing at send time
would turn a price notice that grew one segment (a long name, a ``€``) into a
failed delivery — and for a statutory message a letter. It goes out, the result
says ``over_limit``, and a warning is logged. Twilio itself refuses bodies over
1,600 characters (error 21617), which maps to a permanent failure.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dispatch.channels import Channel
from dispatch.clock import now_utc
from dispatch.errors import ConfigError
from dispatch.messages import MessageType
from dispatch.models import DeliveryResult, OutgoingMessage
from dispatch.segments import count_segments, non_gsm_characters

logger = logging.getLogger("dispatch.sms")


@dataclass
class SmsSettings:
    """``[channels.sms]``: no ``account_sid`` means JSON lines in the outbox."""

    account_sid: str | None = None
    #: Or TWILIO_AUTH_TOKEN in the environment.
    auth_token: str | None = None
    #: Sender number (E.164) or alphanumeric id; or use messaging_service_sid.
    sender: str | None = None
    #: The sender per recipient country, where it differs ({FI = "PohjolanEn", SE = "+46701234567"}).
    #: Each is checked against the country's rules (dispatch_sms.senders: Traficom's for Finland).
    senders: dict[str, str] = field(default_factory=dict)
    messaging_service_sid: str | None = None
    status_callback: str | None = None
    #: A local Twilio-compatible API (tests, Prism): e.g. http://127.0.0.1:4010
    base_url: str | None = None
    timeout: float = 15.0
    #: Most segments a message of each type may take: `templates check` reports more; at send it is only flagged.
    max_segments: dict[str, int] = field(default_factory=dict)
    outbox: str | None = None


class SmsChannel(Channel):
    """SMS (SPEC §6): E.164 numbers, segment count stored with each message."""

    name = "sms"
    parts: ClassVar[dict[str, str]] = {"text": "sms.txt"}
    settings_class = SmsSettings
    address_kind = "mobile"

    def __init__(self, settings: SmsSettings, context) -> None:
        super().__init__(settings, context)
        self.outbox = context.config.path(settings.outbox) if settings.outbox else context.outbox
        self.auth_token = os.environ.get("TWILIO_AUTH_TOKEN") or settings.auth_token
        self._lock = threading.Lock()
        #: The Twilio client on the running event loop (:class:`~dispatch_sms.twilio_send.TwilioSender`).
        self.twilio: Any = None
        if settings.account_sid and not (settings.sender or settings.messaging_service_sid):
            raise ConfigError("channels.sms needs sender (a number or alphanumeric id) or messaging_service_sid")
        self._check_senders(context.config)

    def _check_senders(self, config) -> None:
        """Every configured sender must suit the countries it sends to (see dispatch_sms.senders)."""
        from .senders import sender_problems

        countries = list(config.policy.countries)
        problems = []
        for country, value in self.settings.senders.items():
            if country not in countries:
                problems.append(f"channels.sms.senders.{country}: unknown country (known: {', '.join(countries)})")
                continue
            problems += [f"channels.sms.senders.{country}: {p}" for p in sender_problems(value, country)]
        if self.settings.sender:
            for country in countries:
                if country not in self.settings.senders:
                    problems += [
                        f"channels.sms.sender (for {country}): {p}"
                        for p in sender_problems(self.settings.sender, country)
                    ]
        if problems:
            raise ConfigError("invalid SMS sender:", problems)

    def sender_for(self, country: str) -> str | None:
        """The sender id or number for a message to ``country``."""
        return self.settings.senders.get(country) or self.settings.sender

    @property
    def embedded(self) -> bool:
        return not self.settings.account_sid

    def max_segments(self, message_type: MessageType) -> int:
        return self.settings.max_segments.get(message_type.name, message_type.sms_max_segments)

    def prepare(self, message_type: MessageType, parts: Mapping[str, str]) -> dict[str, Any]:
        """The segment count, stored with the message, and the type's limit (checked at delivery)."""
        return {**count_segments(parts.get("text", "")).as_dict(), "max_segments": self.max_segments(message_type)}

    def check_rendered(self, message_type: MessageType, parts: Mapping[str, str]) -> list[str]:
        count = count_segments(parts.get("text", ""))
        limit = self.max_segments(message_type)
        problems = []
        if count.segments > limit:
            problems.append(f"{count.segments} segments ({count.encoding}, {count.units} units); at most {limit}")
            if count.encoding == "UCS-2":
                chars = "".join(non_gsm_characters(parts.get("text", "")))
                problems.append(f"UCS-2 because of {chars!r}; GSM-7 would fit more")
        return problems

    async def deliver(self, message: OutgoingMessage) -> DeliveryResult:
        text = message.parts.get("text", "")
        count = count_segments(text)
        if self.embedded:
            result = self._write_line(message, text, count)
        else:
            from .twilio_send import send_with_twilio

            result = await send_with_twilio(self, message, text, count)
        limit = message.meta.get("max_segments")
        if isinstance(limit, int) and count.segments > limit:
            logger.warning(
                "SMS %s (%s) took %d segments, more than the %d allowed for its type",
                message.id,
                message.message_type,
                count.segments,
                limit,
            )
            result.detail.update(over_limit=True, max_segments=limit)
        return result

    def twilio_sender(self) -> Any:
        """This channel's Twilio client on the running event loop: made on first use, and anew when the
        loop changed. The channel owns it (and closes it in :meth:`aclose`)."""
        from .twilio_send import TwilioSender

        sender = self.twilio
        if sender is None or sender.loop is not asyncio.get_running_loop():
            sender = self.twilio = TwilioSender(self)
        return sender

    async def aclose(self) -> None:
        sender, self.twilio = self.twilio, None
        if sender is not None:
            await sender.close()

    def _write_line(self, message: OutgoingMessage, text: str, count) -> DeliveryResult:
        record = {
            "id": message.id,
            "recipient_id": message.recipient_id,
            "to": message.address,
            "from": self.sender_for(message.country) or self.settings.messaging_service_sid,
            "type": message.message_type,
            "language": message.language,
            "body": text,
            **count.as_dict(),
            "queued_at": now_utc().isoformat(),
        }
        self.outbox.mkdir(parents=True, exist_ok=True)
        path = self.outbox / "messages.jsonl"
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock, path.open("a", encoding="utf-8") as handle:
            handle.write(line)
        return DeliveryResult(provider_id=f"{path.name}:{message.id}", detail=count.as_dict())
