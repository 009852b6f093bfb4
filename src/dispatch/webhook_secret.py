"""The form of a webhook signing secret (Standard Webhooks): read by the configuration and the signer.

It lives outside :mod:`dispatch.webhooks` so that checking ``[webhooks] secret`` while the
configuration loads does not import the webhook sender (an import cycle config ↔ webhooks).
"""

from __future__ import annotations

import base64
import binascii

from .errors import ConfigError

PREFIX = "whsec_"
#: Standard Webhooks asks for secrets of 24 to 64 bytes.
MIN_SECRET_BYTES, MAX_SECRET_BYTES = 24, 64


def secret_key(secret: str | bytes, where: str = "webhook secret") -> bytes:
    """The key bytes of ``secret`` (``whsec_`` + base64, or the raw bytes); :class:`ConfigError` if malformed."""
    if isinstance(secret, bytes):
        key = secret
    else:
        text = secret.removeprefix(PREFIX) if isinstance(secret, str) else ""
        try:
            key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"{where} must be 'whsec_' followed by base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ConfigError(
            f"{where} must hold {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes (it has {len(key)}); "
            "make one with dispatch.webhooks.generate_secret()"
        )
    return key


__all__ = ["MAX_SECRET_BYTES", "MIN_SECRET_BYTES", "PREFIX", "secret_key"]
