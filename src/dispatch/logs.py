"""Logging set-up: human-readable lines by default, or one JSON object per line.

Log records carry ids (message, recipient, campaign), never names, addresses or
phone numbers (SPEC §12); ids go in ``extra`` so a JSON line has them as fields::

    logger.warning("delivery failed", extra={"message_id": m.id, "channel": "email"})

gives, with ``--log-format json`` (or ``DISPATCH_LOG_FORMAT=json``, or
``[logging] format = "json"``)::

    {"time": "2026-11-24T10:30:54.810905+00:00", "level": "WARNING", "logger": "dispatch.worker",
     "message": "delivery failed", "message_id": "01J...", "channel": "email"}

:func:`configure_logging` also puts the chosen format and level into the
environment, so processes a command spawns (workers) log the same way by calling
it with no arguments.

As a safety net for messages dispatch does not write itself (a library's exception
quoting an SMTP recipient, say), email addresses and international phone numbers in
a record's message and traceback are replaced by ``<email>`` and ``<phone>``, and
national ids that pass their country's checksum (SPEC §3) by ``<national_id>``.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable
from typing import IO, Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from .errors import ConfigError
from .national_id import redact as redact_national_ids

#: The formats :func:`configure_logging` accepts.
LOG_FORMATS = ("human", "json")
#: The levels :func:`configure_logging` accepts, by name.
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
FORMAT_ENV = "DISPATCH_LOG_FORMAT"
LEVEL_ENV = "DISPATCH_LOG_LEVEL"

_HUMAN = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_EMAIL = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w+])\+\d[\d ]{6,17}\d(?!\w)")
_RESERVED = frozenset(RESERVED_ATTRS) | {"message", "asctime", "taskName"}


class HumanFormatter(logging.Formatter):
    """``time LEVEL logger: message`` with the record's extra ids appended as ``key=value``."""

    def __init__(self) -> None:
        super().__init__(_HUMAN)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = extra_fields(record)
        if not extra:
            return line
        first, newline, rest = line.partition("\n")  # keep ids on the first line, before a traceback
        ids = " ".join(f"{key}={value}" for key, value in extra.items())
        return f"{first} [{ids}]{newline}{rest}"


def redact(text: str) -> str:
    """``text`` with email addresses, international (+) phone numbers and national ids replaced by placeholders."""
    return redact_national_ids(_PHONE.sub("<phone>", _EMAIL.sub("<email>", text)))


class RedactingFilter(logging.Filter):
    """Replaces addresses and numbers in a record's message and traceback before any formatter sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def json_formatter() -> logging.Formatter:
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message and the extra fields."""
    return JsonFormatter(
        "{levelname}{name}{message}",
        style="{",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
    )


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a caller passed in ``extra=``: everything not a standard record attribute."""
    return {key: value for key, value in record.__dict__.items() if key not in _RESERVED and not key.startswith("_")}


def level_for(verbose: int) -> str:
    """The level for ``-v`` given ``verbose`` times: warning, info (-v), debug (-vv)."""
    return ("warning", "info", "debug")[min(max(verbose, 0), 2)]


def configure_logging(
    level: str | None = None,
    fmt: str | None = None,
    *,
    stream: IO[str] | None = None,
) -> Callable[[], None]:
    """Send every log record to ``stream`` (standard error) as ``fmt`` at ``level`` and above.

    ``None`` takes the value from ``DISPATCH_LOG_FORMAT`` / ``DISPATCH_LOG_LEVEL``,
    else ``human`` / ``warning``. Raises :class:`ConfigError` naming an unknown value.
    The chosen values are put into the environment for the processes this one
    spawns. Returns a function that restores the handlers, level and environment
    there were before (for a command run inside another program, such as a test).
    """
    fmt = (fmt or os.environ.get(FORMAT_ENV) or "human").strip().lower()
    level = (level or os.environ.get(LEVEL_ENV) or "warning").strip().lower()
    if fmt not in LOG_FORMATS:
        raise ConfigError(f"log format {fmt!r} is not one of {', '.join(LOG_FORMATS)}")
    if level not in LOG_LEVELS:
        raise ConfigError(f"log level {level!r} is not one of {', '.join(LOG_LEVELS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(json_formatter() if fmt == "json" else HumanFormatter())
    handler.addFilter(RedactingFilter())
    # The handler filters too: a library logger set to a lower level of its own (dramatiq's actor
    # loggers, a test's capture) must not print below the level asked for here.
    handler.setLevel(level.upper())
    root = logging.getLogger()
    before = (root.handlers[:], root.level, {name: os.environ.get(name) for name in (FORMAT_ENV, LEVEL_ENV)})
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    os.environ[FORMAT_ENV] = fmt
    os.environ[LEVEL_ENV] = level

    def restore() -> None:
        handlers, old_level, environment = before
        root.handlers[:] = handlers
        root.setLevel(old_level)
        for name, value in environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    return restore
