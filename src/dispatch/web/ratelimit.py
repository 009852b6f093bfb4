"""Per-client rate limits for the pages a link or a code opens (``dispatch serve``).

Tokens and short codes are unguessable in practice (HMAC-signed; ~8×10¹⁴ codes), but a
client that tries them by the thousand should be slowed down long before it matters,
and it costs a store read each. Every client address may open at most
``[web] rate_limit`` of these pages (default 60 a minute, a moving window) — a person
following links never comes near it; beyond it the answer is 429 with ``Retry-After``.

The client address is the connection's, or, behind a proxy that uvicorn trusts
(``forwarded_allow_ips``, 127.0.0.1 by default), the one in ``X-Forwarded-For``.
Counts live in the process (the ``limits`` library's moving window in memory): each
``serve`` process counts for itself, which bounds a guesser just as well.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..errors import ConfigError

Endpoint = Callable[[Request], Awaitable[Response]]


class RateLimit:
    """Wraps page endpoints so that each client address gets at most ``limit`` (e.g. ``"60/minute"``)."""

    def __init__(self, limit: str, *, namespace: str = "pages") -> None:
        try:
            self.item = parse(limit)
        except ValueError:
            raise ConfigError(f"web.rate_limit: {limit!r} is not a rate such as '60/minute' or '1000/hour'") from None
        self.namespace = namespace
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def allow(self, client: str) -> bool:
        """Count one request of ``client``; False when it is over the limit."""
        return self.limiter.hit(self.item, self.namespace, client)

    def retry_after(self, client: str) -> int:
        """Seconds until ``client`` may try again (at least 1)."""
        reset, _remaining = self.limiter.get_window_stats(self.item, self.namespace, client)
        return max(1, math.ceil(reset - time.time()))

    def __call__(self, endpoint: Endpoint) -> Endpoint:
        """``endpoint``, refused with 429 (and ``Retry-After``) for a client over the limit."""

        async def limited(request: Request) -> Response:
            client = request.client.host if request.client else "unknown"
            if not self.allow(client):
                raise HTTPException(429, headers={"Retry-After": str(self.retry_after(client))})
            return await endpoint(request)

        limited.__name__ = getattr(endpoint, "__name__", "limited")
        limited.__doc__ = endpoint.__doc__
        return limited


__all__ = ["RateLimit"]
