"""A few daemon threads that typeset letters for the delivery event loop.

Not a ``concurrent.futures`` pool: those refuse new work once the interpreter has
begun to exit, and the embedded default delivers what is still queued from an
``atexit`` hook (a script that calls ``dispatch.dispatch`` and ends). Not processes
either: a spawned process re-runs the user's ``__main__`` when it has no main guard.
Typst releases the GIL while it works, so threads share the cores.

Letters handed over with :meth:`Typesetters.run_together` are set together: a thread
that takes one also takes the others already waiting (up to ``limit``, waiting
:data:`LINGER` seconds at most for more to arrive) and sets them in one go — one Typst
compile for many letters costs about half as much per letter as one compile each.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
P = TypeVar("P")

#: How long a thread that has taken letters to set together waits for more to arrive.
LINGER = 0.002


class _Together:
    """A job set together with others of the same ``setter``: ``prepare()`` on the thread,
    then ``setter([prepared, ...])``, which returns one result (or exception) per job."""

    __slots__ = ("future", "limit", "loop", "prepare", "setter")

    def __init__(self, prepare, setter, limit, loop, future) -> None:
        self.prepare, self.setter, self.limit, self.loop, self.future = prepare, setter, limit, loop, future


class Typesetters:
    """``await typesetters.run(job)`` runs ``job()`` on one of ``count`` daemon threads."""

    def __init__(self, count: int) -> None:
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"letter-typeset-{i}", daemon=True) for i in range(max(1, count))
        ]
        for thread in self._threads:
            thread.start()

    def run(self, job: Callable[[], T]) -> asyncio.Future[T]:
        """A future (of the running loop) for ``job()``'s result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((job, loop, future))
        return future

    def run_together(
        self,
        prepare: Callable[[], P],
        setter: Callable[[list[P]], list[T | BaseException]],
        *,
        limit: int = 50,
    ) -> asyncio.Future[T]:
        """A future (of the running loop) for this job's part of ``setter([prepare(), ...])``.

        Jobs with the same ``setter`` that wait at the same time are set in one call of at
        most ``limit`` jobs; ``prepare`` runs on the thread too (it may be slow Python).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Together(prepare, setter, max(1, limit), loop, future))
        return future

    def submit(self, job: Callable[[], T]) -> concurrent.futures.Future[T]:
        """A thread-safe future for ``job()``'s result (for work no event loop waits for)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._jobs.put((job, None, future))
        return future

    def close(self) -> None:
        """Let the threads end once the jobs already handed over are done."""
        for _ in self._threads:
            self._jobs.put(None)

    def _work(self) -> None:
        later: list[Any] = []
        while True:
            item = later.pop(0) if later else self._jobs.get()
            if item is None:
                if later:  # the jobs taken along with a group still run first
                    self._jobs.put(None)
                    continue
                return
            if isinstance(item, _Together):
                later.extend(self._set_together(item))
                continue
            job, loop, future = item
            try:
                outcome: tuple[str, Any] = ("result", job())
            except BaseException as exc:  # handed to whoever waits for the future
                outcome = ("exception", exc)
            if loop is None:
                _settle(future, outcome)
                continue
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for this letter any more
                loop.call_soon_threadsafe(_settle, future, outcome)

    def _set_together(self, first: _Together) -> list[Any]:
        """Set ``first`` with the jobs of its setter waiting now; the other jobs taken are returned."""
        group, others = [first], []
        deadline = time.monotonic() + LINGER
        while len(group) < first.limit:
            try:
                wait = deadline - time.monotonic()
                item = self._jobs.get_nowait() if wait <= 0 else self._jobs.get(timeout=wait)
            except queue.Empty:
                break
            if isinstance(item, _Together) and item.setter == first.setter:  # a bound method is made anew each time
                group.append(item)
            else:
                others.append(item)
                if item is None:  # closing: set what we have
                    break
        prepared, ready = [], []
        for job in group:
            try:
                prepared.append(job.prepare())
                ready.append(job)
            except BaseException as exc:  # this letter only
                _hand_over(job.loop, job.future, ("exception", exc))
        if ready:
            try:
                results = first.setter(prepared)
            except BaseException as exc:
                results = [exc] * len(ready)
            for job, result in zip(ready, results, strict=True):
                kind = "exception" if isinstance(result, BaseException) else "result"
                _hand_over(job.loop, job.future, (kind, result))
        return others


def _hand_over(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], outcome: tuple[str, Any]) -> None:
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for this letter any more
        loop.call_soon_threadsafe(_settle, future, outcome)


def _settle(future: asyncio.Future[Any] | concurrent.futures.Future[Any], outcome: tuple[str, Any]) -> None:
    if future.cancelled():
        return
    kind, value = outcome
    if kind == "result":
        future.set_result(value)
    else:
        future.set_exception(value)
