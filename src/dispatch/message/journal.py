"""Known outcomes kept while the store cannot take them (SPEC §7: never sent again because of it).

When a provider has accepted a message (SMTP 250, a Twilio sid) and the store is
unreachable, the worker keeps the :class:`~dispatch.store.Outcome` here: in memory
while it runs, written again every few seconds until the store takes it, and in a
file under ``[worker] journal`` if the process must exit first. A worker that
starts on the same machine reads those files and writes them before it takes new
work. Meanwhile the message stays ``sending`` under its claim, and a claim whose
lease ran out is only released by a relay that has seen the store healthy for a
whole lease — long enough for this journal to be written first.

:class:`AcceptedLog` closes the last gap, a worker killed outright (SIGKILL, OOM):
every outcome a provider accepted is appended to a per-process file the moment the
worker knows it, before it goes to the store with the others of its group commit. A
``write(2)`` survives the death of the process without ``fsync`` (the kernel holds
the page; only the machine going down loses it). The next worker on that machine —
at its start, and in every relay round — takes the files of processes that are gone
(their ``flock`` is released by the kernel) and writes those outcomes, so a message
the provider took is not sent again. Only sends still under way at the kill can go
twice (and are flagged ``possible_duplicate`` when they do).

:class:`StoreHealth` keeps the logs of an outage to a few lines: one when the
store is lost, one when it is back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from ..lifecycle import Lifecycle, Status
from ..store import Outcome, Store, is_outage
from ..store.health import StoreHealth

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows: no accepted-outcome log there
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger("dispatch.journal")


class AcceptedLog:
    """The outcomes a provider accepted that the store may not have yet, in an append-only file.

    One file per process, ``accepted-<pid>-<n>.log`` under ``[worker] journal``, held with an
    exclusive ``flock`` while the process lives. :meth:`note` appends (one ``write(2)``);
    :meth:`committed` forgets what the store took, and once the file has grown past
    :data:`ROTATE_AT` bytes it is replaced by one holding only what is still uncommitted.
    """

    #: The file is rewritten with only its uncommitted lines when it grows past this.
    ROTATE_AT = 1 << 20
    _ACCEPTED = (Status.SENT, Status.DELIVERED)

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._generation = 0
        self._pending: dict[tuple[str, int], bytes] = {}

    @property
    def enabled(self) -> bool:
        return fcntl is not None

    def note(self, worker: str, outcomes: Iterable[Outcome]) -> None:
        """Append the accepted ones of ``outcomes`` (sent, delivered) at once."""
        lines = {
            (o.message_id, o.attempt): (json.dumps({"worker": worker, "outcome": o.to_json()}) + "\n").encode()
            for o in outcomes
            if o.target in self._ACCEPTED
        }
        if not lines or not self.enabled:
            return
        data = b"".join(lines.values())
        with self._lock:
            try:
                if self._fd is None:
                    self._open()
                os.write(self._fd, data)  # type: ignore[arg-type]
            except OSError as exc:  # a full disk must not stop delivery: the store still gets them
                logger.warning("could not append to the accepted-outcome log (%s)", type(exc).__name__)
                return
            self._size += len(data)
            self._pending.update(lines)

    def committed(self, outcomes: Iterable[Outcome]) -> None:
        """The store has these: forget them (and rewrite the file when it has grown large)."""
        with self._lock:
            for o in outcomes:
                self._pending.pop((o.message_id, o.attempt), None)
            if self._fd is not None and self._size > self.ROTATE_AT:
                try:
                    self._rotate()
                except OSError as exc:
                    logger.warning("could not rotate the accepted-outcome log (%s)", type(exc).__name__)

    def recover(self, journal: OutcomeJournal, store: Store) -> int:
        """Hand the outcomes in the logs of processes that are gone to ``journal``; returns how many.

        Only messages the store still has as ``sending`` or ``queued`` are taken (the others were
        recorded before the process died, or are out of its hands now).
        """
        if not self.enabled or not self.folder.is_dir():
            return 0
        taken = 0
        for path in sorted(self.folder.glob("accepted-*.log")):
            if path == self._path:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except OSError:
                continue  # taken by another process meanwhile
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # its process is alive
                entries = _read_entries(path)
                open_ids = store.open_message_ids([o.message_id for _w, o in entries])
                wanted = [(w, o) for w, o in entries if o.message_id in open_ids]
                for worker in {w for w, _o in wanted}:
                    journal.keep(worker, [o for w, o in wanted if w == worker])
                taken += len(wanted)
                path.unlink(missing_ok=True)
            finally:
                os.close(fd)
        if taken:
            logger.warning("took %d accepted outcome(s) from the log of a worker that stopped", taken)
        return taken

    def close(self) -> None:
        """Close the file; remove it when nothing in it is uncommitted."""
        with self._lock:
            if self._fd is None:
                return
            os.close(self._fd)
            self._fd = None
            if not self._pending and self._path is not None:
                self._path.unlink(missing_ok=True)
                with contextlib.suppress(OSError):  # only when empty: nothing else is kept there
                    self.folder.rmdir()

    def _open(self) -> None:
        """A new, locked file: made under a name :meth:`recover` ignores, locked, then renamed."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._generation += 1
        path = self.folder / f"accepted-{os.getpid()}-{self._generation}.log"
        hidden = self.folder / f".{path.name}.new"
        fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(hidden, path)
        except OSError:
            os.close(fd)
            raise
        self._fd, self._path, self._size = fd, path, 0

    def _rotate(self) -> None:
        old_fd, old_path = self._fd, self._path
        self._open()
        data = b"".join(self._pending.values())
        if data:
            os.write(self._fd, data)  # type: ignore[arg-type]
            self._size = len(data)
        if old_fd is not None:
            os.close(old_fd)
        if old_path is not None:
            old_path.unlink(missing_ok=True)


def _read_entries(path: Path) -> list[tuple[str, Outcome]]:
    """The ``(worker, outcome)`` lines of a log; a line cut short by the kill is skipped."""
    entries = []
    for line in path.read_bytes().splitlines():
        try:
            item = json.loads(line)
            entries.append((item["worker"], Outcome.from_json(item["outcome"])))
        except (ValueError, KeyError, TypeError):
            continue
    return entries


class OutcomeJournal:
    """Outcomes waiting for the store, per claiming worker."""

    def __init__(self, folder: Path, health: StoreHealth) -> None:
        self.folder = folder
        self.health = health
        self._lock = threading.Lock()
        self._pending: list[tuple[str, Outcome]] = []
        #: What providers accepted, on disk until the store has it (survives SIGKILL).
        self.accepted = AcceptedLog(folder)

    def __len__(self) -> int:
        return len(self._pending)

    def keep(self, worker: str, outcomes: list[Outcome]) -> None:
        with self._lock:
            self._pending.extend((worker, o) for o in outcomes)

    def flush(self, store: Store, lifecycle: Lifecycle) -> int:
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
                lifecycle.finish(store, outcomes, worker)
            except Exception as exc:
                if not is_outage(exc):
                    logger.exception("could not write %d delivery outcome(s); they are dropped", len(outcomes))
                    continue
                self.health.failed(exc, "writing delivery outcomes")
                with self._lock:
                    self._pending[:0] = [(w, o) for w, group in groups[index:] for o in group]
                return written
            self.accepted.committed(outcomes)
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
