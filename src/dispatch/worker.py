"""Worker processes: consume the channel queues, deliver, renew leases and relay what the queue lost.

``dispatch worker`` starts ``processes`` processes with ``threads`` delivery threads
each (spawned: a worker is the ``dispatch`` command itself, never a user's script).
Every process renews the leases of what it holds; the first one also runs the
relay every ``relay_interval`` seconds (a claim is a compare-and-set, so an extra
relay could only cost work, never a duplicate send) and releases scheduled
campaigns when their moment comes. SIGTERM or SIGINT stops taking new work, lets
what is in flight finish and exits with status 0.

An operator sees one start line on standard error (broker, store, queues,
processes × threads, version; never a password). While the broker or the store
cannot be reached — at start or later — the worker says so in one line per outage,
retries with back-off and says when it is back; Dramatiq's own per-consumer
connection errors are folded into that line.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from .scheduled import install_releaser

logger = logging.getLogger("dispatch.worker")

#: Longest pause between two attempts to reach the broker or the store.
MOST_BACKOFF = 30.0
#: Dramatiq's consumer log lines that one outage line replaces.
_CONSUMER_NOISE = ("Consumer encountered a connection error", "Restarting consumer in")
#: The relay's line when the broker refuses messages: told already while an outage is known.
_RELAY_NOISE = "could not enqueue"


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
    from .dispatcher import Dispatcher

    stop = _stop_on_signals()
    d = Dispatcher.from_config(config_path, overrides=overrides)
    try:
        names = _queue_names(d, queues)
        announce(start_line(d, names, processes, threads))
        if not wait_until_reachable(d, stop):
            return 0  # stopped while waiting
        if processes <= 1:
            return _serve(d, stop, threads, names, relay_interval, index=0)
    finally:
        d.close(timeout=0)  # the children open their own
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(
            target=_child,
            args=(config_path, threads, names, relay_interval, overrides, index),
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

    stop = _stop_on_signals()
    d = Dispatcher.from_config(config_path, overrides=overrides)
    if not wait_until_reachable(d, stop):
        d.close(timeout=0)
        return 0
    return _serve(d, stop, threads, _queue_names(d, queues), relay_interval, index=index)


def _serve(
    d: Any, stop: StopSignal, threads: int, names: list[str], relay_interval: float | None, *, index: int
) -> int:
    try:
        interval = relay_interval if relay_interval is not None else d.config.worker.relay_interval
        if d.config.worker.metrics_port:
            serve_metrics(d, d.config.worker.metrics_host, d.config.worker.metrics_port + index)
        watch = BrokerWatch(d.broker, stop)
        watch.quiet_consumers(names)
        install_releaser(d.intake)  # scheduled campaigns are released by the relaying process
        if d.embedded:  # the in-process worker of the embedded default, fed from the store
            d.config.worker.threads = threads
            d.runtime.start_embedded()
        else:
            d.runtime.start_worker(names, threads, relay=index == 0, relay_interval=interval)
        logger.info(
            "worker %s: %d threads on %s (lease %.0f s, batches of %d)",
            os.getpid(),
            threads,
            ", ".join(names),
            d.config.worker.lease,
            d.config.worker.batch_size,
        )
        stop.wait()
        logger.info("worker %s: stopping after what is in flight", os.getpid())
        d.runtime.stop_worker()
    finally:
        d.close(timeout=0)
    return 0


class StopSignal:
    """Set by SIGTERM or SIGINT; waited on like a :class:`threading.Event`.

    The signal handler only flips a flag. Setting an Event there could deadlock: the
    handler runs in the main thread, maybe while that very thread holds the Event's
    lock (a second signal arriving as a wait ends: systemd, Kubernetes and a process
    group all send more than one). :meth:`wait` and :meth:`is_set` notice the flag
    within a tenth of a second and pass it on to the Event that other threads see.
    """

    #: Seconds between two looks at the flag while waiting.
    POLL = 0.1

    def __init__(self) -> None:
        self._signalled = False
        self._event = threading.Event()

    def handle(self, _signum: int, _frame: Any) -> None:
        """The signal handler: no lock, no I/O."""
        self._signalled = True

    def is_set(self) -> bool:
        if self._signalled and not self._event.is_set():
            self._event.set()  # outside the handler: taking the Event's lock is safe here
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Like ``Event.wait``: True once set, False when ``timeout`` seconds passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = self.POLL if deadline is None else min(self.POLL, deadline - time.monotonic())
            if left <= 0:
                return False
            self._event.wait(left)
        return True


def _stop_on_signals() -> StopSignal:
    stop = StopSignal()
    signal.signal(signal.SIGTERM, stop.handle)
    signal.signal(signal.SIGINT, stop.handle)
    return stop


def _queue_names(d: Any, queues: Sequence[str]) -> list[str]:
    from .errors import InputError

    names = set(queues) if queues else set(d.queues.queue_names)
    unknown = names - set(d.queues.queue_names)
    if unknown:
        raise InputError(f"unknown queue(s) {', '.join(sorted(unknown))} (known: {', '.join(d.queues.queue_names)})")
    return sorted(names)


# -- what the operator sees -------------------------------------------------------------------


def start_line(d: Any, queues: Sequence[str], processes: int, threads: int) -> str:
    """One line: version, broker, store (no passwords), queues, processes × threads, metrics."""
    from importlib.metadata import PackageNotFoundError, version

    from .store import safe_url

    try:
        release = version("dispatch")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        release = "?"
    worker = d.config.worker
    broker = "in-process (embedded default)" if d.embedded else safe_url(d.config.broker.url)
    line = (
        f"dispatch {release} worker: broker {broker} · store {safe_url(d.config.store.url)} · "
        f"queues {', '.join(queues)} · {processes} process{'es' if processes != 1 else ''} × {threads} threads"
    )
    if worker.metrics_port:
        ports = f"{worker.metrics_port}" + (f"-{worker.metrics_port + processes - 1}" if processes > 1 else "")
        line += f" · metrics http://{worker.metrics_host}:{ports}/metrics"
    return line


def announce(line: str) -> None:
    """Write ``line`` to standard error whatever the log level (a log record when logs are JSON)."""
    from .logs import FORMAT_ENV

    if os.environ.get(FORMAT_ENV) == "json":
        logger.warning(line)
    else:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def probe_broker(broker: Any) -> None:
    """Raise if the broker cannot be reached (Redis: PING; RabbitMQ: a connection); in-process: nothing."""
    client = getattr(broker, "client", None)
    if client is not None:
        client.ping()
    elif type(broker).__name__ == "RabbitmqBroker":
        broker.connection.process_data_events(0)


def wait_until_reachable(
    d: Any, stop: StopSignal | threading.Event, *, first: float = 1.0, most: float = MOST_BACKOFF
) -> bool:
    """Wait (with back-off) until the broker and the store answer; one line when each goes and comes back.

    Returns False if ``stop`` was set first. A store that answers but fails otherwise
    (a migration error, say) raises: waiting would not mend it.
    """
    from sqlalchemy.exc import OperationalError

    from .errors import StoreError
    from .store import safe_url

    checks: dict[str, tuple[str, Callable[[], Any], tuple[type[BaseException], ...]]] = {
        "broker": (
            "in-process" if d.embedded else safe_url(d.config.broker.url),
            lambda: probe_broker(d.broker),
            (Exception,),
        ),
        "store": (safe_url(d.config.store.url), lambda: d.runtime.store, (StoreError, OperationalError)),
    }
    down: dict[str, float] = {}
    delay = first
    while not stop.is_set():
        failing: dict[str, BaseException] = {}
        for what, (_where, probe, outages) in checks.items():
            try:
                probe()
            except outages as exc:
                failing[what] = exc
        for what, exc in failing.items():
            if what not in down:
                down[what] = time.monotonic()
                logger.warning(
                    "%s %s unreachable (%s); waiting, retrying with back-off up to %.0f s",
                    what,
                    checks[what][0],
                    _reason(exc),
                    most,
                )
        for what in [w for w in down if w not in failing]:
            logger.warning("%s reachable after %.0f s", what, time.monotonic() - down.pop(what))
        if not failing:
            return True
        stop.wait(delay)
        delay = min(most, delay * 2)
    return False


class BrokerWatch(logging.Filter):
    """Folds Dramatiq's per-consumer connection errors into one line per broker outage.

    Installed as a filter on the consumer threads' loggers: the first connection error
    of an outage logs one warning, the rest are dropped; a thread probes the broker
    every few seconds while it is down and logs once when it answers again.
    """

    def __init__(self, broker: Any, stop: StopSignal | threading.Event, interval: float = 3.0) -> None:
        super().__init__()
        self.broker = broker
        self.stop = stop
        self.interval = interval
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._thread: threading.Thread | None = None

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def quiet_consumers(self, queues: Sequence[str]) -> None:
        """Filter the loggers of the consumers of ``queues`` (and their delay queues)."""
        from dramatiq.common import dq_name

        for queue in queues:
            for name in (queue, dq_name(queue)):
                logging.getLogger(f"dramatiq.worker.ConsumerThread({name})").addFilter(self)
        logging.getLogger("dispatch.runtime").addFilter(self)  # the relay's "could not enqueue", while down

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith(_RELAY_NOISE):
            return not self.down
        if not message.startswith(_CONSUMER_NOISE):
            return True
        if message.startswith(_CONSUMER_NOISE[0]):
            self.failed(record.getMessage().split(": ", 1)[-1])
        return False

    def failed(self, reason: str) -> None:
        with self._lock:
            if self._down_since is not None:
                return
            self._down_since = time.monotonic()
            logger.warning("broker unreachable (%s); consumers retry every few seconds", " ".join(reason.split()))
            self._thread = threading.Thread(target=self._until_back, name="dispatch-broker-watch", daemon=True)
            self._thread.start()

    def _until_back(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                probe_broker(self.broker)
            except Exception:
                continue
            with self._lock:
                since, self._down_since = self._down_since, None
            logger.warning("broker reachable again after %.0f s", time.monotonic() - (since or time.monotonic()))
            return


def serve_metrics(d: Any, host: str, port: int) -> None:
    """``/metrics`` of this worker process for Prometheus (SPEC §12), on a daemon thread."""
    from prometheus_client import start_http_server

    from .metrics import add_queue_middleware, register_queue_collector

    register_queue_collector(d.store.queue_depth)
    add_queue_middleware(d.broker)
    try:
        start_http_server(port, addr=host)
    except OSError as exc:  # delivering matters more than being watched: say so and go on
        logger.error("metrics: cannot listen on %s:%d (%s); this process serves no /metrics", host, port, exc.strerror)
