"""Identifiers that carry authority: message ids, offer ids, event ids.

A message id is in the customer's hands (the VERP Return-Path, the unsubscribe
link, the ``Message-ID`` header), so knowing one's own id must tell nothing about a
neighbour's. python-ulid's default generator is *monotonic*: ids made in the same
millisecond count up by one, so the next customer's id is the previous one + 1.
Here every id is a ULID whose first 48 bits are the creation time in milliseconds
(ids still sort by creation, to the millisecond) and whose 80 other bits come fresh
from the operating system's CSPRNG (:func:`secrets.token_bytes`) every time.
"""

from __future__ import annotations

import secrets
import time

from ulid import ULID

#: Random bits in every id (the rest is the millisecond timestamp).
RANDOM_BITS = 80


def new_id() -> str:
    """A new id: 26 Crockford base32 characters, 48 bits of time and 80 fresh random bits."""
    millis = time.time_ns() // 1_000_000
    return str(ULID(millis.to_bytes(6, "big") + secrets.token_bytes(RANDOM_BITS // 8)))


__all__ = ["RANDOM_BITS", "new_id"]
