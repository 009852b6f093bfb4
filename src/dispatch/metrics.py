"""Prometheus metrics (SPEC §12), in the process's default registry.

Counters are fed from the pipeline (decisions) and the lifecycle (every
transition), so nothing else has to remember to count. Queue depth and the age of
the oldest queued message are read from the store when Prometheus scrapes
(:class:`QueueCollector`, registered by ``dispatch worker`` and ``dispatch serve``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import REGISTRY, Counter, Histogram
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
        self._depth = depth

    def collect(self):
        depth = GaugeMetricFamily(
            "dispatch_queue_depth", "Messages queued or being sent, by channel", labels=["channel"]
        )
        oldest = GaugeMetricFamily("dispatch_queue_oldest_age_seconds", "Age of the oldest message due and not sent")
        try:
            now = datetime.now(UTC)
            counts, first = self._depth(now)
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
    """Register the queue gauges once per process."""
    global _registered
    if _registered is None:
        _registered = QueueCollector(depth)
        REGISTRY.register(_registered)
