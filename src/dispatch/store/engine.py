"""Connecting to the store: engines for SQLite and PostgreSQL, content encoding, outage detection."""

from __future__ import annotations

import json
import zlib
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import StaticPool

from .. import schema
from ..clock import now_utc  # noqa: F401  (moved to dispatch.clock; kept importable from the store)

COMPRESS_OVER = 1024
#: Batches this large go to PostgreSQL with COPY rather than INSERT.
COPY_OVER = 50


def encode_content(value: dict[str, Any] | None, compress: bool = True) -> bytes | None:
    """A message's content as stored: ``j`` + JSON, or ``z`` + zlib(JSON) when large."""
    if value is None:
        return None
    raw = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")
    return b"z" + zlib.compress(raw, 1) if compress and len(raw) > COMPRESS_OVER else b"j" + raw


def decode_content(blob: bytes | None) -> dict[str, Any] | None:
    """The inverse of :func:`encode_content`."""
    if blob is None:
        return None
    blob = bytes(blob)
    body = zlib.decompress(blob[1:]) if blob[:1] == b"z" else blob[1:]
    return json.loads(body)


def is_sqlite_memory(url: str) -> bool:
    return url in ("sqlite://", "sqlite:///:memory:")


def sqlite_path(url: str) -> str | None:
    """The file of a ``sqlite:///path`` URL (None for memory databases and other backends)."""
    if not url.startswith("sqlite") or is_sqlite_memory(url):
        return None
    from sqlalchemy.engine import make_url

    return make_url(url).database


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign-thread use."""
    if url.startswith("sqlite"):
        memory = is_sqlite_memory(url)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=StaticPool if memory else None,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    # No pre-ping (a round trip per checkout): a connection that died with the server is
    # caught on use instead, the pool discarded and the work retried once.
    return create_engine(url, pool_size=10, max_overflow=20, pool_recycle=1800, connect_args={"connect_timeout": 5})


def is_outage(exc: BaseException) -> bool:
    """True when ``exc`` means the store cannot be reached (as opposed to a bad statement)."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def safe_url(url: str) -> str:
    """The URL without its password, for error messages and logs."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<store url>"


def copy_rows(conn, table, rows: list[dict[str, Any]]) -> None:
    """Write rows with PostgreSQL's COPY (psycopg 3): far less work per row than INSERT.

    Auto-numbered keys are left to the database.
    """
    columns = [c for c in table.columns if not (c.primary_key and c.autoincrement is True)]
    names = ", ".join(f'"{c.name}"' for c in columns)
    json_columns = {c.name for c in columns if isinstance(c.type, schema.JSON)}
    cursor = conn.connection.driver_connection.cursor()
    try:
        with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(
                    [
                        json.dumps(row.get(c.name), separators=(",", ":"), default=str)
                        if c.name in json_columns and row.get(c.name) is not None
                        else row.get(c.name)
                        for c in columns
                    ]
                )
    finally:
        cursor.close()


def chunks(items: list[Any], size: int):
    """``items`` in slices of at most ``size`` (SQL parameter limits)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
