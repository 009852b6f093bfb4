"""Streaming readers for recipient files: CSV as spreadsheets write them, and JSON lines.

:func:`read_recipients` yields ``(line number, mapping)`` one row at a time, so a
campaign over a file of any size uses flat memory; :func:`inspect_recipients` reads
the file once beforehand (counting rows, checking the encoding, the header and the
quoting) so a broken file is refused before anything is recorded.

CSV, as Excel and LibreOffice write it:

- the separator is found from the header row: comma, semicolon (Excel's default
  where the decimal mark is a comma: Finland, Sweden, Norway) or tab;
- UTF-8 with or without a byte-order mark ("CSV UTF-8" in Excel), any line ends;
  cells quoted with ``"`` may hold separators, quotes (doubled) and line breaks;
- header names are matched without surrounding spaces and case (``ID`` is ``id``);
- dotted headers nest: ``address.street``, ``preferred_channels.price_change``;
  a numbered segment makes a list: ``consents.1.purpose``, ``consents.1.channel``,
  ``consents.2.purpose``... (entries in number order, any numbering, an entry whose
  cells are all empty is left out);
- ``address``, ``preferred_channels`` and ``consents`` may instead hold JSON in
  one cell (``[{"purpose": "marketing", ...}]``);
- yes/no columns (``marketing_blocked``, ``newsletter``, ``consents.N.granted``)
  take ``TRUE``/``FALSE`` as Excel writes them in English, Finnish (``TOSI``/
  ``EPÄTOSI``), Swedish (``SANT``/``FALSKT``) or Norwegian (``SANN``/``USANN``),
  and ``1``/``0``, any case;
- date columns take ISO dates and the Nordic day-first ``31.12.1980``;
- empty cells are left out (as if the column were not there); empty trailing
  columns and rows of empty cells, as Excel leaves them, are ignored.

Errors name the line and the column (header and spreadsheet letter), never a
cell's value: recipient files hold personal data. A line number is the line in
the file as a text editor counts it (a spreadsheet's row number, unless a cell
above holds a line break). Problems in one row make that row invalid (the
campaign reports it and goes on); problems with the file as a whole (not UTF-8,
no ``id`` column, broken quoting) raise :class:`~dispatch.errors.InputError`.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError

#: Columns that may hold a JSON object or list in one cell.
JSON_COLUMNS = frozenset({"address", "preferred_channels", "consents"})
#: Columns (last path segment) that hold yes/no.
BOOLEAN_COLUMNS = frozenset({"marketing_blocked", "newsletter", "granted"})
#: Columns (last path segment) that hold a date.
DATE_COLUMNS = frozenset({"birth_date", "last_invoice_paid_on", "data_verified_on", "at"})
#: Separators tried, in order of preference when a header fits several.
SEPARATORS = (",", ";", "\t")

_TRUE = frozenset({"true", "tosi", "sant", "sann", "1", "yes"})
_FALSE = frozenset({"false", "epätosi", "falskt", "usann", "0", "no"})
_NORDIC_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
_BOM = codecs.BOM_UTF8.decode("utf-8")

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class RecipientFile:
    """What :func:`inspect_recipients` found: the format, the CSV separator and the number of rows."""

    path: Path
    format: str  # "csv" or "jsonl"
    rows: int
    separator: str | None = None


def inspect_recipients(path: str | Path) -> RecipientFile:
    """Read the whole file once, checking what would stop a campaign half-way; count its rows.

    Raises :class:`InputError` naming the file and line when the file cannot be read,
    is not UTF-8, has no ``id`` column or has broken quoting. Memory stays flat.
    """
    source, fmt = _source(path)
    if fmt == "jsonl":
        rows = sum(1 for _, text in _lines(source) if text.strip())
        return RecipientFile(source, fmt, rows)
    lines = _lines(source)
    header = _Header.read(source, lines)
    rows = 0
    for _, cells in _records(source, lines, header):
        if any(cell.strip() for cell in cells):
            rows += 1
    return RecipientFile(source, fmt, rows, header.separator)


def read_recipients(path: str | Path, *, start_line: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, recipient mapping) from a .csv or .jsonl file, skipping lines before ``start_line``.

    A row with problems is yielded as ``{"__error__": "column ...: ..."}`` (the
    campaign counts it as invalid and names its line); see the module docstring.
    """
    source, fmt = _source(path)
    if fmt == "jsonl":
        yield from _read_jsonl(source, start_line)
    else:
        yield from _read_csv(source, start_line)


def column_letter(index: int) -> str:
    """The spreadsheet letter of the 0-based column ``index``: 0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


# -- reading lines ---------------------------------------------------------------------


def _source(path: str | Path) -> tuple[Path, str]:
    source = Path(path)
    suffix = source.suffix.lower()
    if suffix == ".csv":
        fmt = "csv"
    elif suffix in (".jsonl", ".ndjson"):
        fmt = "jsonl"
    else:
        raise InputError(f"recipients file {str(source)!r} must be .csv or .jsonl")
    if not source.is_file():
        raise InputError(f"cannot read recipients file {str(source)!r}: no such file")
    return source, fmt


def _lines(source: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line, decoded as UTF-8 (a leading byte-order mark dropped), line end kept."""
    try:
        handle = source.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read recipients file {str(source)!r}: {exc.strerror}") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError(
                    f"recipients file {str(source)!r} is not UTF-8 text (line {number}); "
                    "save it as UTF-8 (in Excel: 'CSV UTF-8')"
                ) from None
            if number == 1 and text.startswith(_BOM):
                text = text[1:]
            yield number, text


def _read_jsonl(source: Path, start_line: int) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in _lines(source):
        if number < start_line or not line.strip():
            continue
        try:
            value = json.loads(line.rstrip("\r\n"))
        except json.JSONDecodeError as exc:
            yield number, {"__error__": f"not valid JSON: {exc.msg} (column {exc.colno})"}
            continue
        if not isinstance(value, dict):
            yield number, {"__error__": f"not a JSON object but a JSON {_json_kind(value)}"}
            continue
        yield number, value


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "true/false"
    return "number" if isinstance(value, int | float) else "null"


def _records(source: Path, lines: Iterator[tuple[int, str]], header: _Header) -> Iterator[tuple[int, list[str]]]:
    """(first line number, cells) of each CSV record after the header; a record may span lines."""
    position = {"line": header.line}

    def texts() -> Iterable[str]:
        for number, text in lines:
            position["line"] = number
            yield text

    reader = csv.reader(texts(), delimiter=header.separator, strict=True)
    while True:
        start = position["line"] + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InputError(
                f"recipients file {str(source)!r}, line {position['line']}: broken quoting ({exc}); "
                'a cell with a quote must be quoted, its quotes doubled: "say ""hi"""'
            ) from None
        if cells:
            yield start, cells


# -- CSV -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    index: int
    name: str
    path: Path_ | None  # None: an empty header

    @property
    def label(self) -> str:
        if self.path is None:
            return f"column {column_letter(self.index)}"
        return f"column {self.name} ({column_letter(self.index)})"


@dataclass(frozen=True)
class _Header:
    separator: str
    columns: tuple[_Column, ...]
    line: int  # the header's line number

    @classmethod
    def read(cls, source: Path, lines: Iterator[tuple[int, str]]) -> _Header:
        number, first = next(((n, text) for n, text in lines if text.strip()), (0, None))
        where = f"recipients file {str(source)!r}"
        if first is None:
            raise InputError(f"{where} is empty; it needs a header row with at least an id column")
        separator, names = _sniff(first)
        if "id" not in names:
            raise InputError(
                f"{where} needs a header row with at least an id column; its first line has none "
                "(separators tried: comma, semicolon, tab)"
            )
        columns = tuple(_Column(index, name, _parse_path(name) if name else None) for index, name in enumerate(names))
        _check_paths(where, [c for c in columns if c.path is not None])
        return cls(separator, columns, number)


def _sniff(line: str) -> tuple[str, list[str]]:
    """The separator that makes ``line`` a header with an ``id`` column (the most columns wins), and its names."""
    best: tuple[tuple[bool, int], str, list[str]] | None = None
    for separator in SEPARATORS:
        try:
            cells = next(csv.reader([line], delimiter=separator))
        except (csv.Error, StopIteration):
            continue
        names = [cell.strip().lower() for cell in cells]
        score = ("id" in names, len(names))
        if best is None or score > best[0]:
            best = (score, separator, names)
    if best is None:
        return ",", []
    return best[1], best[2]


def _parse_path(name: str) -> Path_:
    return tuple(int(part) if part.isdigit() else part for part in name.split("."))


def _check_paths(where: str, columns: list[_Column]) -> None:
    """Refuse headers that cannot be nested: duplicates, a column that is also a parent, mixed lists."""
    seen: dict[Path_, _Column] = {}
    for column in columns:
        assert column.path is not None
        if "" in column.path:
            raise InputError(f"{where}: header {column.label} has an empty part between dots")
        if column.path in seen:
            raise InputError(f"{where}: header {column.label} repeats {seen[column.path].label}")
        if isinstance(column.path[0], int):
            raise InputError(f"{where}: header {column.label} must start with a name, not a number")
        seen[column.path] = column
    paths = set(seen)
    kinds: dict[Path_, set[type]] = {}
    for path, column in seen.items():
        for cut in range(1, len(path)):
            if path[:cut] in paths:
                raise InputError(
                    f"{where}: header {column.label} nests under {seen[path[:cut]].label}; keep one of them"
                )
            kinds.setdefault(path[:cut], set()).add(type(path[cut]))
    for parent, types in kinds.items():
        if len(types) > 1:
            name = ".".join(str(p) for p in parent)
            raise InputError(f"{where}: headers under {name!r} mix numbers and names")


def _read_csv(source: Path, start_line: int) -> Iterator[tuple[int, dict[str, Any]]]:
    lines = _lines(source)
    header = _Header.read(source, lines)
    for number, cells in _records(source, lines, header):
        if number < start_line or not any(cell.strip() for cell in cells):
            continue
        yield number, _row(header.columns, cells)


def _row(columns: tuple[_Column, ...], cells: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    problems: list[str] = []
    for index, cell in enumerate(cells):
        value = cell.strip()
        if not value:
            continue
        if index >= len(columns):
            problems.append(f"column {column_letter(index)} has a value but the header row has no such column")
            break
        column = columns[index]
        if column.path is None:
            problems.append(f"{column.label} has a value but no header")
            continue
        try:
            _put(out, column.path, _convert(column.path, value))
        except ValueError as exc:
            problems.append(f"{column.label}: {exc}")
    if problems:
        return {"__error__": "; ".join(problems)}
    return _listify(out)


def _convert(path: Path_, value: str) -> Any:
    key = path[-1]
    if len(path) == 1 and key in JSON_COLUMNS and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg} at character {exc.pos + 1})") from None
    if key in BOOLEAN_COLUMNS:
        folded = value.lower()
        if folded in _TRUE:
            return True
        if folded in _FALSE:
            return False
        raise ValueError("not a yes/no value (TRUE or FALSE)")
    if key in DATE_COLUMNS:
        match = _NORDIC_DATE.match(value)
        if match:
            day, month, year = (int(g) for g in match.groups())
            return f"{year:04d}-{month:02d}-{day:02d}"
    return value


def _put(out: dict[Any, Any], path: Path_, value: Any) -> None:
    node = out
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


def _listify(node: Any) -> Any:
    """Turn the dicts keyed by numbers (numbered headers) into lists in number order."""
    if not isinstance(node, dict):
        return node
    items = {key: _listify(value) for key, value in node.items()}
    if items and all(isinstance(key, int) for key in items):
        return [items[key] for key in sorted(items)]
    return items
