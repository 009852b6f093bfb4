"""A few daemon threads that typeset letters for the delivery event loop.

Not a ``concurrent.futures`` pool: those refuse new work once the interpreter has
begun to exit, and the embedded default delivers what is still queued from an
``atexit`` hook (a script that calls ``dispatch.dispatch`` and ends). Not processes
either: a spawned process re-runs the user's ``__main__`` when it has no main guard.
Typst releases the GIL while it works, so threads share the cores.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


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
        while True:
            item = self._jobs.get()
            if item is None:
                return
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


def _settle(future: asyncio.Future[Any] | concurrent.futures.Future[Any], outcome: tuple[str, Any]) -> None:
    if future.cancelled():
        return
    kind, value = outcome
    if kind == "result":
        future.set_result(value)
    else:
        future.set_exception(value)
