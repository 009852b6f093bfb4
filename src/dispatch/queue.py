"""Queues: the Dramatiq broker, one actor per channel and lane, and the embedded worker.

Each channel has two queues: ``<channel>`` for statutory messages (actor priority
0) and ``<channel>.bulk`` for everything else (priority 100). A worker consumes
both, and its priority queue hands statutory messages out first, so a price-change
notice is not stuck behind a million newsletters. Payloads are lists of message ids
(up to ``[worker] batch_size`` per queue message), so a worker claims, sends and
records a batch at a time.

``memory://`` gives Dramatiq's in-process broker and a worker in the same process
(the embedded default); ``redis://`` and ``amqp://`` give the real brokers, whose
modules are imported only when used.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from concurrent.futures import Future
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries

from .config import BrokerConfig
from .errors import ConfigError, TransientDeliveryError

try:  # imported now, not when the first loop starts: that may be while the interpreter exits
    import uvloop
except ImportError:  # pragma: no cover - without the email and web extras
    uvloop = None

logger = logging.getLogger("dispatch.queue")

STATUTORY_PRIORITY = 0
BULK_PRIORITY = 100


def queue_name(channel: str, category: str) -> str:
    """The queue a message goes to: statutory messages have their own lane."""
    return channel if category == "statutory" else f"{channel}.bulk"


def actor_name(queue: str) -> str:
    return "dispatch_deliver_" + queue.replace(".", "_")


def build_broker(
    config: BrokerConfig,
) -> dramatiq.Broker:
    """The broker named by ``[broker] url``, with dispatch's middleware."""
    url = config.url
    # No TimeLimit or ShutdownNotifications: their threads live as long as the process, and
    # each send has its own timeout on the delivery event loop.
    middleware = [
        # Retries here only bring back a batch whose claim could not even be made (the store
        # was unreachable); each message's own retries are counted in the store (RetryPolicy).
        Retries(max_retries=100_000, min_backoff=1_000, max_backoff=60_000),
    ]
    if url.startswith("memory:"):
        return StubBroker(middleware=middleware)
    if url.startswith(("redis://", "rediss://", "unix://")):
        try:
            from .redis_broker import PipelinedRedisBroker
        except ImportError as exc:  # pragma: no cover - the redis extra is missing
            raise ConfigError(
                "broker.url is redis:// but the redis package is missing: pip install 'dispatch[redis]'"
            ) from exc
        # A dead worker's unacknowledged batches go back to the queue once its heartbeat is
        # older than heartbeat_timeout; maintenance runs often enough to notice within seconds.
        return PipelinedRedisBroker(
            url=url, middleware=middleware, heartbeat_timeout=config.heartbeat_timeout_ms, maintenance_chance=50_000
        )
    if url.startswith(("amqp://", "amqps://")):
        try:
            from dramatiq.brokers.rabbitmq import RabbitmqBroker
        except ImportError as exc:  # pragma: no cover - the rabbitmq extra is missing
            raise ConfigError("broker.url is amqp:// but pika is missing: pip install 'dispatch[rabbitmq]'") from exc
        return RabbitmqBroker(url=url, middleware=middleware)
    raise ConfigError(f"broker.url {url!r} is not memory://, redis://... or amqp://...")


class Queues:
    """The delivery actors of one dispatcher, bound to its broker."""

    def __init__(
        self,
        broker: dramatiq.Broker,
        channels: Iterable[str],
        deliver: Callable[[list[str]], None],
        *,
        batch_size: int = 50,
    ) -> None:
        self.broker = broker
        self.batch_size = max(1, batch_size)
        self.actors: dict[str, dramatiq.Actor] = {}
        for channel in channels:
            for queue, priority in ((channel, STATUTORY_PRIORITY), (f"{channel}.bulk", BULK_PRIORITY)):
                self.actors[queue] = dramatiq.Actor(
                    deliver,
                    broker=broker,
                    actor_name=actor_name(queue),
                    queue_name=queue,
                    priority=priority,
                    options={},
                )

    @property
    def queue_names(self) -> list[str]:
        return list(self.actors)

    def enqueue(self, queue: str, message_id: str, *, delay_ms: int | None = None) -> None:
        """Put one message id on ``queue``; ``delay_ms`` holds it until then."""
        self.enqueue_many([(queue, message_id, delay_ms)])

    def enqueue_many(self, items: list[tuple[str, str, int | None]]) -> None:
        """Enqueue (queue, message id, delay ms) triples as batches of ids; Redis gets one round trip.

        Ids with the same queue and the same delay (to the second) share a queue message.
        """
        groups: dict[tuple[str, int | None], list[str]] = {}
        for queue, message_id, delay in items:
            key = (queue, (delay // 1000) * 1000 if delay and delay > 0 else None)
            groups.setdefault(key, []).append(message_id)
        batches = [
            (queue, ids[start : start + self.batch_size], delay)
            for (queue, delay), ids in groups.items()
            for start in range(0, len(ids), self.batch_size)
        ]
        bulk = getattr(self.broker, "enqueue_many", None)
        if bulk is not None and len(batches) > 1:
            bulk([(self.actors[queue].message(ids), delay) for queue, ids, delay in batches])
            return
        for queue, ids, delay in batches:
            actor = self.actors[queue]
            if delay:
                actor.send_with_options(args=(ids,), delay=delay)
            else:
                actor.send(ids)


class RateLimits:
    """Per-channel messages-per-second limits, shared by all workers through the broker's Redis.

    Uses Dramatiq's :class:`WindowRateLimiter` (one-second windows). A worker that finds the
    window full waits for the next second rather than failing the message.
    """

    def __init__(self, limits: dict[str, int], broker: dramatiq.Broker) -> None:
        from dramatiq.rate_limits import WindowRateLimiter

        self.limiters = {}
        if not limits:
            return
        client = getattr(broker, "client", None)
        if client is not None:
            from dramatiq.rate_limits.backends import RedisBackend

            backend = RedisBackend(client=client)
        else:
            from dramatiq.rate_limits.backends import StubBackend

            backend = StubBackend()
        for channel, per_second in limits.items():
            if isinstance(per_second, bool) or not isinstance(per_second, int) or per_second < 1:
                raise ConfigError(f"broker.rate_limits.{channel} must be a positive whole number of messages/s")
            self.limiters[channel] = WindowRateLimiter(backend, f"dispatch-rate-{channel}", limit=per_second, window=1)

    def wait(self, channel: str, timeout: float = 60.0) -> None:
        """Block until ``channel`` may send one more message (or ``timeout`` seconds pass)."""
        limiter = self.limiters.get(channel)
        if limiter is None:
            return
        deadline = time.monotonic() + timeout
        while True:
            with limiter.acquire(raise_on_failure=False) as acquired:
                if acquired:
                    return
            if time.monotonic() > deadline:
                raise TransientDeliveryError(f"rate limit of {channel} still full after {timeout:.0f} s")
            time.sleep(min(0.05, 1.0 - (time.time() % 1.0) + 0.001))


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop where it is installed (the email and web extras bring it), else asyncio's.

    The delivery loop runs every send's protocol work; uvloop does the same with far less CPU.
    """
    if uvloop is None:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class AsyncRunner:
    """An event loop in its own thread, where channels' async ``deliver()`` calls run.

    Worker threads stay synchronous (they talk to the store) and hand only the
    network I/O to this loop, so connection pools are shared by all of them.
    """

    def __init__(self, name: str = "dispatch-delivery") -> None:
        self.loop = new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, Any]) -> Future:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float | None = None) -> Any:
        """Run ``coro`` on the loop and wait for its result; on timeout the task is cancelled.

        Cancelling matters: a send that is reported as failed must not still go out later.
        """
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except TimeoutError:  # concurrent.futures.TimeoutError is TimeoutError on 3.11
            future.cancel()
            raise

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()
