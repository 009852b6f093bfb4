"""The store's foundation: the engine, transactions, settings, campaigns, recipients and rendered variants."""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import inspect, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError

from .. import schema
from ..errors import StoreError
from .engine import decode_content, encode_content, make_engine, now_utc, safe_url, sqlite_path

#: Rebuilds a message's parts from its variant record and its own values (``render_cache.assemble``);
#: handed in by the dispatcher so that the store itself knows nothing of rendering.
Assembler = Callable[[Mapping[str, Any], Mapping[str, str], bool], dict[str, str]]


class StoreBase:
    """Engine, transactions and the small tables; :class:`dispatch.store.Store` adds messages."""

    def __init__(
        self, url: str, *, compress: bool = True, create: bool = True, assemble: Assembler | None = None
    ) -> None:
        self.url = url
        self.compress = compress
        self._assemble = assemble
        try:
            self.engine = make_engine(url)
            if create:
                _upgrade(self.engine)
        except OperationalError as exc:
            raise StoreError(f"cannot open the store at {safe_url(url)}: {exc.orig}") from None
        self.dialect = self.engine.dialect.name
        #: SQLite has one writer at a time and makes the others sleep-and-retry; threads of
        #: this process take turns on a lock instead, which is much faster under load.
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else contextlib.nullcontext()
        self._known_variants: set[str] = set()
        self._variant_cache: dict[str, dict[str, Any]] = {}

    @classmethod
    def open_existing(cls, url: str, **kwargs: Any) -> Any:
        """The store at ``url`` if it already exists, else None — creates nothing (for ``decide()``)."""
        path = sqlite_path(url)
        if url.startswith("sqlite") and (path is None or not _exists(path)):
            return None
        try:
            store = cls(url, create=False, **kwargs)
        except StoreError:
            return None
        try:
            if not inspect(store.engine).has_table("messages"):
                store.close()
                return None
        except OperationalError:
            store.close()
            return None
        return store

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        """Run the cheapest query there is; raises whatever the database raises when it is unreachable."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        """A write transaction (committed on success, rolled back on error)."""
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    # -- settings ----------------------------------------------------------------------

    def setting(self, key: str, default_factory: Callable[[], str] | None = None) -> str | None:
        """A stored setting; with ``default_factory``, created on first use (race-safe)."""
        t = schema.settings
        with self.transaction() as conn:
            value = conn.execute(select(t.c.value).where(t.c.key == key)).scalar()
            if value is not None or default_factory is None:
                return value
            try:
                with conn.begin_nested():
                    conn.execute(t.insert().values(key=key, value=default_factory()))
            except IntegrityError:
                pass
            return conn.execute(select(t.c.value).where(t.c.key == key)).scalar()

    def link_secret(self) -> str:
        return self.setting("link_secret", lambda: secrets.token_urlsafe(32)) or ""

    # -- campaigns ---------------------------------------------------------------------

    def save_campaign(self, campaign: dict[str, Any]) -> None:
        t = schema.campaigns
        with self.transaction() as conn:
            exists = conn.execute(select(t.c.id).where(t.c.id == campaign["id"])).scalar()
            if exists:
                conn.execute(update(t).where(t.c.id == campaign["id"]).values(updated_at=campaign["updated_at"]))
            else:
                conn.execute(t.insert().values(**campaign))

    def campaign(self, campaign_id: str) -> dict[str, Any] | None:
        t = schema.campaigns
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.id == campaign_id)).mappings().first()
        return dict(row) if row else None

    def set_campaign_stats(self, campaign_id: str, stats: dict[str, Any], now: datetime) -> None:
        t = schema.campaigns
        with self.transaction() as conn:
            conn.execute(update(t).where(t.c.id == campaign_id).values(stats=stats, updated_at=now))

    # -- recipients --------------------------------------------------------------------

    def upsert_recipients(self, people: Sequence[Any], now: datetime) -> None:
        """Remember each recipient's status and dates (retention is computed from them)."""
        if not people:
            return
        t = schema.recipients
        rows = {
            p.id: {
                "id": p.id,
                "country": p.country,
                "status": p.status,
                "last_invoice_paid_on": p.last_invoice_paid_on,
                "data_verified_on": p.data_verified_on,
                "last_seen_at": now,
            }
            for p in people
        }
        statement = self._insert(t)
        statement = statement.on_conflict_do_update(
            index_elements=[t.c.id],
            set_={
                c: statement.excluded[c]
                for c in ("country", "status", "last_invoice_paid_on", "data_verified_on", "last_seen_at")
            },
        )
        with self.transaction() as conn:
            conn.execute(statement, list(rows.values()))

    def _insert(self, table):
        """The dialect's INSERT (with ON CONFLICT support)."""
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table)

    # -- rendered variants ---------------------------------------------------------------

    def _save_variants(self, conn, rows: list[dict[str, Any]], variants: Mapping[str, Any] | None) -> set[str]:
        """Store the variants ``rows`` refer to that the store does not have yet (same transaction)."""
        wanted = {r["content"]["v"] for r in rows if r.get("content") and "v" in r["content"]}
        wanted -= self._known_variants
        if not wanted:
            return wanted
        t = schema.variants
        present = {i for (i,) in conn.execute(select(t.c.id).where(t.c.id.in_(list(wanted))))}
        missing = wanted - present
        if missing:
            if variants is None or not missing <= set(variants):
                raise StoreError("a message refers to a rendered variant that was not handed to the store")
            now = now_utc()
            conn.execute(
                t.insert(), [{"id": i, "record": encode_content(variants[i], True), "created_at": now} for i in missing]
            )
        return wanted

    def variant(self, variant_id: str) -> dict[str, Any]:
        """A rendered variant's record (cached: variants never change)."""
        record = self._variant_cache.get(variant_id)
        if record is None:
            t = schema.variants
            with self.engine.connect() as conn:
                blob = conn.execute(select(t.c.record).where(t.c.id == variant_id)).scalar()
            if blob is None:
                raise StoreError(f"rendered variant {variant_id} is missing from the store")
            record = decode_content(blob)
            if len(self._variant_cache) > 1024:
                self._variant_cache.clear()
            self._variant_cache[variant_id] = record
        return record

    def content(self, blob: bytes | None) -> dict[str, Any] | None:
        """A message's stored content with its parts rebuilt (from its variant if it has one)."""
        content = decode_content(blob)
        if content and "v" in content:
            if self._assemble is None:
                raise StoreError("this store was opened without a way to rebuild rendered variants")
            content["parts"] = self._assemble(self.variant(content["v"]), content["t"], content["ta"])
        return content


def _upgrade(engine, patience: float = 30.0) -> None:
    """Migrate; on SQLite, wait while another process holds the file's lock (it may be migrating it).

    SQLite answers "database is locked" at once in some of the steps of opening a file another
    process is writing (switching to WAL, upgrading a read lock), whatever the busy timeout.
    """
    import time

    from ..migrate import upgrade_schema

    deadline = time.monotonic() + patience
    delay = 0.05
    while True:
        try:
            upgrade_schema(engine)
            return
        except OperationalError as exc:
            locked = engine.dialect.name == "sqlite" and "locked" in str(exc.orig)
            if not locked or time.monotonic() > deadline:
                raise
            engine.dispose()
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def _exists(path: str) -> bool:
    import os

    return os.path.exists(path)
