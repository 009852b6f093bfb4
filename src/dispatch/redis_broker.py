"""Dramatiq's Redis broker with pipelined bulk enqueue (imported only for redis:// URLs).

A campaign enqueues thousands of message ids at once. ``enqueue_many`` runs the
broker's own enqueue script for each of them on one Redis pipeline: one round
trip per batch instead of one per message, with exactly what
:meth:`RedisBroker.enqueue` would store.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import uuid4

from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis, dq_name


class PipelinedRedisBroker(RedisBroker):
    """A :class:`RedisBroker` that can enqueue many messages in one round trip."""

    def enqueue_many(self, messages: Iterable[tuple[Message, int | None]]) -> None:
        """Enqueue ``(message, delay ms or None)`` pairs on one pipeline."""
        script = self.scripts["dispatch"]
        pipe = self.client.pipeline(transaction=False)
        keys = [self.namespace]
        sent = []
        for message, delay in messages:
            queue_name = message.queue_name
            message = message.copy(options={"redis_message_id": str(uuid4())})
            if delay is not None:
                queue_name = dq_name(queue_name)
                message = message.copy(queue_name=queue_name, options={"eta": current_millis() + delay})
            self.emit_before("enqueue", message, delay)
            args = [
                "enqueue",
                current_millis(),
                queue_name,
                self.broker_id,
                self.heartbeat_timeout,
                self.dead_message_ttl,
                self._should_do_maintenance("enqueue"),
                self._max_unpack_size(),
                message.options["redis_message_id"],
                message.encode(),
            ]
            script(keys=keys, args=args, client=pipe)
            sent.append((message, delay))
        if sent:
            pipe.execute()
        for message, delay in sent:
            self.emit_after("enqueue", message, delay)
