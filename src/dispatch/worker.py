"""Worker processes: consume the channel queues, deliver, and relay what the queue lost.

``dispatch worker`` starts ``processes`` processes with ``threads`` delivery threads
each. The first process also runs the relay every ``relay_interval`` seconds (the
claim is a compare-and-set, so an extra relay would only cost work, never a
duplicate send). SIGTERM or SIGINT stops a worker after its current messages.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Sequence
from typing import Any

import dramatiq

logger = logging.getLogger("dispatch.worker")


def run_worker(
    config_path: str | None,
    *,
    processes: int = 1,
    threads: int = 8,
    queues: Sequence[str] = (),
    relay_interval: float = 30.0,
    overrides: dict[str, Any] | None = None,
) -> int:
    """Run worker processes until stopped; returns an exit status."""
    if processes <= 1:
        return _serve(config_path, threads, list(queues), relay_interval, overrides, relay=True)
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(
            target=_child,
            args=(config_path, threads, list(queues), relay_interval, overrides, index == 0),
            name=f"dispatch-worker-{index}",
        )
        for index in range(processes)
    ]
    for child in children:
        child.start()

    def forward(signum, _frame):
        for child in children:
            if child.is_alive() and child.pid:
                os.kill(child.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    for child in children:
        child.join()
        status = status or (child.exitcode or 0)
    return status


def _child(config_path, threads, queues, relay_interval, overrides, relay) -> None:
    from .logs import configure_logging

    configure_logging()  # the parent's format and level, handed down in the environment
    raise SystemExit(_serve(config_path, threads, queues, relay_interval, overrides, relay=relay))


def _serve(config_path, threads, queues, relay_interval, overrides, *, relay: bool) -> int:
    from .dispatcher import Dispatcher

    stop = threading.Event()

    def on_signal(_signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    d = Dispatcher.from_config(config_path, overrides=overrides)
    try:
        names = set(queues) if queues else set(d.queues.queue_names)
        unknown = names - set(d.queues.queue_names)
        if unknown:
            from .errors import InputError

            raise InputError(
                f"unknown queue(s) {', '.join(sorted(unknown))} (known: {', '.join(d.queues.queue_names)})"
            )
        if d.embedded:  # the in-process worker of the embedded default, fed from the store
            d.config.worker.threads = threads
            d._embedded.start()
            worker = None
        else:
            worker = dramatiq.Worker(d.broker, queues=names, worker_threads=threads)
            worker.start()
        d.store  # noqa: B018 - open (and migrate); embedded mode relays leftovers at once
        logger.info("worker %s: %d threads on %s", os.getpid(), threads, ", ".join(sorted(names)))
        while not stop.is_set():
            if relay:
                try:
                    d.relay() if worker is not None else d._embedded.feed(force=True)
                except Exception:  # a broken relay must not stop delivery; it is retried next round
                    logger.exception("relay failed")
            stop.wait(relay_interval)
        if worker is not None:
            worker.stop(timeout=30_000)
    finally:
        d.close()
    return 0
