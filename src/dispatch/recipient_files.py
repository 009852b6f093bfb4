"""Streaming readers for recipient files: CSV and JSON lines.

Both yield ``(line_number, mapping)`` one at a time, so a campaign over a file of
any size uses flat memory. CSV columns with dots build nested mappings
(``address.street``, ``preferred_channels.price_change``); a cell holding JSON
(``consents``, ``preferred_channels``) is decoded.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import InputError

_JSON_COLUMNS = ("consents", "preferred_channels", "address")


def read_recipients(path: str | Path, *, start_line: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, recipient mapping) from a .csv or .jsonl file, skipping lines before ``start_line``."""
    source = Path(path)
    suffix = source.suffix.lower()
    if suffix == ".csv":
        yield from _read_csv(source, start_line)
    elif suffix in (".jsonl", ".ndjson"):
        yield from _read_jsonl(source, start_line)
    else:
        raise InputError(f"recipients file {str(source)!r} must be .csv or .jsonl")


def _open(source: Path):
    try:
        return source.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InputError(f"cannot read recipients file {str(source)!r}: {exc.strerror}") from None


def _read_jsonl(source: Path, start_line: int) -> Iterator[tuple[int, dict[str, Any]]]:
    with _open(source) as handle:
        for number, line in enumerate(handle, start=1):
            if number < start_line or not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, {"__error__": f"line {number} is not valid JSON: {exc.msg}"}
                continue
            if not isinstance(value, dict):
                yield number, {"__error__": f"line {number} is not a JSON object"}
                continue
            yield number, value


def _read_csv(source: Path, start_line: int) -> Iterator[tuple[int, dict[str, Any]]]:
    with _open(source) as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "id" not in [f.strip() for f in reader.fieldnames]:
            raise InputError(f"recipients file {str(source)!r} needs a header row with at least an id column")
        for row in reader:
            number = reader.line_num
            if number < start_line:
                continue
            yield number, _nest(row)


def _nest(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, raw in row.items():
        if key is None:
            continue
        key = key.strip()
        value = raw.strip() if isinstance(raw, str) else raw
        if value == "":
            continue
        if key in _JSON_COLUMNS and isinstance(value, str) and value[:1] in "[{":
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                out.setdefault("__error__", f"column {key} holds malformed JSON")
                continue
        if "." in key:
            head, _, tail = key.partition(".")
            out.setdefault(head, {})
            if isinstance(out[head], dict):
                out[head][tail] = value
            continue
        out[key] = value
    return out
