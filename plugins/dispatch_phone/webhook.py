"""POST call tasks to a CRM webhook (stdlib HTTP client, run off the event loop).

The body is the task as compact UTF-8 JSON. With ``webhook_secret`` set the
request carries ``X-Dispatch-Signature: sha256=<hex HMAC-SHA256 of the body>``,
which the receiver recomputes over the raw body bytes and compares in constant
time (see :func:`verify_signature`). ``Idempotency-Key`` is the message id: a
retry after a lost answer repeats it, so the CRM can drop the duplicate.

- 2xx → done;
- 5xx, 408, 429, a timeout or a connection error → :class:`TransientDeliveryError`
  (the queue retries);
- any other answer (4xx, and 3xx: redirects are not followed, since a POST
  silently turned into a GET would lose the task) → :class:`PermanentDeliveryError`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dispatch.errors import PermanentDeliveryError, TransientDeliveryError

if TYPE_CHECKING:
    from .channel import PhoneSettings

SIGNATURE_HEADER = "X-Dispatch-Signature"
RETRYABLE_STATUSES = {408, 425, 429}


def sign(body: bytes, secret: str) -> str:
    """The signature header value for ``body``: ``sha256=<hex>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str | None, secret: str) -> bool:
    """For receivers: True when ``header`` is the signature of ``body`` under ``secret``."""
    return header is not None and hmac.compare_digest(sign(body, secret), header)


def encode_task(task: Mapping[str, Any]) -> bytes:
    """The request body: compact UTF-8 JSON."""
    return json.dumps(task, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises HTTPError with the 3xx status


_OPENER = urllib.request.build_opener(_NoRedirect)


async def post_task(settings: PhoneSettings, task: Mapping[str, Any]) -> int:
    """POST ``task`` to ``settings.webhook_url``; returns the HTTP status (2xx) or raises a delivery error."""
    if not settings.webhook_url:
        raise PermanentDeliveryError("no webhook_url configured", code="configuration")
    body = encode_task(task)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "dispatch-phone-webhook",
        "Idempotency-Key": str(task.get("id", "")),
    }
    if settings.webhook_secret:
        headers[SIGNATURE_HEADER] = sign(body, settings.webhook_secret)
    request = urllib.request.Request(settings.webhook_url, data=body, headers=headers, method="POST")
    return await asyncio.to_thread(_send, request, settings.webhook_timeout)


def _send(request: urllib.request.Request, timeout: float) -> int:
    url = request.full_url
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
        detail = _snippet(exc)
        if status >= 500 or status in RETRYABLE_STATUSES:
            raise TransientDeliveryError(f"webhook {url} answered {status}{detail}", code=str(status)) from None
        raise PermanentDeliveryError(f"webhook {url} answered {status}{detail}", code=str(status)) from None
    except TimeoutError as exc:
        raise TransientDeliveryError(f"webhook {url} did not answer within {timeout:g} s", code="timeout") from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise TransientDeliveryError(f"webhook {url} did not answer within {timeout:g} s", code="timeout") from exc
        raise TransientDeliveryError(f"cannot reach webhook {url}: {exc.reason}", code="connection") from exc
    except OSError as exc:  # reset while reading, and the like
        raise TransientDeliveryError(f"webhook {url} failed: {exc}", code="connection") from exc


def _snippet(exc: urllib.error.HTTPError) -> str:
    try:
        text = exc.read(300).decode("utf-8", "replace").strip()
    except OSError:
        return ""
    return f": {text}" if text else ""
