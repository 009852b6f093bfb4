"""Signing and verifying webhooks exactly as the Standard Webhooks specification describes.

A webhook carries three headers: ``webhook-id`` (the event id, the same on every
retry, so receivers can drop duplicates), ``webhook-timestamp`` (Unix seconds of this
attempt) and ``webhook-signature``: ``v1,`` + base64 of HMAC-SHA256 over
``{id}.{timestamp}.{body}`` keyed with the secret's bytes (the base64 after ``whsec_``).
Several space-separated signatures may be sent (while a secret is being rotated);
one that matches is enough.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

from ..errors import DispatchError
from ..webhook_secret import MAX_SECRET_BYTES, MIN_SECRET_BYTES, PREFIX, secret_key  # noqa: F401  (re-exported)


class WebhookVerificationError(DispatchError):
    """A webhook whose headers are missing, too old or too new, or whose signature does not match."""


def generate_secret(size: int = 32) -> str:
    """A new secret: ``whsec_`` + base64 of ``size`` random bytes."""
    return PREFIX + base64.b64encode(secrets.token_bytes(size)).decode("ascii")


def signature(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>``."""
    signed = b"%s.%d.%s" % (webhook_id.encode("utf-8"), timestamp, body)
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def sign(secret: str | bytes, webhook_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The three headers of one webhook attempt (``timestamp`` defaults to now)."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": signature(secret_key(secret), webhook_id, ts, body),
    }


def verify(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes | str,
    tolerance: float = 300,
    *,
    now: float | None = None,
) -> None:
    """Check a received webhook; raises :class:`WebhookVerificationError` unless it is genuine.

    ``headers`` may use any case. ``tolerance`` is how many seconds the timestamp may
    differ from ``now`` (replayed old requests are refused). Verify the raw body bytes,
    before parsing the JSON.
    """
    key = secret_key(secret)
    lower = {k.lower(): v for k, v in headers.items()}
    webhook_id = lower.get("webhook-id")
    stamp = lower.get("webhook-timestamp")
    sent = lower.get("webhook-signature")
    if not (webhook_id and stamp and sent):
        raise WebhookVerificationError("webhook headers missing (webhook-id, webhook-timestamp, webhook-signature)")
    try:
        ts = int(stamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a number of seconds") from None
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance")
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    expected = signature(key, webhook_id, ts, raw)
    for candidate in sent.split():
        if hmac.compare_digest(candidate.encode("ascii", "replace"), expected.encode("ascii")):
            return
    raise WebhookVerificationError("no webhook signature matches")
