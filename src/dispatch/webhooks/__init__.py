"""Signed webhooks from a durable outbox (SPEC §10), per the Standard Webhooks specification.

With ``[webhooks] endpoints`` set, every event of the :class:`~dispatch.events.EventBus`
(``message.*``, ``notice.late``, ``consent.changed``) becomes one row per endpoint in the
``webhook_deliveries`` table (:mod:`.pending`, buffered and written in batches), and a
sender thread in every process that delivers (workers, ``serve``, the embedded default)
POSTs those rows, signed, retrying with back-off until the receiver says 2xx
(:mod:`.sender`). A receiver that is down for an hour, or a dispatcher that restarts,
loses nothing: the rows wait in the table.

Receivers check what they get with :func:`verify` (or any Standard Webhooks library);
docs/webhooks.md shows the same check in ten lines for those who write their own.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

from ..config import WebhooksConfig
from ..errors import ConfigError
from ..events import Event
from ..store import Store
from ..store.health import StoreHealth
from ..store.webhook_deliveries import counts
from .pending import PendingWebhooks, body_of
from .sender import WebhookSender
from .signing import WebhookVerificationError, generate_secret, sign, signature, verify

#: The former name of :class:`PendingWebhooks` (kept for callers that still use it).
EventOutbox = PendingWebhooks


class Webhooks:
    """The outbox writer and the sender of one dispatcher: :meth:`add` events, :meth:`start` sending, :meth:`close`."""

    def __init__(self, settings: WebhooksConfig, store: Callable[[], Store], health: StoreHealth, folder: Path) -> None:
        if importlib.util.find_spec("aiohttp") is None:
            raise ConfigError("[webhooks] endpoints need aiohttp: pip install 'dispatch[webhooks]'")
        self.settings = settings
        self.sender = WebhookSender(settings, store, health)
        self.outbox = PendingWebhooks(settings.endpoints, settings.events, store, health, folder, self.sender.wake)

    def add(self, event: Event) -> None:
        """Queue ``event`` for every endpoint (the EventBus subscriber)."""
        self.outbox.add(event)

    def start(self) -> None:
        """Start sending (workers, ``serve``, the embedded worker); processes that only record events need not."""
        self.outbox.adopt()
        self.sender.start()

    def flush(self) -> int:
        """Write the buffered events to the table now; returns how many rows were written."""
        return self.outbox.flush()

    def close(self, drain: float | None = None) -> None:
        """Write what is buffered, send what is due for up to ``drain`` seconds, stop both threads."""
        self.outbox.close()
        self.sender.wake()
        self.sender.close(drain)


__all__ = [
    "EventOutbox",
    "PendingWebhooks",
    "WebhookSender",
    "WebhookVerificationError",
    "Webhooks",
    "body_of",
    "counts",
    "generate_secret",
    "sign",
    "signature",
    "verify",
]
