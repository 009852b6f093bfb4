"""Group commit: what many threads want written goes to the store in one transaction.

Every delivery thread of a worker process finishes sends at its own pace; written
one thread at a time, each write would carry only a message or two, and the
store's cost per transaction would bound the process. :class:`GroupCommit` lets
the threads share writes without a thread of its own: the first caller becomes
the *leader*, waits a few milliseconds for others to join, writes everything
gathered in one call and wakes the others; whoever arrived while it wrote leads
the next write. Each caller returns once its own items are written (or gets the
write's exception), so what a caller does next may rely on them being stored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class _Entry(Generic[T]):
    """One caller's items; ``wake`` is set once: when they are written, or when it is to lead."""

    __slots__ = ("error", "items", "lead", "wake", "written")

    def __init__(self, items: Sequence[T]) -> None:
        self.items = items
        self.wake = threading.Event()
        self.lead = False
        self.written = False
        self.error: BaseException | None = None


class GroupCommit(Generic[T]):
    """Writes the items of concurrent :meth:`write` calls together, through ``write_all``.

    ``wait`` is how long a leader gathers before writing (seconds); a write carries at
    most ``limit`` items unless one caller alone hands over more.
    """

    def __init__(self, write_all: Callable[[list[T]], None], *, wait: float = 0.01, limit: int = 512) -> None:
        self._write_all = write_all
        self.wait = wait
        self.limit = limit
        self._lock = threading.Lock()
        self._pending: list[_Entry[T]] = []
        self._leading = False
        #: Writes made and items written (for tests and metrics).
        self.writes = 0
        self.written = 0

    def write(self, items: Sequence[T], *, gather: bool = True) -> None:
        """Return once ``items`` are written (with whatever other threads handed over meanwhile).

        ``gather=False`` says no other thread is likely to join: if this call leads, it writes
        at once instead of waiting for company.
        """
        if not items:
            return
        entry = _Entry(items)
        with self._lock:
            self._pending.append(entry)
            if not self._leading:
                self._leading = entry.lead = True
        if not entry.lead:
            entry.wake.wait()
        if not entry.written:  # leading: the first caller, or handed the lead by the last writer
            self._lead(entry, gather)
        if entry.error is not None:
            raise entry.error

    def _lead(self, own: _Entry[T], gather: bool) -> None:
        """Gather, write, wake the writers; hand the lead to the first caller still waiting.

        Whatever happens here — the write fails, the thread is interrupted — every caller of
        this write is woken with the error and the lead is handed on: nobody waits for ever.
        """
        batch: list[_Entry[T]] = []
        error: BaseException | None = None
        try:
            if gather and self.wait > 0:
                self._gather()
            batch = self._take()
            self._write_all([item for entry in batch for item in entry.items])
            self.writes += 1
            self.written += sum(len(entry.items) for entry in batch)
        except BaseException as exc:  # every caller of this write learns of its failure
            error = exc
            if own not in batch:  # stopped before taking its items: they were not written either
                with self._lock:
                    if own in self._pending:
                        self._pending.remove(own)
                batch.append(own)
        finally:
            self._hand_over(batch, error)

    def _gather(self) -> None:
        """Wait ``wait`` seconds for other callers, or until ``limit`` items are pending."""
        deadline = time.monotonic() + self.wait
        while (left := deadline - time.monotonic()) > 0:
            with self._lock:
                if sum(len(e.items) for e in self._pending) >= self.limit:
                    return
            time.sleep(min(0.002, left))

    def _take(self) -> list[_Entry[T]]:
        """The pending calls of the next write, oldest first (the leader's own is the oldest)."""
        batch: list[_Entry[T]] = []
        count = 0
        with self._lock:
            while self._pending and (not batch or count + len(self._pending[0].items) <= self.limit):
                entry = self._pending.pop(0)
                batch.append(entry)
                count += len(entry.items)
        return batch

    def _hand_over(self, batch: list[_Entry[T]], error: BaseException | None) -> None:
        with self._lock:
            successor = self._pending[0] if self._pending else None
            if successor is None:
                self._leading = False
            else:
                successor.lead = True
        for entry in batch:
            entry.error = error
            entry.written = True
            entry.wake.set()
        if successor is not None:
            successor.wake.set()


__all__ = ["GroupCommit"]
