"""Webhooks pending in the ``webhook_deliveries`` table: events buffered in memory, written many rows per transaction.

:meth:`PendingWebhooks.add` is what the :class:`~dispatch.events.EventBus` calls for every
event: it turns the event into one row per endpoint (the JSON body is made here, once)
and appends them to a buffer — no I/O on the caller's path. A writer thread writes the
buffer every :data:`FLUSH_EVERY` seconds, or as soon as :data:`FLUSH_AT` rows wait.

While the store is unreachable the rows stay in memory; past :data:`SPILL_AT` rows, and
at close, they go to a file in the ``[worker] journal`` folder, read back (by this or
the next process) once the store answers again. Nothing an event announced is lost.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..clock import now_utc
from ..errors import StoreError
from ..events import Event
from ..store import Store, is_outage
from ..store import webhook_deliveries as table
from ..store.health import StoreHealth

logger = logging.getLogger("dispatch.webhooks")

FLUSH_EVERY = 0.2
FLUSH_AT = 2_000
SPILL_AT = 200_000

#: An email address or an E.164 number: never sent in a webhook, whatever a cause text holds.
_PERSONAL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}|\+[1-9][0-9]{7,14}\b")


def body_of(event: Event) -> str:
    """The JSON body POSTed for ``event``: ``{id, type, timestamp, data}``, ids and codes only."""
    return json.dumps(_scrub(event.as_dict()), separators=(",", ":"), sort_keys=True, default=str)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _PERSONAL.sub("[redacted]", value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


class PendingWebhooks:
    """The buffer between the event bus and the ``webhook_deliveries`` table (see the module docstring)."""

    def __init__(
        self,
        endpoints: list[str],
        event_types: list[str],
        store: Callable[[], Store],
        health: StoreHealth,
        folder: Path,
        written: Callable[[], None] = lambda: None,
    ) -> None:
        self.endpoints = list(endpoints)
        self.event_types = frozenset(event_types)
        self._store = store
        self._health = health
        self._folder = folder
        self._written = written
        self._lock = threading.Lock()
        self._rows: list[dict[str, Any]] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._spilled = False  # rows wait in files of the journal folder

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, event: Event) -> None:
        """Buffer ``event`` for every endpoint (an EventBus subscriber)."""
        if self.event_types and event.type not in self.event_types:
            return
        body = body_of(event)
        now = now_utc()
        subject = event.data.get("message_id") or event.data.get("recipient_id")
        rows = [
            {
                "event_id": event.id,
                "endpoint": endpoint,
                "event_type": event.type,
                "subject": str(subject)[:128] if subject is not None else None,
                "body": body,
                "occurred_at": event.occurred_at,
                "created_at": now,
                "status": table.PENDING,
                "attempts": 0,
                "next_attempt_at": now,
            }
            for endpoint in self.endpoints
        ]
        with self._lock:
            self._rows.extend(rows)
            waiting = len(self._rows)
        if self._thread is None:
            self._start()
        if waiting >= FLUSH_AT:
            self._wake.set()

    def adopt(self) -> None:
        """Write the rows an earlier process left in files (the store was down when it stopped)."""
        if self._folder.is_dir() and any(self._folder.glob("webhooks-*.jsonl")):
            self._spilled = True
            self._start()
            self._wake.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._run, name="dispatch-webhook-outbox", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(FLUSH_EVERY)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # a failing round must not end the loop; the rows are back in the buffer
                logger.exception("writing webhook events failed")

    def flush(self) -> int:
        """Write what is buffered (and files left while the store was down); returns rows written."""
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows and not self._spilled:
            return 0
        try:
            store = self._store()
            table.insert_rows(store, rows)
        except Exception as exc:
            if not (is_outage(exc) or isinstance(exc, StoreError)):  # StoreError: it could not be opened
                # Not the store's absence but rows it refuses: retrying would block every later event.
                logger.exception(
                    "could not write %d webhook row(s) (events %s ...); they are dropped",
                    len(rows),
                    ", ".join(sorted({r["event_id"] for r in rows})[:3]),
                )
                return 0
            with self._lock:
                self._rows[:0] = rows
                waiting = len(self._rows)
            self._health.failed(exc, "writing webhook events")
            if waiting > SPILL_AT:
                self.spill()
            return 0
        self._health.ok()
        if self._spilled:
            self._spilled = False
            if self._load():
                return len(rows) + self.flush()
        if rows:
            self._written()
        return len(rows)

    def spill(self) -> Path | None:
        """Move the buffer to a file in the journal folder (the store is down); returns its path."""
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return None
        self._folder.mkdir(parents=True, exist_ok=True)
        path = self._folder / f"webhooks-{os.getpid()}-{time.time_ns()}.jsonl"
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, default=_iso) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        self._spilled = True
        logger.warning("the store is unreachable: %d webhook delivery row(s) kept in %s", len(rows), path)
        return path

    def _load(self) -> int:
        """Take in the files written while the store was down (by this or an earlier process)."""
        if not self._folder.is_dir():
            return 0
        count = 0
        for path in sorted(self._folder.glob("webhooks-*.jsonl")):
            claimed = path.with_suffix(f".loading-{os.getpid()}")
            try:
                path.rename(claimed)  # one process takes each file
            except OSError:
                continue
            rows = [_row(json.loads(line)) for line in claimed.read_text(encoding="utf-8").splitlines() if line]
            with self._lock:
                self._rows.extend(rows)
            claimed.unlink()
            count += len(rows)
        if count:
            logger.info("took %d webhook delivery row(s) kept while the store was unreachable", count)
        return count

    def close(self) -> None:
        """Stop the writer, write what is buffered; if the store is down, keep it in a file."""
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=30)
        if thread is None and not self._rows:
            return  # nothing was recorded: the store is not even opened
        try:
            self.flush()
        except Exception:
            logger.exception("writing webhook events at close failed")
        if self._rows:
            self.spill()


def _iso(value: Any) -> str:
    return value.isoformat()


def _row(raw: dict[str, Any]) -> dict[str, Any]:
    from datetime import datetime

    for key in ("occurred_at", "created_at", "next_attempt_at"):
        raw[key] = datetime.fromisoformat(raw[key])
    return raw
