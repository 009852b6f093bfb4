"""Dramatiq's Redis broker with bulk enqueue (imported only for redis:// URLs).

A campaign enqueues thousands of message ids at once. Dramatiq's own enqueue runs
its Lua script once per message; for a message that amounts to ``HSET
<queue>.msgs <id> <data>`` and ``RPUSH <queue> <id>`` (see dramatiq's
``dispatch.lua``). ``enqueue_many`` writes exactly those two structures, but for a
whole batch at once: one ``HSET`` with every message and one ``RPUSH`` with every
id per queue, in one ``MULTI``/``EXEC`` so a worker never sees an id before its data.
Middleware still gets its ``before_enqueue``/``after_enqueue`` calls per message.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from uuid import uuid4

from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis, dq_name


class PipelinedRedisBroker(RedisBroker):
    """A :class:`RedisBroker` that can enqueue a batch of messages in one round trip."""

    def enqueue_many(self, messages: Iterable[tuple[Message, int | None]]) -> None:
        """Enqueue ``(message, delay ms or None)`` pairs atomically, in one round trip."""
        by_queue: dict[str, dict[str, bytes]] = defaultdict(dict)
        sent = []
        now = current_millis()
        for message, delay in messages:
            queue_name = message.queue_name
            message = message.copy(options={"redis_message_id": str(uuid4())})
            if delay is not None:
                queue_name = dq_name(queue_name)
                message = message.copy(queue_name=queue_name, options={"eta": now + delay})
            self.emit_before("enqueue", message, delay)
            by_queue[queue_name][message.options["redis_message_id"]] = message.encode()
            sent.append((message, delay))
        if not sent:
            return
        pipe = self.client.pipeline(transaction=True)
        for queue_name, entries in by_queue.items():
            key = f"{self.namespace}:{queue_name}"
            pipe.hset(f"{key}.msgs", mapping=entries)
            pipe.rpush(key, *entries)
        pipe.execute()
        for message, delay in sent:
            self.emit_after("enqueue", message, delay)
