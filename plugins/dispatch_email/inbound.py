"""The inbound SMTP listener for returned mail (SPEC §10), run by ``dispatch serve``.

An aiosmtpd server that takes mail for the bounce mailbox only::

    listener = channel.inbound_listener(on_feedback=dispatcher.handle_feedback, port=2525)
    listener.start()        # its own thread and event loop; or `await listener.astart()` on yours
    ...
    listener.stop()

- ``RCPT TO`` is accepted for ``return_path`` itself (feedback loops send ARF
  reports there) and for its VERP addresses ``local+<message id>@domain`` with a
  well-formed message id; anything else is refused with 550 (no relaying, no
  forged ids).
- Mail larger than ``inbound_max_bytes`` (default 10 MB) is refused with 552 and counted.
- Each message is parsed by :mod:`dispatch_email.reports`; every event that names
  a dispatch message goes to ``on_feedback(event)``.
- Mail that yields no event — not a report, malformed, an ARF ``not-spam``, a report
  for no message of ours (unless ``accept_unmatched``), or one the ``on_feedback``
  callable refuses with a :class:`~dispatch.errors.DispatchError` (an unknown
  message id) — is kept aside under ``<outbox>/inbound-kept-aside/`` (the raw
  ``.eml`` and a ``.json`` saying why) and counted. It is answered 250: the sender
  has delivered it, and an operator can read it there.
- When the store is unreachable (``on_feedback`` raises
  :class:`~dispatch.errors.StoreError`) or the message cannot be kept aside (disk
  full), the answer is 451: the sending MTA retries later and nothing is lost.
  ``on_feedback`` must therefore be idempotent for the same event.
- No exception escapes to aiosmtpd. Logs carry message ids, sources, codes and
  counts, never an address; aiosmtpd's own ``mail.log`` (which logs envelope
  addresses at INFO) is held at WARNING.

The same processing serves the IMAP poller (:mod:`dispatch_email.imap`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from dispatch.errors import DispatchError, StoreError
from dispatch.feedback import ProviderEvent
from dispatch.ids import new_id

from .reports import ParsedMail, parse_returned_mail
from .verp import ReturnPath

logger = logging.getLogger("dispatch.email.inbound")

OnFeedback = Callable[[ProviderEvent], Any]
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_KEEP_ASIDE_MAX = 10_000
DEFAULT_KEEP_ASIDE_MAX_BYTES = 512 * 1024 * 1024


class Outcome(Enum):
    """What became of one returned message."""

    #: At least one event was handed to ``on_feedback``.
    HANDLED = "handled"
    #: Nothing to hand on: kept aside (and counted).
    KEPT_ASIDE = "kept_aside"
    #: Not processed now (store down, disk full): the sender should try again.
    RETRY = "retry"


class InboundStats:
    """Thread-safe counters of the listener and the IMAP poller."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def __getitem__(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def snapshot(self) -> dict[str, int]:
        """All counters: ``received``, ``dsn``, ``arf``, ``plain_bounce``, ``events``, ``kept_aside``,
        ``unmatched``, ``refused_rcpt``, ``oversized``, ``retry``, ``errors``."""
        with self._lock:
            return dict(self._counts)


class _RetryLater(Exception):
    """The message cannot be processed now; the sender keeps it and tries again."""


class ReturnedMailProcessor:
    """Parse one returned message, hand its events on, keep aside what yields none."""

    def __init__(
        self,
        return_path: ReturnPath,
        on_feedback: OnFeedback,
        keep_aside: Path,
        *,
        accept_unmatched: bool = False,
        keep_aside_max: int = DEFAULT_KEEP_ASIDE_MAX,
        keep_aside_max_bytes: int = DEFAULT_KEEP_ASIDE_MAX_BYTES,
        stats: InboundStats | None = None,
    ) -> None:
        self.return_path = return_path
        self.on_feedback = on_feedback
        self.keep_aside_dir = keep_aside
        #: Hand on events that name no dispatch message (the core then goes by address only).
        self.accept_unmatched = accept_unmatched
        #: At most this many messages in the keep-aside folder: junk from anyone must not fill the disk.
        self.keep_aside_max = keep_aside_max
        #: ... and at most this many bytes (10,000 mails of 10 MB would be 100 GB).
        self.keep_aside_max_bytes = keep_aside_max_bytes
        self.stats = stats or InboundStats()
        self._kept: int | None = None
        self._kept_bytes = 0
        self._kept_lock = threading.Lock()

    def process(self, raw: bytes, envelope_recipients: Sequence[str] = ()) -> Outcome:
        """Process one message; never raises."""
        self.stats.add("received")
        try:
            return self._process(raw, envelope_recipients)
        except _RetryLater as exc:
            self.stats.add("retry")
            logger.warning("returned mail not processed now, the sender will retry: %s", exc)
            return Outcome.RETRY
        except Exception as exc:  # a bug must not stop the listener: keep the mail for a person
            self.stats.add("errors")
            logger.error("returned mail could not be processed (%s); keeping it aside", type(exc).__name__)
            try:
                self._keep(raw, f"processing failed: {type(exc).__name__}", None, ())
            except OSError:
                self.stats.add("retry")
                return Outcome.RETRY
            return Outcome.KEPT_ASIDE

    def _process(self, raw: bytes, envelope_recipients: Sequence[str]) -> Outcome:
        parsed = parse_returned_mail(raw, return_path=self.return_path, envelope_recipients=envelope_recipients)
        if parsed.source:
            self.stats.add(parsed.source)
        if not parsed.events:
            return self._keep_counted(raw, parsed.problem or "no event", parsed)
        handed: list[ProviderEvent] = []
        refused: list[str] = []
        for event in parsed.events:
            if event.message_id is None and not self.accept_unmatched:
                refused.append("names no dispatch message")
                continue
            try:
                taken = self.on_feedback(event)
            except StoreError as exc:
                raise _RetryLater(f"store unavailable ({type(exc).__name__})") from None
            except DispatchError as exc:  # e.g. an unknown message id: the core refuses it
                refused.append(f"refused: {type(exc).__name__}: {exc}")
                continue
            if taken is False:  # the core found no message for it
                refused.append("matched no message")
                continue
            handed.append(event)
            self.stats.add("events")
            logger.info(
                "returned mail: %s %s for message %s (code %s)",
                event.source,
                event.kind.value,
                event.message_id or "-",
                event.code or "-",
            )
        if not handed:
            self.stats.add("unmatched")
            return self._keep_counted(raw, "; ".join(sorted(set(refused))), parsed)
        return Outcome.HANDLED

    def _keep_counted(self, raw: bytes, reason: str, parsed: ParsedMail) -> Outcome:
        try:
            name = self._keep(raw, reason, parsed.source, [e.message_id for e in parsed.events if e.message_id])
        except OSError as exc:
            raise _RetryLater(f"cannot keep it aside ({type(exc).__name__})") from None
        if name is not None:
            logger.info("returned mail kept aside as %s: %s", name, reason)
        return Outcome.KEPT_ASIDE

    def _keep(self, raw: bytes, reason: str, source: str | None, message_ids: Sequence[str]) -> str | None:
        """Write the raw message and why it was kept as ``<ulid>.eml`` + ``<ulid>.json``; returns the name.

        Counts ``kept_aside``; when the folder already holds ``keep_aside_max`` messages, or
        this one would take it past ``keep_aside_max_bytes``, the message is only counted as
        ``discarded`` (and None returned).
        """
        folder = self.keep_aside_dir
        folder.mkdir(parents=True, exist_ok=True)
        with self._kept_lock:
            if self._kept is None:
                sizes = [path.stat().st_size for path in folder.glob("*.eml")]
                self._kept, self._kept_bytes = len(sizes), sum(sizes)
            if self._kept >= self.keep_aside_max or self._kept_bytes + len(raw) > self.keep_aside_max_bytes:
                self.stats.add("discarded")
                logger.warning(
                    "returned mail discarded: %s already holds %d messages (%d bytes)",
                    folder,
                    self._kept,
                    self._kept_bytes,
                )
                return None
            self._kept += 1
            self._kept_bytes += len(raw)
        self.stats.add("kept_aside")
        name = new_id()
        note = {
            "reason": reason,
            "source": source,
            "message_ids": list(message_ids),
            "received_at": datetime.now(UTC).isoformat(),
            "size": len(raw),
        }
        for suffix, data in ((".eml", raw), (".json", json.dumps(note, indent=2).encode())):
            path = folder / f"{name}{suffix}"
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return name


class _Handler:
    """aiosmtpd handler: RCPT only for the bounce mailbox, DATA processed off the event loop."""

    def __init__(self, processor: ReturnedMailProcessor) -> None:
        self.processor = processor
        self.stats = processor.stats

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list) -> str:
        try:
            accepted = self.processor.return_path.accepts(address)
        except Exception:
            accepted = False
        if not accepted:
            self.stats.add("refused_rcpt")
            return "550 5.1.1 Mailbox unavailable: this server takes returned mail only"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        try:
            raw = envelope.original_content or envelope.content or b""
            if isinstance(raw, str):
                raw = raw.encode("utf-8", "surrogateescape")
            outcome = await asyncio.to_thread(self.processor.process, raw, list(envelope.rcpt_tos))
        except Exception as exc:  # never to aiosmtpd
            self.stats.add("errors")
            logger.error("returned mail: unexpected %s in the listener", type(exc).__name__)
            return "451 4.3.0 Local error, try again later"
        if outcome is Outcome.RETRY:
            return "451 4.3.0 Cannot take it now, try again later"
        return "250 2.0.0 OK: received"

    async def handle_exception(self, error: Exception) -> str:
        self.stats.add("errors")
        logger.error("returned mail: SMTP session error %s", type(error).__name__)
        return "451 4.3.0 Local error, try again later"


def _smtp_class() -> type:
    from aiosmtpd.smtp import SMTP

    class CountingSMTP(SMTP):
        """aiosmtpd's SMTP that counts the mail it refuses as too large (552)."""

        async def push(self, status: str) -> None:
            if status.startswith("552"):
                self.event_handler.stats.add("oversized")
                logger.info("returned mail refused: larger than %s bytes", self.data_size_limit)
            await super().push(status)

    return CountingSMTP


class InboundListener:
    """The SMTP listener; ``start()``/``stop()`` in its own thread, or ``astart()``/``astop()`` on a running loop."""

    def __init__(
        self,
        processor: ReturnedMailProcessor,
        *,
        host: str = "127.0.0.1",
        port: int = 2525,
        max_bytes: int = DEFAULT_MAX_BYTES,
        server_name: str | None = None,
    ) -> None:
        self.processor = processor
        self.stats = processor.stats
        self.host = host
        #: The bound port once started (useful with ``port=0``).
        self.port = port
        self.max_bytes = max_bytes
        self.server_name = server_name or processor.return_path.domain
        self._server: asyncio.AbstractServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._sessions: set[Any] = set()

    def _protocol(self) -> Any:
        smtp = _smtp_class()(
            _Handler(self.processor),
            hostname=self.server_name,
            data_size_limit=self.max_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            ident="dispatch inbound",
        )
        self._sessions.add(smtp)
        return smtp

    async def astart(self) -> InboundListener:
        """Listen on the running event loop."""
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # it logs envelope addresses at INFO
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("inbound SMTP listener on %s:%s", self.host, self.port)
        return self

    async def astop(self) -> None:
        """Stop listening and close open sessions."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for session in list(self._sessions):
            transport = getattr(session, "transport", None)
            if transport is not None:
                transport.close()
        self._sessions.clear()
        await server.wait_closed()

    def start(self, timeout: float = 30) -> InboundListener:
        """Listen in a thread of its own (its own event loop); returns when the port is bound."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="dispatch-inbound-smtp", daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.astart(), loop).result(timeout)
        except BaseException:
            self._stop_loop()
            raise
        return self

    def stop(self, timeout: float = 30) -> None:
        """Stop the thread started by :meth:`start`."""
        loop = self._loop
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.astop(), loop).result(timeout)
        finally:
            self._stop_loop(timeout)

    def _stop_loop(self, timeout: float = 30) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout)
        loop.close()

    def __enter__(self) -> InboundListener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> InboundListener:
        return await self.astart()

    async def __aexit__(self, *exc: object) -> None:
        await self.astop()


def start_listener(
    return_path: str | ReturnPath,
    on_feedback: OnFeedback,
    keep_aside: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 2525,
    max_bytes: int = DEFAULT_MAX_BYTES,
    accept_unmatched: bool = False,
) -> InboundListener:
    """Build and start (in its own thread) a listener for ``return_path``; call ``.stop()`` when done."""
    if isinstance(return_path, str):
        return_path = ReturnPath.parse(return_path)
    processor = ReturnedMailProcessor(return_path, on_feedback, keep_aside, accept_unmatched=accept_unmatched)
    return InboundListener(processor, host=host, port=port, max_bytes=max_bytes).start()


__all__ = [
    "DEFAULT_KEEP_ASIDE_MAX_BYTES",
    "DEFAULT_MAX_BYTES",
    "InboundListener",
    "InboundStats",
    "OnFeedback",
    "Outcome",
    "ReturnedMailProcessor",
    "start_listener",
]
