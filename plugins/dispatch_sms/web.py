"""Twilio's callbacks to ``dispatch serve``: delivery status and replies (STOP / START).

- ``POST /twilio/status`` — the status callback of a sent SMS: ``delivered``, or
  ``failed``/``undelivered`` with Twilio's error code (21610: the number opted out
  with the carrier);
- ``POST /twilio/inbound`` — an SMS to our number: STOP and its Nordic forms
  (STOPP, SLUTA, LOPETA, AVSLUTA...) opt the number out of SMS marketing, START
  opts it back in; anything else is left for people.

Every request must carry a valid ``X-Twilio-Signature`` for its public URL under
``[links] base_url`` (the auth token is ``TWILIO_AUTH_TOKEN`` or
``[channels.sms] auth_token``), or it is refused with 403. What Twilio reports is
turned into :class:`~dispatch.feedback.ProviderEvent` values for
``dispatcher.handle_feedback``; the core never sees Twilio's codes or fields.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from dispatch.feedback import FeedbackKind, ProviderEvent

if TYPE_CHECKING:
    from dispatch.host import Host

logger = logging.getLogger("dispatch.sms")

#: Replies that opt out: Twilio's own keywords and the Finnish, Swedish and Norwegian ones.
STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}
    | {"LOPETA", "STOPP", "SLUTA", "AVSLUTA", "AVSLUTT", "AVMELD"}
)
#: Replies that opt back in.
START_WORDS = frozenset({"START", "UNSTOP", "ALOITA", "STARTA"})
#: Statuses that end a message's life as a failure.
FAILED_STATUSES = frozenset({"failed", "undelivered"})
#: The carrier says the number has opted out (the message was not delivered).
OPTED_OUT_ERROR = "21610"
_EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


class TwilioCallbacks:
    """The Twilio endpoints for one dispatcher (its :class:`~dispatch.host.Host`)."""

    def __init__(self, dispatcher: Host, on_feedback: Callable[[ProviderEvent], None] | None = None) -> None:
        self.d = dispatcher
        self.on_feedback = on_feedback or dispatcher.handle_feedback

    def _auth_token(self) -> str | None:
        return os.environ.get("TWILIO_AUTH_TOKEN") or (self.d.config.channels.get("sms") or {}).get("auth_token")

    async def _verified(self, request: Request) -> dict[str, str] | None:
        """The form fields of a request Twilio signed, or None (bad or missing signature, no token)."""
        token = self._auth_token()
        if not token:
            logger.warning("refused a Twilio callback: no auth token configured to check its signature")
            return None
        from twilio.request_validator import RequestValidator

        form = await request.form()
        params = {k: str(v) for k, v in form.items()}
        query = f"?{request.url.query}" if request.url.query else ""
        url = self.d.config.links.base_url.rstrip("/") + request.url.path + query
        if not RequestValidator(token).validate(url, params, request.headers.get("x-twilio-signature", "")):
            logger.warning("refused a Twilio callback with a bad signature on %s", request.url.path)
            return None
        return params

    async def status(self, request: Request) -> Response:
        params = await self._verified(request)
        if params is None:
            return Response("bad signature\n", status_code=403, media_type="text/plain")
        event = status_event(params)
        if event is None:
            if not params.get("MessageSid"):
                return Response("MessageSid missing\n", status_code=400, media_type="text/plain")
            return Response(status_code=204)
        await run_in_threadpool(self.on_feedback, event)
        return Response(status_code=204)

    async def inbound(self, request: Request) -> Response:
        params = await self._verified(request)
        if params is None:
            return Response("bad signature\n", status_code=403, media_type="text/plain")
        event = inbound_event(params)
        if event is not None:
            await run_in_threadpool(self.on_feedback, event)
        return Response(_EMPTY_TWIML, media_type="text/xml")


def status_event(params: dict[str, str], now: datetime | None = None) -> ProviderEvent | None:
    """The event a status callback reports, or None for interim statuses (queued, sent...)."""
    sid, reported = params.get("MessageSid"), (params.get("MessageStatus") or "").lower()
    if not sid:
        return None
    code = params.get("ErrorCode") or None
    if reported == "delivered":
        kind = FeedbackKind.DELIVERED
    elif reported in FAILED_STATUSES:
        kind = FeedbackKind.OPTED_OUT if code == OPTED_OUT_ERROR else FeedbackKind.BOUNCED
    else:
        return None
    return ProviderEvent(
        kind=kind,
        channel="sms",
        occurred_at=now or datetime.now(UTC),
        provider_id=sid,
        address=params.get("To") or None,
        code=code,
        permanent=kind != FeedbackKind.DELIVERED,
        detail={"status": reported},
        source="twilio_status",
    )


def inbound_event(params: dict[str, str], now: datetime | None = None) -> ProviderEvent | None:
    """An opt-out or opt-in when the reply's first word is a STOP or START keyword; else None."""
    words = (params.get("Body") or "").strip().upper().split()
    sender = params.get("From") or ""
    if not words or not sender:
        return None
    keyword = words[0].strip(".!")
    if keyword in STOP_WORDS:
        kind = FeedbackKind.OPTED_OUT
    elif keyword in START_WORDS:
        kind = FeedbackKind.OPTED_IN
    else:
        return None
    return ProviderEvent(
        kind=kind,
        channel="sms",
        occurred_at=now or datetime.now(UTC),
        address=sender,
        code=keyword,
        detail={"keyword": keyword, "inbound_sid": params.get("MessageSid") or ""},
        source="sms_inbound",
    )


def register_routes(register: Callable[..., Any], dispatcher: Host) -> None:
    """Add ``/twilio/status`` and ``/twilio/inbound`` (the ``dispatch_web_routes`` hook's work)."""
    callbacks = TwilioCallbacks(dispatcher)
    register("/twilio/status", callbacks.status, methods=("POST",))
    register("/twilio/inbound", callbacks.inbound, methods=("POST",))
