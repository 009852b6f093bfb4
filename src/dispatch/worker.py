"""Worker processes: consume the channel queues, deliver, renew leases and relay what the queue lost.

``dispatch worker`` starts ``processes`` processes with ``threads`` delivery threads
each (spawned: a worker is the ``dispatch`` command itself, never a user's script).
Every process renews the leases of what it holds; the first one also runs the
relay every ``relay_interval`` seconds (a claim is a compare-and-set, so an extra
relay could only cost work, never a duplicate send). SIGTERM or SIGINT stops
taking new work, lets what is in flight finish and exits.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger("dispatch.worker")


def run_worker(
    config_path: str | None,
    *,
    processes: int = 1,
    threads: int = 8,
    queues: Sequence[str] = (),
    relay_interval: float | None = None,
    overrides: dict[str, Any] | None = None,
) -> int:
    """Run worker processes until stopped; returns an exit status."""
    if processes <= 1:
        return serve_queues(config_path, threads, list(queues), relay_interval, overrides, index=0)
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(
            target=_child,
            args=(config_path, threads, list(queues), relay_interval, overrides, index),
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


def _child(config_path, threads, queues, relay_interval, overrides, index) -> None:
    from .logs import configure_logging

    configure_logging()  # the parent's format and level, handed down in the environment
    raise SystemExit(serve_queues(config_path, threads, queues, relay_interval, overrides, index=index))


def serve_queues(
    config_path: str | None,
    threads: int,
    queues: list[str],
    relay_interval: float | None,
    overrides: dict[str, Any] | None,
    *,
    index: int,
) -> int:
    """One worker process: deliver from ``queues`` until SIGTERM/SIGINT."""
    from .dispatcher import Dispatcher
    from .errors import InputError

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
            raise InputError(
                f"unknown queue(s) {', '.join(sorted(unknown))} (known: {', '.join(d.queues.queue_names)})"
            )
        interval = relay_interval if relay_interval is not None else d.config.worker.relay_interval
        if d.config.worker.metrics_port:
            _serve_metrics(d, d.config.worker.metrics_host, d.config.worker.metrics_port + index)
        if d.embedded:  # the in-process worker of the embedded default, fed from the store
            d.config.worker.threads = threads
            d.runtime.start_embedded()
        else:
            d.runtime.start_worker(sorted(names), threads, relay=index == 0, relay_interval=interval)
        logger.info(
            "worker %s: %d threads on %s (lease %.0f s, batches of %d)",
            os.getpid(),
            threads,
            ", ".join(sorted(names)),
            d.config.worker.lease,
            d.config.worker.batch_size,
        )
        stop.wait()
        logger.info("worker %s: stopping after what is in flight", os.getpid())
        d.runtime.stop_worker()
    finally:
        d.close(timeout=0)
    return 0


def _serve_metrics(d: Any, host: str, port: int) -> None:
    """``/metrics`` of this worker process for Prometheus (SPEC §12)."""
    from prometheus_client import start_http_server

    from .metrics import register_queue_collector

    register_queue_collector(d.store.queue_depth)
    start_http_server(port, addr=host)
