"""A read-only page for customer service: one customer's messages and consents.

``GET /operator?recipient=C-1001``, behind ``[web] operator_token`` (env
``DISPATCH_OPERATOR_TOKEN``), given as ``Authorization: Bearer <token>`` or as the
password of HTTP Basic authentication (so a browser asks for it). Without a
configured token the page does not exist. Addresses are shown masked.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from .preferences import mask_email, mask_phone

if TYPE_CHECKING:
    from ..dispatcher import Dispatcher

logger = logging.getLogger("dispatch.web")


class OperatorView:
    """The operator page over a :class:`~dispatch.Dispatcher`."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.d = dispatcher

    def authorised(self, header: str) -> bool:
        token = self.d.config.web.operator_token
        if not token:
            return False
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                value = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2]
            except (binascii.Error, UnicodeError):
                return False
        elif scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(value.strip().encode("utf-8"), token.encode("utf-8"))

    async def page(self, request: Request) -> Response:
        if not self.d.config.web.operator_token:
            raise HTTPException(404)
        if not self.authorised(request.headers.get("authorization", "")):
            raise HTTPException(401, headers={"WWW-Authenticate": 'Basic realm="dispatch operator"'})
        recipient_id = (request.query_params.get("recipient") or "").strip()[:128]
        return await run_in_threadpool(self._render, request.app.state.pages, recipient_id)

    def _render(self, pages: Any, recipient_id: str) -> Response:
        messages: list[dict[str, Any]] = []
        consents: list[dict[str, Any]] = []
        if recipient_id:
            for row in self.d.store.messages_for(recipient_id):
                messages.append({**{k: row[k] for k in _MESSAGE_FIELDS}, "address": _masked(row["address"])})
            consents = self.d.consents.history(recipient_id)
            logger.info("operator view of recipient %s", recipient_id)
        return pages.render(
            "web_operator.html", "en", "FI", recipient_id=recipient_id, messages=messages, consents=consents
        )


_MESSAGE_FIELDS = ("id", "decided_at", "message_type", "category", "channel", "language", "status", "reasons")


def _masked(address: Any) -> str:
    if isinstance(address, str):
        return mask_email(address) if "@" in address else mask_phone(address)
    if isinstance(address, dict):
        return f"{address.get('postal_code') or ''} {address.get('city') or ''}".strip() or "•••"
    return ""
