"""CSV cells a spreadsheet will not run as formulas (OWASP "CSV injection").

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a
formula to Excel and LibreOffice (``=HYPERLINK(...)`` in a recipient id becomes a link,
worse ones run commands). Every CSV dispatch writes passes its cells through
:func:`safe_cell` (or whole rows through :func:`safe_row`), which puts a ``'`` in front
of such text: spreadsheets show it as text, and the original is one character away.
Numbers are left alone (a negative amount stays a number).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, overload

#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value``, with a ``'`` in front when it is text a spreadsheet would treat as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


@overload
def safe_row(row: Mapping[str, Any]) -> dict[str, Any]: ...
@overload
def safe_row(row: Iterable[Any]) -> list[Any]: ...
def safe_row(row: Mapping[str, Any] | Iterable[Any]) -> dict[str, Any] | list[Any]:
    """A row for ``csv.DictWriter`` (a mapping) or ``csv.writer`` (a sequence) with every cell made safe."""
    if isinstance(row, Mapping):
        return {key: safe_cell(value) for key, value in row.items()}
    return [safe_cell(value) for value in row]
