"""Signed links: unsubscribe and preference URLs carry a MAC so they cannot be forged.

Tokens are short (the message id plus a 96-bit HMAC-SHA256 tag) because they go
into SMS, where every character counts. The message id leads to the recipient,
channel and purpose in the store; nothing personal is in the URL.
"""

from __future__ import annotations

import hashlib

from itsdangerous import BadSignature
from itsdangerous.signer import HMACAlgorithm, Signer

from .errors import InputError

__all__ = ["BadSignature", "InvalidToken", "LinkSigner"]


class InvalidToken(InputError):
    """A link token whose signature does not verify."""


class _ShortHMAC(HMACAlgorithm):
    """HMAC-SHA256 cut to 96 bits: plenty against forgery of a single link, short in an SMS."""

    def get_signature(self, key: bytes, value: bytes) -> bytes:
        return super().get_signature(key, value)[:12]


class LinkSigner:
    """Builds and verifies the signed links put into messages."""

    def __init__(self, secret: str, base_url: str) -> None:
        if not secret:
            raise InputError("link secret must not be empty")
        self.base_url = base_url.rstrip("/")
        self._unsubscribe = Signer(secret, salt="dispatch.unsubscribe", algorithm=_ShortHMAC(hashlib.sha256))

    def unsubscribe_token(self, message_id: str) -> str:
        return self._unsubscribe.sign(message_id).decode("ascii")

    def unsubscribe_url(self, message_id: str) -> str:
        """The one-click unsubscribe URL for a message (RFC 8058 target)."""
        return f"{self.base_url}/u/{self.unsubscribe_token(message_id)}"

    def verify_unsubscribe(self, token: str) -> str:
        """The message id in a token; raises :class:`InvalidToken` when it was forged or altered."""
        try:
            return self._unsubscribe.unsign(token).decode("ascii")
        except BadSignature:
            raise InvalidToken("unsubscribe link is not valid") from None
