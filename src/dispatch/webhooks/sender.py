"""The sender: a thread with its own event loop that POSTs due outbox rows to their endpoints.

Each round claims up to :data:`BATCH` due rows (a compare-and-set lease, see
:mod:`dispatch.store.webhook_deliveries`), POSTs them concurrently over kept-alive connections
(one event per request, as Standard Webhooks has it, at most ``concurrency`` at once)
and writes every answer in one transaction:

- any 2xx: ``delivered``;
- 410 Gone: the receiver asks for no more: that delivery is ``dead`` at once (the
  endpoint stays configured; an operator removes it);
- anything else (other status, refused connection, timeout): retried after an
  exponential back-off with jitter, from ``min_backoff`` up to ``max_backoff``
  seconds, until the event is ``max_age`` seconds old; then ``dead``.

A message's events go in the order they happened: a row is not claimed while an earlier
event of the same message (or recipient) for the same endpoint is pending (see
:func:`dispatch.store.webhook_deliveries.claim`); rows of one subject in one round are still sent one
after another, and after a failure the rest wait for its retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import Counter

from ..clock import now_utc
from ..config import WebhooksConfig
from ..errors import StoreError
from ..store import Store, is_outage
from ..store import webhook_deliveries as table
from ..store.health import StoreHealth
from .signing import secret_key, signature

logger = logging.getLogger("dispatch.webhooks")

#: Rows claimed per round.
BATCH = 1_000
#: Seconds between purges of old delivered rows.
PURGE_EVERY = 300.0

#: Webhook POSTs by outcome (SPEC §12 metrics): ``delivered``, ``retry`` or ``dead``.
POSTS = Counter("dispatch_webhooks", "Webhook POSTs by outcome", ["outcome"])


class WebhookSender:
    """POSTs due outbox rows in a background thread; :meth:`close` drains briefly and stops it."""

    def __init__(self, settings: WebhooksConfig, store: Callable[[], Store], health: StoreHealth) -> None:
        self.settings = settings
        self._key = secret_key(settings.secret or "", "webhooks.secret")
        self._store = store
        self._health = health
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{random.getrandbits(32):08x}"
        self._lease = timedelta(seconds=settings.timeout * 3 + 30)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._stopping = threading.Event()
        self._drain_until = 0.0
        self._down: set[str] = set()
        self._gone: set[str] = set()
        self._ready = threading.Event()
        self.sent = 0

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        """Start the sender thread (once)."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name="dispatch-webhooks", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def wake(self) -> None:
        """New rows are in the table: look now rather than at the next poll."""
        loop, wakeup = self._loop, self._wakeup
        if loop is not None and wakeup is not None:
            with contextlib.suppress(RuntimeError):  # the loop has just closed
                loop.call_soon_threadsafe(wakeup.set)

    def close(self, drain: float | None = None) -> None:
        """Keep sending what is due for up to ``drain`` seconds (default ``drain_timeout``), then stop."""
        thread = self._thread
        if thread is None:
            return
        loop = self._loop
        self._drain_until = loop.time() + (self.settings.drain_timeout if drain is None else drain) if loop else 0.0
        self._stopping.set()
        self.wake()
        thread.join(timeout=self.settings.drain_timeout + self.settings.timeout + 30)
        self._thread = None

    # -- the loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main(loop))
        except Exception:
            logger.exception("the webhook sender stopped on an error")
        finally:
            self._loop = None
            loop.run_until_complete(loop.shutdown_default_executor())  # aiohttp's DNS look-up threads
            loop.close()
            self._ready.set()

    async def _main(self, loop: asyncio.AbstractEventLoop) -> None:
        import aiohttp

        self._wakeup = asyncio.Event()
        self._loop = loop
        self._ready.set()
        connector = aiohttp.TCPConnector(limit=self.settings.concurrency, ttl_dns_cache=300)
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout)
        limit = asyncio.Semaphore(self.settings.concurrency)
        last_purge = 0.0
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, raise_for_status=False) as session:
            while True:
                stopping = self._stopping.is_set()
                if stopping and loop.time() >= self._drain_until:
                    return
                sent = 0
                try:
                    sent = await self._round(session, limit)
                    if loop.time() - last_purge > PURGE_EVERY:
                        last_purge = loop.time()
                        before = now_utc() - timedelta(seconds=self.settings.keep_delivered)
                        table.purge_delivered(self._store(), before)
                    self._health.ok()
                except Exception as exc:
                    if is_outage(exc) or isinstance(exc, StoreError):  # StoreError: it could not be opened
                        self._health.failed(exc, "sending webhooks")
                    else:
                        logger.exception("a webhook round failed")
                if sent:
                    continue  # there may be more due at once
                if stopping:
                    return
                await self._sleep(loop)

    async def _sleep(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self._wakeup is not None
        wait = self.settings.poll_interval
        try:
            due = table.next_due(self._store(), self.settings.endpoints, now_utc())
        except Exception:
            due = None
        if due is not None:
            wait = min(wait, max(0.0, (due - now_utc()).total_seconds()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout=max(wait, 0.01))
        self._wakeup.clear()

    async def _round(self, session: Any, limit: asyncio.Semaphore) -> int:
        """Claim, POST and record one batch; returns how many rows it claimed."""
        store = self._store()
        rows = table.claim(store, self.settings.endpoints, self.worker, now_utc(), self._lease, BATCH)
        if not rows:
            return 0
        groups: dict[tuple[str, str], list[table.Due]] = {}
        for row in sorted(rows, key=lambda r: (r.occurred_at, r.event_id)):
            groups.setdefault((row.endpoint, row.subject or row.event_id), []).append(row)
        answers = await asyncio.gather(*(self._send_group(session, limit, group) for group in groups.values()))
        results = [result for group in answers for result in group]
        table.record(store, results, self.worker, now_utc())
        self.sent += sum(1 for r in results if r.status == table.DELIVERED)
        for result in results:
            if result.counted:
                POSTS.labels(result.status).inc()
        self._report(rows, results)
        return len(rows)

    async def _send_group(self, session: Any, limit: asyncio.Semaphore, group: list[table.Due]) -> list[table.Result]:
        """POST one message's events in order; after a failure the rest wait for the same retry."""
        results: list[table.Result] = []
        for index, row in enumerate(group):
            async with limit:
                result = await self._post(session, row)
            results.append(result)
            if result.status != table.DELIVERED:
                retry_at = result.retry_at or now_utc()
                results.extend(
                    table.Result(r.id, "retry", retry_at, error="waiting for an earlier event", counted=False)
                    for r in group[index + 1 :]
                )
                break
        return results

    async def _post(self, session: Any, row: table.Due) -> table.Result:
        body = row.body.encode("utf-8")
        stamp = int(now_utc().timestamp())
        headers = {
            "content-type": "application/json",
            "user-agent": "dispatch-webhooks",
            "webhook-id": row.event_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": signature(self._key, row.event_id, stamp, body),
        }
        try:
            async with session.post(row.endpoint, data=body, headers=headers, allow_redirects=False) as response:
                await response.read()
                status = response.status
        except Exception as exc:  # refused, reset, timed out, TLS: all the receiver's absence
            return self._failed(row, None, type(exc).__name__)
        if 200 <= status < 300:
            return table.Result(row.id, table.DELIVERED, http_status=status)
        if status == 410:
            return table.Result(row.id, table.DEAD, http_status=status, error="410 Gone: the receiver asks for no more")
        return self._failed(row, status, f"HTTP {status}")

    def _failed(self, row: table.Due, status: int | None, error: str) -> table.Result:
        now = now_utc()
        retry_at = now + self.backoff(row.attempts + 1)
        if retry_at > row.created_at + timedelta(seconds=self.settings.max_age):
            return table.Result(row.id, table.DEAD, http_status=status, error=error)
        return table.Result(row.id, "retry", retry_at, http_status=status, error=error)

    def backoff(self, attempt: int) -> timedelta:
        """The wait after failed attempt number ``attempt`` (1-based): exponential, capped, ±25% jitter."""
        base = min(self.settings.max_backoff, self.settings.min_backoff * 2 ** min(attempt - 1, 40))
        return timedelta(seconds=base * random.uniform(0.75, 1.25))

    def _report(self, rows: list[table.Due], results: list[table.Result]) -> None:
        """A few log lines per change of an endpoint's state, never one per event."""
        endpoint_of = {r.id: r.endpoint for r in rows}
        failing: dict[str, list[table.Result]] = {}
        working: set[str] = set()
        for result in results:
            endpoint = endpoint_of[result.id]
            if result.status == table.DELIVERED:
                working.add(endpoint)
            elif result.counted:
                failing.setdefault(endpoint, []).append(result)
        for endpoint in working & self._down:
            self._down.discard(endpoint)
            logger.warning("webhook endpoint %s answers again", _label(endpoint))
        for endpoint, failed in failing.items():
            dead = sum(1 for r in failed if r.status == table.DEAD)
            gone = any(r.http_status == 410 for r in failed)
            if gone and endpoint not in self._gone:
                self._gone.add(endpoint)
                logger.warning("webhook endpoint %s answered 410 Gone; remove it from [webhooks]", _label(endpoint))
            if dead:
                logger.warning("%d webhook delivery(ies) to %s are dead (too old or refused)", dead, _label(endpoint))
            if endpoint not in self._down and endpoint not in working:
                self._down.add(endpoint)
                logger.warning(
                    "webhook endpoint %s failed (%s); %d event(s) will be retried with back-off",
                    _label(endpoint),
                    failed[0].error,
                    len(failed) - dead,
                )


def _label(endpoint: str) -> str:
    """An endpoint for logs: scheme, host and port (no path or query, which may hold tokens)."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
