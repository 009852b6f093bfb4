"""The embedded default's in-process worker, fed from the store.

With ``memory://`` the queue lives in this process's memory, so a million-message
campaign must not be poured into it at once. At most :data:`QUEUE_CAP` messages are
handed to the in-memory queue; the rest wait in the store (never-enqueued) and a
feeder thread tops the queue up as the worker drains it. :meth:`EmbeddedRunner.join`
waits until the store has nothing due left, so ``close()`` still means "delivered,
or safely stored for the next run".
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING

import dramatiq

from .store import now_utc

if TYPE_CHECKING:
    from .dispatcher import Dispatcher

logger = logging.getLogger("dispatch.embedded")

#: Most messages held in the in-memory queue at once.
QUEUE_CAP = 20_000
#: Only messages never handed to the queue are fed (others are already in memory).
NEVER_ENQUEUED = timedelta(days=36_500)


class EmbeddedRunner:
    """Starts the in-process Dramatiq worker and keeps its queue fed from the store."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.d = dispatcher
        self.worker: dramatiq.Worker | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._feeder: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.worker is not None

    def start(self) -> None:
        if self.worker is not None:
            return
        with self._lock:
            if self.worker is None:
                worker = dramatiq.Worker(self.d.broker, worker_threads=self.d.config.worker.threads, worker_timeout=100)
                worker.start()
                self.worker = worker

    def in_memory(self) -> int:
        """Messages waiting in the in-memory queues (delayed ones included)."""
        return sum(queue.qsize() for queue in getattr(self.d.broker, "queues", {}).values())

    def room(self) -> int:
        return max(0, QUEUE_CAP - self.in_memory())

    def overflowed(self) -> None:
        """Some messages stayed in the store: keep feeding them in as the queue drains."""
        self.start()
        with self._lock:
            if self._feeder is None:
                self._feeder = threading.Thread(target=self._feed_loop, name="dispatch-feeder", daemon=True)
                self._feeder.start()

    def feed(self, *, force: bool = False) -> int:
        """Move never-enqueued messages from the store into the queue, as far as there is room."""
        room = self.room()
        if room == 0 or (not force and room < QUEUE_CAP // 2):
            return 0
        return self.d.relay(stuck_after=NEVER_ENQUEUED, limit=room)

    def _feed_loop(self) -> None:
        while not self._stop.wait(0.25):
            try:
                self.feed()
            except Exception:  # the store may be busy or closing; the next round tries again
                logger.exception("feeding the in-memory queue failed")

    def join(self, timeout: float | None = None) -> bool:
        """Wait until nothing due is left in the store (or ``timeout`` seconds pass)."""
        if self.worker is None:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        last_due = None
        while True:
            fed = self.feed(force=True)
            try:
                for queue in self.d.queues.queue_names:
                    remaining = None if deadline is None else max(1, int((deadline - time.monotonic()) * 1000))
                    self.d.broker.join(queue, timeout=remaining, fail_fast=False)
                self.worker.join()
            except dramatiq.QueueJoinTimeout:
                return False
            due, _held = self.d.store.pending_counts(now_utc())
            if due == 0:
                return True
            if fed == 0 and due == last_due:
                return False  # what is left is not ours to deliver now (claimed elsewhere, no channel)
            last_due = due
            if deadline is not None and time.monotonic() > deadline:
                return False

    def stop(self) -> None:
        self._stop.set()
        if self._feeder is not None:
            self._feeder.join(timeout=5)
        if self.worker is not None:
            self.worker.stop(timeout=10_000)
            self.worker = None
