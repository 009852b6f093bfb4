"""One aiohttp session per provider channel, opened on first use on the delivery event loop."""

from __future__ import annotations

import asyncio
from typing import Any

from dispatch.errors import TransientDeliveryError


class Session:
    """A lazily opened ``aiohttp.ClientSession`` with the provider's timeout."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._session: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def get(self) -> Any:
        try:
            import aiohttp
        except ImportError as exc:  # the extra is missing: keep the letter queued
            raise TransientDeliveryError(
                f"digital mailboxes need aiohttp: pip install 'dispatch[mailboxes]' ({exc})"
            ) from exc
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            self._loop = loop
        return self._session

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()


def retry_later(status: int) -> bool:
    """429 and 5xx: the provider asks to be tried again (both providers document 5xx as safe to retry)."""
    return status == 429 or status >= 500
