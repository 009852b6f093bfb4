"""Returned paper mail (SPEC §6): the print house's list of letters that could not be delivered.

A print house (or the postal operator behind it) sends back a list of the letters it
could not deliver. :func:`read_returns` reads it as spreadsheets write it — comma,
semicolon (the Nordic Excel default) or tab, UTF-8 with or without a byte-order mark —
one row per letter, naming the letter by either

- its dispatch message id (``message_id``), or
- its place in a print batch: ``batch`` (the batch's file name, as in the manifest
  ``batch-20270111T093000-ABC123``) and ``sequence`` (the letter's 1-based position in
  that batch's manifest — the order in which the letters were printed);

and a ``reason`` (the operator's own words: "Osoite tuntematon", "Moved", ...).
Header names are matched case-insensitively, with a few Finnish, Swedish and
Norwegian aliases. The reason is reduced to a short code (:data:`REASONS`): the
free text is never stored, since a print house may write a new address into it.

:func:`apply_returns` turns each row into a :class:`~dispatch.feedback.ProviderEvent`
(``bounced``, permanent, channel ``letter``, source ``returned_mail``) for
:meth:`dispatch.Dispatcher.handle_feedback`, which moves the message to ``bounced``,
lists the postal address on the suppression list (cause ``returned_mail``; the key is
the whole address, so a changed address is not suppressed), emits ``message.bounced``
(to the event hook and webhooks) and sends a statutory message on to its next channel.
A row naming no known letter is reported by its line number, never its content.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import InputError, ReportRejected
from .feedback import FeedbackKind, ProviderEvent

#: Header aliases (lower-case, spaces and dashes as underscores) → the column they mean.
COLUMNS: Mapping[str, str] = {
    "message_id": "message_id",
    "message": "message_id",
    "id": "message_id",
    "viesti_id": "message_id",
    "meddelande_id": "message_id",
    "melding_id": "message_id",
    "batch": "batch",
    "batch_id": "batch",
    "erä": "batch",
    "sequence": "sequence",
    "seq": "sequence",
    "sequence_number": "sequence",
    "järjestysnumero": "sequence",
    "löpnummer": "sequence",
    "løpenummer": "sequence",
    "reason": "reason",
    "syy": "reason",
    "orsak": "reason",
    "årsak": "reason",
}

#: Reason codes, each with words (any language, case-folded) that mean it; the first match wins.
REASONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("deceased", ("deceased", "kuollut", "avliden", "død", "afliden")),
    ("moved", ("moved", "muuttanut", "flyttat", "flyttet", "new address")),
    ("refused", ("refused", "kieltäytyi", "vägrad", "nektet", "returned by recipient")),
    ("insufficient_address", ("insufficient", "incomplete", "puutteellinen", "ofullständig", "mangelfull")),
    ("unknown_address", ("unknown", "tuntematon", "okänd", "ukjent", "no such", "not found", "undeliverable")),
)
MAX_ROWS = 1_000_000


@dataclass(frozen=True, slots=True)
class ReturnedLetter:
    """One row of the print house's list."""

    line: int
    message_id: str | None
    batch: str | None
    sequence: int | None
    reason: str


@dataclass
class ReturnsSummary:
    """What :func:`apply_returns` did, row by row (line numbers only)."""

    bounced: list[str] = field(default_factory=list)
    #: Lines whose letter is unknown (no such message id, batch or sequence number).
    unknown: list[int] = field(default_factory=list)
    #: Lines naming a message that was not a letter (refused, as an email report naming an SMS is).
    not_letters: list[int] = field(default_factory=list)
    #: Lines the file's rules refused (no id, a sequence that is not a number), with the problem.
    invalid: list[tuple[int, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "bounced": len(self.bounced),
            "unknown_lines": self.unknown,
            "not_letters_lines": self.not_letters,
            "invalid": [{"line": line, "problem": problem} for line, problem in self.invalid],
        }


def reason_code(text: str) -> str:
    """The short code of a print house's reason (``unknown_address``, ``moved``... or ``other``)."""
    folded = text.casefold()
    for code, words in REASONS:
        if any(word in folded for word in words):
            return code
    return "other"


def read_returns(path: str | Path) -> Iterator[ReturnedLetter | tuple[int, str]]:
    """The rows of a returned-mail list, or ``(line, problem)`` for a row that cannot be read.

    Raises :class:`~dispatch.errors.InputError` for a file that is not such a list (not UTF-8,
    no ``message_id`` and no ``batch``/``sequence`` column).
    """
    source = Path(path)
    try:
        raw = source.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {source.name}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{source.name} is not UTF-8 text (save it as 'CSV UTF-8')") from None
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = max(";,\t", key=first.count) if first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str | None] | None = None
    for row in reader:
        if header is None:
            if not any(cell.strip() for cell in row):
                continue
            header = [COLUMNS.get(re.sub(r"[\s-]+", "_", cell.strip().casefold())) for cell in row]
            if "message_id" not in header and not {"batch", "sequence"} <= set(header):
                raise InputError(
                    f"{source.name} needs a message_id column, or batch and sequence columns (and a reason)"
                )
            continue
        line = reader.line_num
        if line > MAX_ROWS:
            raise InputError(f"{source.name} has more than {MAX_ROWS} rows")
        if not any(cell.strip() for cell in row):
            continue
        cells = {name: cell.strip() for name, cell in zip(header, row, strict=False) if name and cell.strip()}
        message_id = cells.get("message_id", "").lstrip("'") or None  # a manifest cell kept as text
        sequence: int | None = None
        if not message_id:
            if not (cells.get("batch") and cells.get("sequence")):
                yield line, "no message_id, and no batch with a sequence number"
                continue
            if not cells["sequence"].isdigit() or int(cells["sequence"]) < 1:
                yield line, "sequence is not a whole number from 1"
                continue
            sequence = int(cells["sequence"])
        yield ReturnedLetter(
            line=line,
            message_id=message_id,
            batch=cells.get("batch"),
            sequence=sequence,
            reason=reason_code(cells.get("reason", "")),
        )


class BatchManifests:
    """Finds a letter's message id by its print batch and sequence number, from the batches' manifests.

    ``folder`` is where the letter channel writes batches (``<letters outbox>/batches``);
    ``manifest`` a manifest (JSON or CSV) to use for rows that name no batch, or whose batch it is.
    """

    def __init__(self, folder: Path | None, manifest: Path | None = None) -> None:
        self.folder = folder
        self.manifest = manifest
        self._cache: dict[str, list[str] | None] = {}

    def message_id(self, batch: str | None, sequence: int) -> str | None:
        ids = self._ids(batch)
        return ids[sequence - 1] if ids is not None and sequence <= len(ids) else None

    def _ids(self, batch: str | None) -> list[str] | None:
        key = batch or ""
        if key not in self._cache:
            self._cache[key] = self._load(batch)
        return self._cache[key]

    def _load(self, batch: str | None) -> list[str] | None:
        candidates: list[Path] = []
        if self.manifest is not None and (batch is None or self.manifest.stem == Path(batch).stem):
            candidates.append(self.manifest)
        if batch and self.folder is not None:
            name = Path(batch).name  # a name, never a path the file chose
            stem = name.rsplit(".", 1)[0] if name.endswith((".pdf", ".zip", ".csv", ".json")) else name
            candidates += [self.folder / f"{stem}.json", self.folder / f"{stem}.csv"]
        for path in candidates:
            if path.is_file():
                return _manifest_ids(path)
        return None


def _manifest_ids(path: Path) -> list[str]:
    """Message ids of a manifest in print order (the JSON's ``letters``, or the CSV's ``message_id`` column)."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix == ".json":
        return [str(letter.get("message_id", "")) for letter in json.loads(text).get("letters", [])]
    rows = csv.DictReader(io.StringIO(text, newline=""))
    return [str(row.get("message_id") or "").lstrip("'") for row in rows]


def apply_returns(
    rows: Iterator[ReturnedLetter | tuple[int, str]],
    handle: Callable[[ProviderEvent], bool],
    manifests: BatchManifests,
    now: datetime,
) -> ReturnsSummary:
    """Mark each returned letter ``bounced`` through ``handle`` (``Dispatcher.handle_feedback``)."""
    summary = ReturnsSummary()
    for row in rows:
        if isinstance(row, tuple):
            summary.invalid.append(row)
            continue
        message_id = row.message_id or manifests.message_id(row.batch, row.sequence or 0)
        if not message_id:
            summary.unknown.append(row.line)
            continue
        event = ProviderEvent(
            kind=FeedbackKind.BOUNCED,
            channel="letter",
            occurred_at=now,
            message_id=message_id,
            code=row.reason,
            permanent=True,
            source="returned_mail",
        )
        try:
            matched = handle(event)
        except ReportRejected:
            summary.not_letters.append(row.line)
            continue
        if matched:
            summary.bounced.append(message_id)
        else:
            summary.unknown.append(row.line)
    return summary


__all__ = ["REASONS", "BatchManifests", "ReturnedLetter", "ReturnsSummary", "apply_returns", "read_returns"]
