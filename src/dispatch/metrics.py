"""Prometheus metrics (SPEC §12), in the process's default registry.

Counters are fed from the pipeline (decisions) and the lifecycle (every
transition), so nothing else has to remember to count. Queue depth and the age of
the oldest queued message are read from the store when Prometheus scrapes
(:class:`QueueCollector`, registered by ``dispatch worker`` and ``dispatch serve``).

Dramatiq's own Prometheus middleware does not fit here: it switches the whole
process to prometheus_client's multi-process mode and serves a separate registry
from a forked server on one fixed port, while each dispatch worker process serves
its own ``/metrics`` on ``[worker] metrics_port`` + its index. :class:`QueueMetrics`
counts the same things per queue (queue messages processed, failed, in progress,
time taken) in the process's default registry instead.

Every name, its labels and a sample Grafana dashboard: ``docs/metrics.md``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from dramatiq import Middleware
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

from .lifecycle import Status, Transition

logger = logging.getLogger("dispatch.metrics")

DECISIONS = Counter(
    "dispatch_decisions", "Messages decided (sent or suppressed)", ["message_type", "channel", "allowed"]
)
SUPPRESSED = Counter("dispatch_suppressed", "Suppressed messages by reason (SPEC §4)", ["reason"])
TRANSITIONS = Counter("dispatch_messages", "Messages reaching each state, by channel", ["status", "channel"])
LATENCY = Histogram(
    "dispatch_delivery_latency_seconds",
    "From the moment a message was due to the provider taking it",
    ["channel"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 24 * 3600),
)

#: Written offers after a phone sale (SPEC §13): ``sent``, ``unsent``, ``accepted``, ``declined``, ``lapsed``.
OFFERS = Counter("dispatch_offers", "Written offers reaching each state (SPEC §13)", ["state"])


def count_offer(state: str) -> None:
    """Count an offer reaching ``state`` (dispatch.offers calls it as it records the state)."""
    OFFERS.labels(state).inc()


def count_decisions(decisions: Iterable[Any]) -> None:
    """Count decisions (``Decision`` values) as the pipeline records them."""
    for decision in decisions:
        DECISIONS.labels(decision.message_type, decision.channel or "-", str(decision.allowed).lower()).inc()
        for reason in decision.reasons:
            SUPPRESSED.labels(reason).inc()


def on_transitions(transitions: list[Transition]) -> None:
    """The lifecycle's listener: one count per state reached."""
    for transition in transitions:
        if transition.target in (Status.SENDING, Status.SUPPRESSED):
            continue  # claims are counted by attempts; suppressions by decisions
        TRANSITIONS.labels(str(transition.target), transition.channel or "-").inc()


def observe_latency(channel: str, due: datetime, sent: datetime) -> None:
    LATENCY.labels(channel).observe(max(0.0, (sent - due).total_seconds()))


class QueueCollector:
    """Queue depth per channel and the age of the oldest queued message, read at scrape time."""

    def __init__(self, depth: Callable[[datetime], tuple[dict[str, int], datetime | None]]) -> None:
        self.depth = depth

    def collect(self):
        depth = GaugeMetricFamily(
            "dispatch_queue_depth", "Messages queued or being sent, by channel", labels=["channel"]
        )
        oldest = GaugeMetricFamily("dispatch_queue_oldest_age_seconds", "Age of the oldest message due and not sent")
        try:
            now = datetime.now(UTC)
            counts, first = self.depth(now)
        except Exception:  # the store is down: report nothing rather than fail the scrape
            logger.debug("queue depth unavailable", exc_info=True)
            return
        for channel, count in sorted(counts.items()):
            depth.add_metric([channel], count)
        oldest.add_metric([], (now - first).total_seconds() if first else 0.0)
        yield depth
        yield oldest


_registered: QueueCollector | None = None


def register_queue_collector(depth: Callable[[datetime], tuple[dict[str, int], datetime | None]]) -> None:
    """Register the queue gauges (once per process); a later call points them at another store."""
    global _registered
    if _registered is None:
        _registered = QueueCollector(depth)
        REGISTRY.register(_registered)
    else:
        _registered.depth = depth


QUEUE_MESSAGES = Counter(
    "dispatch_queue_messages", "Queue messages (batches of message ids) a worker processed", ["queue", "outcome"]
)
QUEUE_IN_PROGRESS = Gauge("dispatch_queue_messages_in_progress", "Queue messages being processed now", ["queue"])
QUEUE_SECONDS = Histogram(
    "dispatch_queue_message_seconds",
    "Time a worker took over one queue message (a batch of sends)",
    ["queue"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)


class QueueMetrics(Middleware):
    """Dramatiq middleware: queue messages processed (ok / error), in progress and their duration."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}

    def before_process_message(self, broker, message) -> None:

        QUEUE_IN_PROGRESS.labels(message.queue_name).inc()
        self._started[message.message_id] = time.perf_counter()

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:

        started = self._started.pop(message.message_id, None)
        QUEUE_IN_PROGRESS.labels(message.queue_name).dec()
        QUEUE_MESSAGES.labels(message.queue_name, "error" if exception is not None else "ok").inc()
        if started is not None:
            QUEUE_SECONDS.labels(message.queue_name).observe(time.perf_counter() - started)

    after_skip_message = after_process_message


def add_queue_middleware(broker) -> None:
    """Add :class:`QueueMetrics` to ``broker`` (once); call before its worker starts."""
    if not any(isinstance(m, QueueMetrics) for m in broker.middleware):
        broker.add_middleware(QueueMetrics())
