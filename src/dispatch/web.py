"""``dispatch serve``: the links and webhooks messages point back to.

- ``GET /u/<token>`` — the unsubscribe page of a message, in its language, with one button;
- ``POST /u/<token>`` — the button, and RFC 8058 one-click unsubscribe from mail clients
  (``List-Unsubscribe=One-Click``); records a withdrawal in the consent ledger;
- ``POST /twilio/status`` — Twilio's delivery status callback; a failed statutory SMS is sent
  again by letter, error 21610 records an SMS opt-out;
- ``POST /twilio/inbound`` — replies to our SMS; STOP (and its Finnish, Swedish and Norwegian
  forms) withdraws SMS marketing consent.

Tokens are signed (:mod:`dispatch.links`); Twilio requests must carry a valid
``X-Twilio-Signature`` for the public URL under ``[links] base_url``, or are refused.
Pages are templates too: ``templates/<lang>/_web/unsubscribe.html`` and ``unsubscribed.html``.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import BadRequest, Forbidden, HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from .errors import DispatchError
from .feedback import FeedbackKind, ProviderEvent
from .links import InvalidToken
from .store import now_utc

if TYPE_CHECKING:
    from .dispatcher import Dispatcher

logger = logging.getLogger("dispatch.web")

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "LOPETA", "STOPP", "AVSLUTA"})
FAILED_STATUSES = frozenset({"failed", "undelivered"})


class WebApp:
    """A WSGI application over a :class:`~dispatch.Dispatcher`."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.d = dispatcher
        self.url_map = Map(
            [
                Rule("/u/<token>", endpoint="unsubscribe", methods=["GET", "POST"]),
                Rule("/twilio/status", endpoint="twilio_status", methods=["POST"]),
                Rule("/twilio/inbound", endpoint="twilio_inbound", methods=["POST"]),
                Rule("/health", endpoint="health", methods=["GET"]),
            ]
        )

    def __call__(self, environ, start_response):
        request = Request(environ)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            endpoint, values = adapter.match()
            response = getattr(self, f"on_{endpoint}")(request, **values)
        except HTTPException as exc:
            response = exc.get_response(environ)
        except DispatchError as exc:
            response = Response(str(exc), status=400, mimetype="text/plain")
        return response(environ, start_response)

    # -- pages -------------------------------------------------------------------------

    def on_health(self, request: Request) -> Response:
        return Response("ok\n", mimetype="text/plain")

    def on_unsubscribe(self, request: Request, token: str) -> Response:
        try:
            message_id = self.d.links.verify_unsubscribe(token)
        except InvalidToken:
            raise NotFound("This link is not valid.") from None
        message = self.d.store.message(message_id, content=False)
        if message is None:
            raise NotFound("This message is not known.")
        purpose, channel = self._opt_out_scope(message)
        if request.method == "POST":
            already = self._withdrawn(message["recipient_id"], purpose, channel)
            if not already:
                self.d.consents.record(
                    message["recipient_id"],
                    purpose,
                    False,
                    channel=channel,
                    source="unsubscribe_link",
                    evidence=f"message {message_id}" + (" one-click" if _one_click(request) else ""),
                )
            logger.info("unsubscribe: %s %s/%s via message %s", message["recipient_id"], purpose, channel, message_id)
            if _one_click(request):
                return Response("", status=200)
            return self._page("unsubscribed.html", message, purpose, channel, token)
        return self._page("unsubscribe.html", message, purpose, channel, token)

    def _opt_out_scope(self, message: dict[str, Any]) -> tuple[str, str]:
        mtype = self.d.types.get(message["message_type"]) if message["message_type"] in self.d.types else None
        if mtype is not None and mtype.subscription:
            return mtype.subscription, "all"
        if mtype is not None and mtype.objection:
            return mtype.objection, "all"
        return "marketing", message["channel"] or "all"

    def _withdrawn(self, recipient_id: str, purpose: str, channel: str) -> bool:
        entries = [
            e
            for e in self.d.consents.history(recipient_id)
            if e["purpose"] == purpose and e["channel"] in (channel, "all")
        ]
        return bool(entries) and not entries[-1]["granted"]

    def _page(self, name: str, message: dict[str, Any], purpose: str, channel: str, token: str) -> Response:
        language = message["language"]
        env = self.d.renderer.environment(language, message["country"])
        template = env.get_template(f"_web/{name}")
        html = template.render(
            company=self.d.company(message["country"], language),
            purpose=purpose,
            channel=channel,
            action=f"/u/{token}",
            language=language,
        )
        return Response(html, mimetype="text/html")

    # -- Twilio webhooks ---------------------------------------------------------------

    def _verify_twilio(self, request: Request) -> dict[str, str]:
        token = os.environ.get("TWILIO_AUTH_TOKEN") or (self.d.config.channels.get("sms") or {}).get("auth_token")
        if not token:
            raise Forbidden("Twilio webhooks need TWILIO_AUTH_TOKEN to verify signatures")
        from twilio.request_validator import RequestValidator

        url = self.d.config.links.base_url.rstrip("/") + request.full_path.rstrip("?")
        params = request.form.to_dict()
        if not RequestValidator(token).validate(url, params, request.headers.get("X-Twilio-Signature", "")):
            logger.warning("refused a Twilio request with a bad signature for %s", request.path)
            raise Forbidden("bad signature")
        return params

    def on_twilio_status(self, request: Request) -> Response:
        params = self._verify_twilio(request)
        sid, status = params.get("MessageSid"), params.get("MessageStatus", "")
        if not sid:
            raise BadRequest("MessageSid missing")
        code = params.get("ErrorCode") or None
        kind = None
        if status == "delivered":
            kind = FeedbackKind.DELIVERED
        elif status in FAILED_STATUSES:
            kind = FeedbackKind.OPTED_OUT if code == "21610" else FeedbackKind.BOUNCED
        if kind is not None:
            self.d.handle_feedback(
                ProviderEvent(
                    kind=kind,
                    channel="sms",
                    occurred_at=now_utc(),
                    provider_id=sid,
                    code=code,
                    permanent=True,
                    detail={"status": status},
                    source="twilio_status",
                )
            )
        return Response("", status=204)

    def on_twilio_inbound(self, request: Request) -> Response:
        params = self._verify_twilio(request)
        words = (params.get("Body") or "").strip().upper().split()
        sender = params.get("From") or ""
        if words and words[0] in STOP_WORDS and sender:
            recipients = self.d.store.recipients_by_address("sms", sender)
            for recipient_id in recipients:
                self.d.consents.record(
                    recipient_id,
                    "marketing",
                    False,
                    channel="sms",
                    source="sms_stop",
                    evidence=f"inbound SMS {params.get('MessageSid', '')}",
                )
            logger.info("SMS STOP from a number of %d recipient(s)", len(recipients))
        return Response('<?xml version="1.0" encoding="UTF-8"?><Response></Response>', mimetype="text/xml")


def _one_click(request: Request) -> bool:
    return request.form.get("List-Unsubscribe") == "One-Click"


def serve(dispatcher: Dispatcher, host: str, port: int) -> None:
    """Serve :class:`WebApp` with werkzeug's threaded server (put a reverse proxy with TLS in front)."""
    from werkzeug.serving import run_simple

    run_simple(host, port, WebApp(dispatcher), threaded=True, use_reloader=False)
