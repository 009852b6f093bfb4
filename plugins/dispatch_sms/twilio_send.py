"""Twilio delivery: ``POST /2010-04-01/Accounts/{sid}/Messages.json`` with the official client.

The channel keeps one ``twilio.rest.Client`` on the delivery event loop, with
twilio's own asynchronous HTTP client (aiohttp, which twilio already depends on):
requests share a keep-alive connection pool and never block the loop, so no
thread is spent per message.

Twilio's answers map onto dispatch's errors:

- HTTP 429, 5xx, timeouts and connection errors → :class:`TransientDeliveryError`;
- 21610 (the recipient replied STOP) → :class:`RecipientOptedOut`: the core records
  the withdrawal in the consent ledger;
- 401/403/404 mean *our* account, token or URL is wrong: transient, so messages
  wait for the fix instead of being recorded as failed for every customer;
- 21211 (invalid number), 21614 (not a mobile) → :class:`AddressRejected`: the
  number goes on the suppression list;
- any other 4xx (21408 region not enabled, 21617 body too long, ...) →
  :class:`PermanentDeliveryError`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING, Any

from dispatch.errors import (
    AddressRejected,
    DeliveryError,
    PermanentDeliveryError,
    RecipientOptedOut,
    TransientDeliveryError,
)
from dispatch.models import DeliveryResult, OutgoingMessage
from dispatch.segments import SegmentCount

if TYPE_CHECKING:
    from .channel import SmsChannel

logger = logging.getLogger("dispatch.sms")

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
#: Twilio error codes that mean the recipient opted out (STOP, or blocked us).
OPTED_OUT_CODES = {21610}
#: Twilio error codes that mean the number itself cannot take SMS: invalid, not a mobile, unreachable.
ADDRESS_CODES = {21211, 21614, 30003, 30005, 30006}
#: HTTP statuses caused by our own configuration (credentials, account SID, base URL).
CONFIGURATION_STATUSES = {401, 403, 404}


class TwilioSender:
    """One Twilio client with an asynchronous HTTP session, bound to one event loop."""

    def __init__(self, channel: SmsChannel) -> None:
        from twilio.http.async_http_client import AsyncTwilioHttpClient
        from twilio.rest import Client

        settings = channel.settings
        self.loop = asyncio.get_running_loop()
        self.timeout = settings.timeout
        self.http = AsyncTwilioHttpClient(timeout=settings.timeout)
        self.client = Client(
            settings.account_sid, channel.auth_token, account_sid=settings.account_sid, http_client=self.http
        )
        if settings.base_url:
            self.client.api.base_url = settings.base_url.rstrip("/")
        self.messages = self.client.api.v2010.account.messages
        self.defaults: dict[str, Any] = {}
        if settings.messaging_service_sid:
            self.defaults["messaging_service_sid"] = settings.messaging_service_sid
        if settings.sender:
            self.defaults["from_"] = settings.sender
        if settings.status_callback:
            self.defaults["status_callback"] = settings.status_callback

    async def send(self, to: str, body: str, sender: str | None = None) -> Any:
        """Create the message (from ``sender`` when given); returns twilio's MessageInstance."""
        options = {**self.defaults, **({"from_": sender} if sender else {})}
        async with asyncio.timeout(self.timeout):
            return await self.messages.create_async(to=to, body=body, **options)

    async def close(self) -> None:
        await self.http.close()


def sender_for(channel: SmsChannel) -> TwilioSender:
    """The channel's sender on the running event loop (a new one if the loop changed): the channel owns it."""
    return channel.twilio_sender()


async def send_with_twilio(
    channel: SmsChannel, message: OutgoingMessage, text: str, count: SegmentCount
) -> DeliveryResult:
    """Send one SMS through Twilio; the result carries the SID and the segment count."""
    to = str(message.address or "")
    if not E164.match(to):
        raise PermanentDeliveryError(f"{to!r} is not an E.164 number", code="invalid_number")
    if not text.strip():
        raise PermanentDeliveryError("the SMS text is empty", code="empty_body")
    if not channel.auth_token:  # workers may get it later (TWILIO_AUTH_TOKEN); keep the message queued
        raise TransientDeliveryError(
            "no Twilio auth token: set TWILIO_AUTH_TOKEN or channels.sms.auth_token", code="configuration"
        )
    try:
        created = await sender_for(channel).send(to, text, channel.sender_for(message.country))
    except DeliveryError:
        raise
    except Exception as exc:  # every failure becomes transient or permanent
        raise error_for(exc) from exc
    detail: dict[str, Any] = {**count.as_dict(), "twilio_status": created.status}
    if created.num_segments is not None:
        detail["twilio_segments"] = _int(created.num_segments)
    return DeliveryResult(provider_id=created.sid, detail=detail)


def error_for(exc: BaseException) -> DeliveryError:
    """Map a twilio, aiohttp or timeout error onto a transient or permanent delivery error."""
    from twilio.base.exceptions import TwilioRestException, TwilioServiceException

    if isinstance(exc, TwilioRestException | TwilioServiceException):
        status = int(exc.status or 0)
        code = _int(exc.code) or status
        text = f"Twilio {status}/{code}: {getattr(exc, 'msg', None) or getattr(exc, 'detail', None) or exc}"
        if code in OPTED_OUT_CODES:
            return RecipientOptedOut(text, code=str(code))
        if code in ADDRESS_CODES:
            return AddressRejected(text, code=str(code))
        if status == 429 or status >= 500 or status in CONFIGURATION_STATUSES:
            return TransientDeliveryError(text, code=str(code))
        if 400 <= status < 500:
            return PermanentDeliveryError(text, code=str(code))
        return TransientDeliveryError(text, code=str(code))
    if isinstance(exc, TimeoutError):
        return TransientDeliveryError(f"Twilio did not answer in time: {exc!r}", code="timeout")
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - twilio depends on aiohttp
        aiohttp = None  # type: ignore[assignment]
    if (aiohttp is not None and isinstance(exc, aiohttp.ClientError)) or isinstance(exc, OSError):
        return TransientDeliveryError(f"cannot reach Twilio: {exc!r}", code="connection")
    return TransientDeliveryError(f"Twilio call failed: {type(exc).__name__}: {exc}", code="twilio")


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
