"""The print batch's manifest: a CSV and a JSON file for the print house.

Spreadsheet programs run a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return as a formula (OWASP "CSV injection"); such a cell is written with a
leading apostrophe, so a recipient id ``=HYPERLINK(...)`` shows as text. The JSON
manifest keeps the values as they are.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dispatch.csv_safety import safe_row

COLUMNS = ("message_id", "recipient_id", "pages", "country", "postal_country", "language", "type", "file")


def write_manifest(base: Path, letters: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> tuple[Path, Path]:
    """``<base>.csv`` and ``<base>.json``; each written to a temporary name first and then renamed."""
    csv_path, json_path = base.with_suffix(".csv"), base.with_suffix(".json")
    tmp = csv_path.with_suffix(f".csv.{os.getpid()}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(safe_row([entry.get(column, "") for column in COLUMNS]) for entry in letters)
    os.replace(tmp, csv_path)
    tmp = json_path.with_suffix(f".json.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump({"batch": dict(summary), "letters": [dict(e) for e in letters]}, handle, ensure_ascii=False, indent=2)
    os.replace(tmp, json_path)
    return csv_path, json_path
