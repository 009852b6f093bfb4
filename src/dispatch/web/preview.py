"""``GET /preview/<type>``: the translators' preview page (:mod:`dispatch.preview_page`) on a staging server.

``?lang=fi&lang=sv&channel=email&country=FI`` choose what is shown (default: every
language and channel of the type, with sample data). The page is behind the
operator token, checked as the operator view checks it (Bearer, or the HTTP Basic
password); without a configured token it does not exist. Nothing is decided,
recorded or sent.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from ..errors import DispatchError, UnknownMessageType
from ..preview_page import build_preview, render_page

if TYPE_CHECKING:
    from ..dispatcher import Dispatcher
    from .operator import OperatorView

logger = logging.getLogger("dispatch.web")

#: The page embeds images as data: URIs and each email in a sandboxed srcdoc iframe; nothing else loads.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


class PreviewView:
    """The preview page over a :class:`~dispatch.Dispatcher`, guarded by ``operator``'s token check."""

    def __init__(self, dispatcher: Dispatcher, operator: OperatorView) -> None:
        self.d = dispatcher
        self.operator = operator

    async def page(self, request: Request) -> Response:
        if not self.d.config.web.operator_token:
            raise HTTPException(404)
        if not self.operator.authorised(request.headers.get("authorization", "")):
            raise HTTPException(401, headers={"WWW-Authenticate": 'Basic realm="dispatch operator"'})
        message_type = request.path_params["message_type"]
        query = request.query_params
        languages = [v for v in query.getlist("lang") if v]
        channels = [v for v in query.getlist("channel") if v]
        country = (query.get("country") or "").strip().upper() or None
        variants = [v for v in query.getlist("variant") if v]
        return await run_in_threadpool(self._render, message_type, languages, channels, country, variants)

    def _render(
        self, message_type: str, languages: list[str], channels: list[str], country: str | None, variants: list[str]
    ) -> Response:
        try:
            preview = build_preview(
                self.d, message_type, channels=channels, languages=languages, country=country, variants=variants
            )
        except UnknownMessageType as exc:
            return _plain(404, str(exc))
        except DispatchError as exc:
            return _plain(400, str(exc))
        base_path = urlsplit(self.d.config.links.base_url).path.rstrip("/")
        html = render_page(self.d, preview, form_action=f"{base_path}/preview/{preview.message_type}")
        logger.info("preview of %s (%d language(s))", preview.message_type, len(preview.columns))
        return HTMLResponse(
            html,
            headers={
                "Cache-Control": "no-store",
                "Referrer-Policy": "same-origin",
                "X-Content-Type-Options": "nosniff",
                "X-Frame-Options": "DENY",
                "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            },
        )


def _plain(status: int, text: str) -> Response:
    return PlainTextResponse(f"error: {text}\n", status_code=status, headers={"Cache-Control": "no-store"})
