"""Shared pieces of the command line: the dispatcher per invocation, JSON input, output."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from ..errors import InputError


def _width() -> int | None:
    """The terminal's width, or a wide page when the output goes to a file or pipe (no cut tables)."""
    return None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "200"))


console = Console(width=_width())
err_console = Console(stderr=True)


class CliContext:
    """Opens the dispatcher lazily, so commands that need none start fast."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._dispatcher = None

    def dispatcher(self, **overrides: Any):
        if self._dispatcher is None:
            from ..dispatcher import Dispatcher

            self._dispatcher = Dispatcher.from_config(self.config_path, overrides=overrides or None)
        return self._dispatcher

    def close(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.close()
            self._dispatcher = None


pass_cli = click.make_pass_decorator(CliContext)


def read_json(path: str, what: str) -> Any:
    """Read a JSON file or raise an :class:`InputError` naming the file and the problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {what} file {path!r}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} file {path!r} is not valid JSON: line {exc.lineno}: {exc.msg}") from None


def to_jsonable(value: Any) -> Any:
    from ..serialize import to_json

    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    return to_json(value)


def print_json(value: Any) -> None:
    click.echo(json.dumps(to_jsonable(value), ensure_ascii=False, indent=2, default=str))
