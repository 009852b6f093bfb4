"""Known outcomes kept while the store cannot take them (SPEC §7: never sent again because of it).

When a provider has accepted a message (SMTP 250, a Twilio sid) and the store is
unreachable, the worker keeps the :class:`~dispatch.store.Outcome` here: in memory
while it runs, written again every few seconds until the store takes it, and in a
file under ``[worker] journal`` if the process must exit first. A worker that
starts on the same machine reads those files and writes them before it takes new
work. Meanwhile the message stays ``sending`` under its claim, and a claim whose
lease ran out is only released by a relay that has seen the store healthy for a
whole lease — long enough for this journal to be written first.

:class:`StoreHealth` keeps the logs of an outage to a few lines: one when the
store is lost, one when it is back.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .lifecycle import Transition
from .store import Outcome, Store, is_outage

logger = logging.getLogger("dispatch.journal")


class StoreHealth:
    """Whether the store answered lately; logs once when it goes and once when it comes back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._up_since = time.monotonic()
        self._failures = 0

    def failed(self, exc: BaseException, doing: str) -> None:
        with self._lock:
            self._failures += 1
            if self._down_since is None:
                self._down_since = time.monotonic()
                logger.warning("store unreachable while %s (%s); holding work and retrying", doing, _short(exc))

    def ok(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            if self._down_since is not None:
                logger.warning(
                    "store reachable again after %.0f s (%d operations waited)",
                    time.monotonic() - self._down_since,
                    self._failures,
                )
                self._down_since = None
                self._failures = 0
                self._up_since = time.monotonic()

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def healthy_for(self) -> float:
        """Seconds since the store last came back (or since this process started); 0 while down."""
        return 0.0 if self._down_since is not None else time.monotonic() - self._up_since


class OutcomeJournal:
    """Outcomes waiting for the store, per claiming worker."""

    def __init__(self, folder: Path, health: StoreHealth) -> None:
        self.folder = folder
        self.health = health
        self._lock = threading.Lock()
        self._pending: list[tuple[str, Outcome]] = []

    def __len__(self) -> int:
        return len(self._pending)

    def keep(self, worker: str, outcomes: list[Outcome]) -> None:
        with self._lock:
            self._pending.extend((worker, o) for o in outcomes)

    def flush(self, store: Store, announce: Callable[[list[Transition]], None]) -> int:
        """Write what is pending; returns how many outcomes were written (0 if the store is still down)."""
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return 0
        by_worker: dict[str, list[Outcome]] = {}
        for worker, outcome in pending:
            by_worker.setdefault(worker, []).append(outcome)
        groups = list(by_worker.items())
        written = 0
        for index, (worker, outcomes) in enumerate(groups):
            try:
                transitions = store.finish(outcomes, worker)
            except Exception as exc:
                if not is_outage(exc):
                    logger.exception("could not write %d delivery outcome(s); they are dropped", len(outcomes))
                    continue
                self.health.failed(exc, "writing delivery outcomes")
                with self._lock:
                    self._pending[:0] = [(w, o) for w, group in groups[index:] for o in group]
                return written
            announce(transitions)
            written += len(outcomes)
        self.health.ok()
        return written

    def dump(self) -> Path | None:
        """Write what is still pending to a file (at exit); returns its path."""
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"outcomes-{os.getpid()}-{int(time.time() * 1000)}.jsonl"
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            for worker, outcome in pending:
                handle.write(json.dumps({"worker": worker, "outcome": outcome.to_json()}) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        logger.warning("the store is unreachable: %d delivery outcome(s) kept in %s", len(pending), path)
        return path

    def load(self) -> int:
        """Take in the files an earlier process left; returns how many outcomes they held."""
        if not self.folder.is_dir():
            return 0
        count = 0
        for path in sorted(self.folder.glob("outcomes-*.jsonl")):
            claimed = path.with_suffix(f".loading-{os.getpid()}")
            try:
                path.rename(claimed)  # one process takes each file
            except OSError:
                continue
            entries = []
            for line in claimed.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    item = json.loads(line)
                    entries.append((item["worker"], Outcome.from_json(item["outcome"])))
            with self._lock:
                self._pending.extend(entries)
            claimed.unlink()
            count += len(entries)
        if count:
            logger.info("took %d delivery outcome(s) from the journal of an earlier worker", count)
        return count


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
