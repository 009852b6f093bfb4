"""A real SMTP server (aiosmtpd) on 127.0.0.1 that records every message it accepts."""

from __future__ import annotations

import asyncio
import email
import threading
from collections import Counter
from email import policy

from aiosmtpd.controller import Controller
from servers import free_port


class Recorder:
    """aiosmtpd handler: keeps the Message-ID of every accepted message."""

    def __init__(self, delay: float = 0.0) -> None:
        self.message_ids: list[str] = []
        self.delay = delay
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        if self.delay:  # a slower server: a run lasts long enough to be interrupted
            await asyncio.sleep(self.delay)
        parsed = email.message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self._lock:
            self.message_ids.append(str(parsed["Message-ID"]))
        return "250 2.0.0 Ok: queued"

    def counts(self) -> Counter:
        with self._lock:
            return Counter(self.message_ids)


class SmtpSink:
    """Start and stop a recording SMTP server; the port stays the same across restarts."""

    def __init__(self, port: int | None = None, *, delay: float = 0.0) -> None:
        self.port = port or free_port()
        self.recorder = Recorder(delay)
        self._controller: Controller | None = None

    def start(self) -> SmtpSink:
        self._controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
