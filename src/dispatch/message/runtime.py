"""Everything a dispatcher starts and must stop: the store, threads, the embedded worker, the relay.

One :class:`Runtime` per :class:`~dispatch.Dispatcher` owns every resource that
outlives a call — the store connection pool, the delivery event loop thread, the
in-process Dramatiq worker of the embedded default and its feeder, a worker's
heartbeat (lease renewal), the journal flusher and the relay — starts each on
first need and stops all of them in :meth:`close`. Nothing here starts as a side
effect of reading a property or of ``decide()``.

Handing messages to the queue is here too, because the embedded default's
in-memory queue is capped: at most :data:`QUEUE_CAP` ids wait in memory and the
rest stay in the store until the feeder hands them over.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import dramatiq

from ..clock import now_utc
from ..config import Config
from ..lifecycle import Lifecycle
from ..queue import AsyncRunner, Queues, queue_name
from ..store import Store, is_outage
from .journal import OutcomeJournal, StoreHealth

if TYPE_CHECKING:
    from ..events import EventBus
    from ..webhooks import Webhooks

logger = logging.getLogger("dispatch.runtime")

#: Most message ids held in the embedded default's in-memory queue at once.
QUEUE_CAP = 20_000
#: Seconds between two looks for scheduled campaigns whose moment has come.
RELEASE_INTERVAL = 2.0
#: The feeder only takes messages never handed to the queue (others are in memory already).
NEVER_ENQUEUED = timedelta(days=36_500)


class Runtime:
    """Owns the store and every thread of one dispatcher (see the module docstring)."""

    def __init__(self, config: Config, open_store: Callable[[bool], Store | None]) -> None:
        self.config = config
        self.embedded = config.broker.url.startswith("memory:")
        self.lease = timedelta(seconds=config.worker.lease)
        self.health = StoreHealth()
        self.journal = OutcomeJournal(config.path(config.worker.journal), self.health)
        self._open_store = open_store
        self._store: Store | None = None
        self._reader: Store | None = None
        self._runner: AsyncRunner | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._worker: dramatiq.Worker | None = None
        self._services = False
        self.broker: dramatiq.Broker | None = None
        self.queues: Queues | None = None
        self.lifecycle: Lifecycle | None = None
        self._holding: Callable[[], int] = lambda: 0
        self._worker_id = ""
        #: Releases scheduled campaigns that are due (:func:`dispatch.scheduled.install_releaser`); run
        #: every :data:`RELEASE_INTERVAL` seconds by the embedded worker and by a relaying worker process.
        self.releaser: Callable[[], None] | None = None
        #: The webhook outbox and sender (dispatch.webhooks), when [webhooks] lists endpoints.
        self.webhooks: Webhooks | None = None

    def attach(
        self,
        broker: dramatiq.Broker,
        queues: Queues,
        lifecycle: Lifecycle,
        deliverer: Any,
        events: EventBus | None = None,
    ) -> None:
        """Wire the queue side (built after the runtime, since the deliverer needs the store getter).

        With ``[webhooks] endpoints``, every event of ``events`` (an EventBus) goes to the webhook outbox.
        """
        self.broker, self.queues, self.lifecycle = broker, queues, lifecycle
        self._holding = lambda: deliverer.holding
        self._worker_id = deliverer.worker
        if events is not None and self.config.webhooks.endpoints:
            from ..webhooks import Webhooks

            self.webhooks = Webhooks(
                self.config.webhooks, lambda: self.store, self.health, self.config.path(self.config.worker.journal)
            )
            events.subscribe(self.webhooks.add)

    def start_webhooks(self) -> None:
        """Start POSTing the webhook outbox (workers, ``serve``, the embedded worker); no-op without endpoints."""
        if self.webhooks is not None:
            self.webhooks.start()

    # -- the store -------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        """The store, opened (and migrated) on first use."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = self._open_store(True)
        return self._store

    def existing_store(self) -> Store | None:
        """The store if it exists already — never creates one (``decide()`` reads, never writes)."""
        if self._store is not None:
            return self._store
        with self._lock:
            if self._reader is None:
                self._reader = self._open_store(False)
            return self._reader

    @property
    def runner(self) -> AsyncRunner:
        """The event loop thread where channels deliver, started on first use."""
        if self._runner is None:
            with self._lock:
                if self._runner is None:
                    self._runner = AsyncRunner()
        return self._runner

    # -- handing messages to the queue ----------------------------------------------------

    def enqueue(self, rows: Sequence[Any], now: datetime, *, fresh: bool = True) -> None:
        """Hand stored messages (records or relay rows: id, queue, send_after) to the queue.

        ``fresh`` rows were stored with ``enqueued_at`` set already (saving an UPDATE per
        message); if the broker refuses them, that mark is cleared so the relay takes them.
        Relay rows are marked once they are enqueued. A failure leaves them for the relay.
        """
        assert self.queues is not None
        items = []
        for row in rows:
            send_after, mid, queue = _get(row, "send_after"), _get(row, "id"), _get(row, "queue")
            delay = _delay_ms(send_after, now)
            if self.embedded and delay:
                continue  # the embedded feeder hands it over when it is due
            items.append((queue, mid, delay))
        if not items:
            return
        leftovers = False
        if self.embedded:
            if not self.embedded_running:
                self.start_embedded(leftovers=False)
                # What an earlier run left goes after these rows are marked (not handed over twice).
                leftovers = self.embedded_running
            room = max(0, QUEUE_CAP - self.in_memory())
            if len(items) > room:  # the rest waits in the store; the feeder tops the queue up
                items = items[:room]
            fresh = False  # embedded rows are stored as not yet handed over
            if not items:
                return
        ids = [mid for _, mid, _ in items]
        try:
            self.queues.enqueue_many(items)
        except Exception as exc:  # the broker is down: the store has them, the relay retries
            logger.warning("could not enqueue %d message(s), the relay will retry: %s", len(items), type(exc).__name__)
            if fresh:
                self.store.clear_enqueued(ids)
            return
        if not fresh:
            self.store.mark_enqueued(ids, now_utc())
        if leftovers:
            self.relay(stuck_after=timedelta(0))

    def relay(
        self,
        now: datetime | None = None,
        *,
        stuck_after: timedelta | None = None,
        limit: int = 5000,
        channels: Sequence[str] = (),
    ) -> int:
        """Re-enqueue what the queue may have lost, and release claims whose lease ran out.

        Claims are released only once this process has seen the store healthy for a whole
        lease, so a worker that kept outcomes through an outage writes them first.
        """
        now = now or now_utc()
        if stuck_after is None:
            stuck_after = timedelta(seconds=self.config.broker.stuck_after)
        store = self.store
        if self.health.healthy_for() >= self.lease.total_seconds():
            if self._recover_accepted():  # what a killed worker on this machine knew was sent: before its claims go
                self._flush_journal()
            assert self.lifecycle is not None
            released = self.lifecycle.release_expired(store, now)
            if released:
                logger.warning("%d claim(s) of a stopped worker expired; back in the queue", len(released))
        horizon = timedelta(0) if self.embedded else timedelta(days=6)
        rows = store.due_for_relay(now, stuck_after=stuck_after, horizon=horizon, limit=limit)
        if channels:
            rows = [r for r in rows if r["channel"] in channels]
        for row in rows:
            row["queue"] = row["queue"] or queue_name(row["channel"], row["category"])
        if rows:
            logger.debug("relay: handing %d message(s) to the queue", len(rows))
            self.enqueue(rows, now, fresh=False)
        return len(rows)

    # -- the embedded worker ----------------------------------------------------------------

    @property
    def embedded_running(self) -> bool:
        return self._worker is not None

    def start_embedded(self, *, leftovers: bool = True) -> None:
        """Start the in-process worker of the embedded default, its feeder and services (once).

        With ``leftovers``, what an earlier run left in the store is handed over at once.
        """
        if self._worker is not None:
            return
        with self._lock:
            if self._worker is not None:
                return
            assert self.broker is not None
            worker = dramatiq.Worker(self.broker, worker_threads=self.config.worker.threads, worker_timeout=100)
            worker.start()
            self._worker = worker
            self._start_services()
            self._spawn("dispatch-feeder", self._feed_loop, 0.25)
            self._start_releaser()
        if leftovers:  # an earlier run's queue is gone with its process: what it left in the store goes now
            self.relay(stuck_after=timedelta(0))

    def in_memory(self) -> int:
        """Message ids waiting in the embedded default's in-memory queues."""
        return sum(q.qsize() for q in getattr(self.broker, "queues", {}).values())

    def feed(self) -> int:
        """Hand never-enqueued messages that are due to the in-memory queue, as far as there is room."""
        room = QUEUE_CAP - self.in_memory()
        if room < QUEUE_CAP // 2:
            return 0
        return self.relay(stuck_after=NEVER_ENQUEUED, limit=room)

    def _feed_loop(self) -> None:
        try:
            self.feed()
        except Exception as exc:  # the store may be busy or down; the next round tries again
            if not is_outage(exc):
                logger.exception("feeding the in-memory queue failed")

    def join(self, timeout: float | None = None) -> bool:
        """Embedded default: wait until nothing due is left in the store (or ``timeout`` passes)."""
        if not self.embedded:
            return True
        if self._worker is None:
            existing = self.existing_store()
            if existing is None or existing.pending_counts(now_utc())[0] == 0:
                return True
            self.start_embedded()  # an earlier run left messages: this run delivers them
        assert self.broker is not None and self.queues is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        last_due = None
        while True:
            fed = self.relay(stuck_after=NEVER_ENQUEUED, limit=max(1, QUEUE_CAP - self.in_memory()))
            try:
                for queue in self.queues.queue_names:
                    remaining = None if deadline is None else max(1, int((deadline - time.monotonic()) * 1000))
                    self.broker.join(queue, timeout=remaining, fail_fast=False)
                self._worker.join()
            except dramatiq.QueueJoinTimeout:
                return False
            now = now_utc()
            due, _held = self.store.pending_counts(now)
            busy = self._holding() > 0 or len(self.journal) > 0
            if due == 0 and not busy:
                retry_at = self.store.next_retry_at(now)  # a transient failure waiting for its next try
                if retry_at is None or (
                    deadline is not None and time.monotonic() + (retry_at - now).total_seconds() > deadline
                ):
                    return True
                time.sleep(min(1.0, max(0.05, (retry_at - now).total_seconds())))
                continue
            if fed == 0 and due == last_due and not busy:
                return False  # what is left is not ours to deliver now (claimed elsewhere, no channel)
            if fed == 0 and due == last_due:
                time.sleep(0.2)
            last_due = due
            if deadline is not None and time.monotonic() > deadline:
                return False

    # -- worker services: heartbeat, journal, relay -------------------------------------------

    def _start_services(self) -> None:
        """Lease renewal and the journal flusher, for any process that delivers."""
        if self._services:
            return
        self._services = True
        loaded = self.journal.load()
        loaded += self._recover_accepted()
        if loaded:
            self._flush_journal()
        self._spawn("dispatch-heartbeat", self._heartbeat, max(1.0, self.lease.total_seconds() / 3))
        self._spawn("dispatch-journal", self._flush_journal, 2.0)
        self.start_webhooks()

    def start_worker(self, queues: Sequence[str], threads: int, *, relay: bool, relay_interval: float) -> None:
        """A ``dispatch worker`` process: consume ``queues`` with ``threads`` threads, renew leases, relay."""
        assert self.broker is not None
        with self._lock:
            self._start_services()
            worker = dramatiq.Worker(self.broker, queues=set(queues), worker_threads=threads)
            worker.start()
            self._worker = worker
            if relay:
                self._spawn("dispatch-relay", self._relay_round, relay_interval)
                self._start_releaser(min(relay_interval, RELEASE_INTERVAL))

    def _start_releaser(self, interval: float | None = None) -> None:
        if self.releaser is not None:
            self._spawn("dispatch-release", self._release_round, interval or RELEASE_INTERVAL)

    def _release_round(self) -> None:
        assert self.releaser is not None
        try:
            self.releaser()
            self.health.ok()
        except Exception as exc:
            if not is_outage(exc):
                raise
            self.health.failed(exc, "releasing scheduled campaigns")

    def _heartbeat(self) -> None:
        if self._holding() == 0 and self._store is None:
            return
        try:
            self.store.renew_leases(self._worker_id, now_utc(), self.lease)
            self.health.ok()
        except Exception as exc:
            if not is_outage(exc):
                raise
            self.health.failed(exc, "renewing leases")

    def _recover_accepted(self) -> int:
        """Take the accepted outcomes logged by worker processes of this machine that are gone."""
        try:
            return self.journal.accepted.recover(self.journal, self.store)
        except Exception as exc:
            if not is_outage(exc):
                raise
            self.health.failed(exc, "reading the accepted-outcome log")
            return 0

    def _flush_journal(self) -> None:
        if len(self.journal) and self.lifecycle is not None:
            try:
                self.journal.flush(self.store, self.lifecycle)
            except Exception as exc:
                if not is_outage(exc):
                    raise
                self.health.failed(exc, "writing delivery outcomes")

    def _relay_round(self) -> None:
        try:
            self.relay()
            self.health.ok()
        except Exception as exc:
            if not is_outage(exc):
                raise
            self.health.failed(exc, "relaying")

    def _spawn(self, name: str, step: Callable[[], None], interval: float) -> None:
        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    step()
                except Exception:  # a failing round must not end the loop; the next one tries again
                    logger.exception("%s round failed", name)

        thread = threading.Thread(target=loop, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # -- shutting down ---------------------------------------------------------------------

    def stop_worker(self, timeout_ms: int = 30_000) -> None:
        """Stop consuming; what is in flight finishes (the worker joins its threads)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop(timeout=timeout_ms)

    def close(self, channels: Sequence[Any]) -> None:
        """Stop every thread, let channels finish their batches, keep undelivered outcomes, release the store."""
        self.stop_worker()
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        for channel in channels:
            try:
                channel.finish_batch()
            except Exception:
                logger.exception("channel %s failed to finish its batch", channel.name)
        if self._runner is not None:
            for channel in channels:
                try:
                    self._runner.run(channel.aclose(), timeout=30)
                except Exception:
                    logger.exception("channel %s failed to close", channel.name)
            self._runner.stop()
            self._runner = None
        if len(self.journal):
            self._flush_journal()
            self.journal.dump()
        self.journal.accepted.close()
        if self.webhooks is not None:
            try:
                self.webhooks.close()
            except Exception:  # the store and broker are released all the same
                logger.exception("closing the webhook sender failed")
        if self.broker is not None:
            self.broker.close()
        for store in {id(s): s for s in (self._store, self._reader) if s is not None}.values():
            store.close()


def _get(row: Any, name: str) -> Any:
    return row[name] if isinstance(row, dict) else getattr(row, name)


def _delay_ms(send_after: datetime | None, now: datetime) -> int | None:
    if send_after is None:
        return None
    delta = (send_after - now).total_seconds()
    return int(delta * 1000) if delta > 1 else None


__all__ = ["QUEUE_CAP", "RELEASE_INTERVAL", "Runtime"]
