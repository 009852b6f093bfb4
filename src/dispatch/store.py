"""The store: contact history, outbox and delivery state (SQLAlchemy; SQLite or PostgreSQL).

The store is the source of truth. A message is written here before it goes on the
queue; workers move it through its states with compare-and-set updates so two
workers never deliver the same message; the relay finds what was stored but never
enqueued, or enqueued but never finished, and hands it to the queue again.

States: ``suppressed`` (final) · ``queued`` → ``sending`` → ``delivered`` (final),
or back to ``queued`` on a transient failure, or ``failed`` (permanent; a bounce)
or ``dead`` (retries exhausted).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import threading
import zlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import String, bindparam, create_engine, event, func, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.pool import StaticPool

from . import schema
from .errors import StoreError
from .store_queries import StoreQueries, _chunks

HOSTNAME = socket.gethostname()


class DuplicateKey(StoreError):
    """A message with this idempotency key is already stored."""

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} is already used")
        self.key = key


def worker_identity() -> str:
    """``host:pid`` — who claimed a message, so a dead local claimant is recognised."""
    return f"{HOSTNAME}:{os.getpid()}"


COMPRESS_OVER = 1024
#: Batches this large go to PostgreSQL with COPY rather than INSERT.
COPY_OVER = 50


def encode_content(value: dict[str, Any] | None, compress: bool = True) -> bytes | None:
    if value is None:
        return None
    raw = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")
    return b"z" + zlib.compress(raw, 1) if compress and len(raw) > COMPRESS_OVER else b"j" + raw


def decode_content(blob: bytes | None) -> dict[str, Any] | None:
    if blob is None:
        return None
    blob = bytes(blob)
    body = zlib.decompress(blob[1:]) if blob[:1] == b"z" else blob[1:]
    return json.loads(body)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign-thread use."""
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
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
    # No pre-ping (a round trip per checkout, two per delivered message): a connection that
    # died with the server is caught on use instead, the pool discarded and the work retried.
    return create_engine(url, pool_size=10, max_overflow=20, pool_recycle=1800)


class Store(StoreQueries):
    """Reads and writes the contact history, the outbox and delivery state."""

    def __init__(self, url: str, *, compress: bool = True, create: bool = True) -> None:
        self.url = url
        self.compress = compress
        try:
            self.engine = make_engine(url)
            if create:
                from .migrate import upgrade_schema

                upgrade_schema(self.engine)
        except OperationalError as exc:
            raise StoreError(f"cannot open the store at {_safe_url(url)}: {exc.orig}") from None
        self.dialect = self.engine.dialect.name
        #: SQLite has one writer at a time and makes the others sleep-and-retry; threads of
        #: this process take turns on a lock instead, which is much faster under load.
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else contextlib.nullcontext()
        self._known_variants: set[str] = set()
        self._variant_cache: dict[str, dict[str, Any]] = {}

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        """A write transaction (committed on success, rolled back on error)."""
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    # -- settings --------------------------------------------------------------------

    def setting(self, key: str, default_factory=None) -> str | None:
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

    # -- writing decisions -----------------------------------------------------------

    def find_by_key(self, idempotency_key: str) -> dict[str, Any] | None:
        t = schema.messages
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.idempotency_key == idempotency_key)).mappings().first()
        return dict(row) if row else None

    def existing_keys(self, keys: Sequence[str]) -> dict[str, str]:
        """Which of ``keys`` are already used: key → message id."""
        if not keys:
            return {}
        t = schema.messages
        out: dict[str, str] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(list(keys), 900):
                rows = conn.execute(select(t.c.idempotency_key, t.c.id).where(t.c.idempotency_key.in_(chunk)))
                out.update({k: i for k, i in rows})
        return out

    def insert_message(self, row: dict[str, Any], variants: Mapping[str, Any] | None = None) -> None:
        """Store one message; raises :class:`DuplicateKey` if its idempotency key is taken."""
        try:
            with self.transaction() as conn:
                saved = self._save_variants(conn, [row], variants)
                conn.execute(schema.messages.insert(), [self._prepare(row)])
            self._known_variants |= saved
        except IntegrityError:
            key = row.get("idempotency_key")
            if key and self.find_by_key(key):
                raise DuplicateKey(key) from None
            raise

    def insert_messages(self, rows: list[dict[str, Any]], variants: Mapping[str, Any] | None = None) -> set[str]:
        """Store a batch in one transaction; returns the ids stored.

        The caller has removed keys already used; if another process took one of them
        meanwhile, the batch is stored again without the taken ones, which are left out
        of the returned ids (they must not be enqueued).
        """
        if not rows:
            return set()
        prepared = [self._prepare(r) for r in rows]
        try:
            with self.transaction() as conn:
                saved = self._save_variants(conn, rows, variants)
                if self.dialect == "postgresql" and len(prepared) >= COPY_OVER:
                    _copy_rows(conn, schema.messages, prepared)
                else:
                    conn.execute(schema.messages.insert(), prepared)
            self._known_variants |= saved
            return {r["id"] for r in rows}
        except IntegrityError:
            return self._insert_skipping_taken_keys(prepared, rows, variants)

    def _insert_skipping_taken_keys(self, prepared, rows, variants) -> set[str]:
        t = schema.messages
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        statement = insert(t).on_conflict_do_nothing(index_elements=[t.c.idempotency_key]).returning(t.c.id)
        inserted: set[str] = set()
        with self.transaction() as conn:
            saved = self._save_variants(conn, rows, variants)
            for row in prepared:
                inserted.update(conn.execute(statement, row).scalars())
        self._known_variants |= saved
        return inserted

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

    def _variant(self, variant_id: str) -> dict[str, Any]:
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
            from .render import Renderer
            from .render_cache import assemble

            record = self._variant(content["v"])
            content["parts"] = assemble(record, content["t"], content["ta"], Renderer.tidy)
        return content

    def _prepare(self, row: dict[str, Any]) -> dict[str, Any]:
        out = dict(row)
        out["content"] = encode_content(row.get("content"), self.compress)
        out.setdefault("attempts", 0)
        out.setdefault("possible_duplicate", False)
        return out

    def _upsert_campaign(self, conn, campaign: dict[str, Any]) -> None:
        t = schema.campaigns
        exists = conn.execute(select(t.c.id).where(t.c.id == campaign["id"])).scalar()
        if exists:
            conn.execute(update(t).where(t.c.id == campaign["id"]).values(updated_at=campaign["updated_at"]))
        else:
            conn.execute(t.insert().values(**campaign))

    def save_campaign(self, campaign: dict[str, Any]) -> None:
        with self.transaction() as conn:
            self._upsert_campaign(conn, campaign)

    def campaign(self, campaign_id: str) -> dict[str, Any] | None:
        t = schema.campaigns
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.id == campaign_id)).mappings().first()
        return dict(row) if row else None

    def set_campaign_stats(self, campaign_id: str, stats: dict[str, Any], now: datetime) -> None:
        t = schema.campaigns
        with self.transaction() as conn:
            conn.execute(update(t).where(t.c.id == campaign_id).values(stats=stats, updated_at=now))

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
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        statement = insert(t)
        statement = statement.on_conflict_do_update(
            index_elements=[t.c.id],
            set_={
                c: statement.excluded[c]
                for c in ("country", "status", "last_invoice_paid_on", "data_verified_on", "last_seen_at")
            },
        )
        with self.transaction() as conn:
            conn.execute(statement, list(rows.values()))

    # -- queue bookkeeping -------------------------------------------------------------

    def mark_enqueued(self, ids: Sequence[str], at: datetime) -> None:
        t = schema.messages
        with self.transaction() as conn:
            for chunk in _chunks(list(ids), 900):
                conn.execute(update(t).where(t.c.id.in_(chunk), t.c.status == "queued").values(enqueued_at=at))

    def channel_of(self, message_id: str) -> str | None:
        """The channel of a message that is still queued (None otherwise)."""
        t = schema.messages
        with self.engine.connect() as conn:
            return conn.execute(select(t.c.channel).where(t.c.id == message_id, t.c.status == "queued")).scalar()

    def clear_enqueued(self, ids: Sequence[str]) -> None:
        """Forget that messages were enqueued (the broker refused them): the relay takes them next."""
        t = schema.messages
        with self.transaction() as conn:
            for chunk in _chunks(list(ids), 900):
                conn.execute(update(t).where(t.c.id.in_(chunk), t.c.status == "queued").values(enqueued_at=None))

    def claim(self, message_id: str, worker: str, now: datetime) -> dict[str, Any] | None:
        """Move a queued message to ``sending`` for ``worker``; None if it is not queued.

        A compare-and-set: of two workers handed the same message, exactly one wins.
        """
        params = {"mid": message_id, "now": now, "worker": worker}
        row = self._retry_on_disconnect(lambda conn: conn.execute(_CLAIM, params).mappings().first())
        if row is None:
            return None
        out = dict(row)
        out["content"] = self.content(out["content"])
        return out

    def finish(
        self,
        message_id: str,
        worker: str,
        *,
        status: str,
        now: datetime,
        provider_id: str | None = None,
        error: str | None = None,
        meta: dict[str, Any] | None = None,
        attempt: dict[str, Any] | None = None,
    ) -> bool:
        """Leave ``sending`` for ``status`` if ``worker`` still holds the claim.

        ``meta`` replaces the message's meta when given (merge it with the claimed row's
        first); ``attempt`` (a delivery_attempts row) is written in the same transaction.
        """
        statement = _FINISH[(status == "queued", meta is not None)]
        params = {
            "mid": message_id,
            "worker": worker,
            "status": status,
            "error": error,
            "now": now,
            "provider_id": provider_id,
            "meta": meta,
        }

        def write(conn) -> int:
            count = conn.execute(statement, params).rowcount
            if attempt is not None:
                conn.execute(_ATTEMPT, attempt)
            return count

        return self._retry_on_disconnect(write) == 1

    def _retry_on_disconnect(self, work):
        """Run ``work(conn)`` in a transaction; once more on a fresh connection if the old one died.

        Both claim and finish are compare-and-set updates, so running one twice is harmless.
        """
        for attempt in (1, 2):
            try:
                with self.transaction() as conn:
                    return work(conn)
            except DBAPIError as exc:
                if attempt == 2 or not exc.connection_invalidated:
                    raise
        return None  # pragma: no cover - the loop returns or raises

    def due_for_relay(
        self,
        now: datetime,
        *,
        stuck_after: timedelta,
        lease: timedelta,
        horizon: timedelta = timedelta(0),
        limit: int = 5000,
    ) -> list[dict[str, Any]]:
        """Messages the queue may have lost: queued and never (or long ago) enqueued and due,
        or claimed by a worker that died. Stale claims are released back to ``queued``.
        """
        t = schema.messages
        stale_claim = now - lease
        with self.transaction() as conn:
            claims = conn.execute(select(t.c.id, t.c.claimed_by, t.c.claimed_at).where(t.c.status == "sending")).all()
            stale = [mid for mid, who, at in claims if at is None or at < stale_claim or _claimant_dead(who)]
            for chunk in _chunks(stale, 900):
                conn.execute(
                    update(t)
                    .where(t.c.id.in_(chunk), t.c.status == "sending")
                    .values(
                        status="queued", claimed_by=None, claimed_at=None, enqueued_at=None, possible_duplicate=True
                    )
                )
            due = or_(t.c.send_after.is_(None), t.c.send_after <= now + horizon)
            columns = (t.c.id, t.c.channel, t.c.category, t.c.queue, t.c.send_after)
            # Two lookups, each on its own index: never handed to the queue, and handed over long ago.
            rows = [
                dict(r)
                for r in conn.execute(
                    select(*columns)
                    .where(t.c.status == "queued", t.c.enqueued_at.is_(None), due)
                    .order_by(t.c.id)
                    .limit(limit)
                ).mappings()
            ]
            if len(rows) < limit and stuck_after < timedelta(days=3650):
                rows += [
                    dict(r)
                    for r in conn.execute(
                        select(*columns)
                        .where(t.c.status == "queued", t.c.enqueued_at < now - stuck_after, due)
                        .order_by(t.c.enqueued_at)
                        .limit(limit - len(rows))
                    ).mappings()
                ]
        return rows


_m = schema.messages
#: Prepared once: building statements per message costs more than running them.
_CLAIM = (
    update(_m)
    .where(_m.c.id == bindparam("mid"), _m.c.status == "queued")
    .values(status="sending", claimed_at=bindparam("now"), claimed_by=bindparam("worker"), attempts=_m.c.attempts + 1)
    # One round trip: the winner gets what delivery needs, the loser nothing.
    .returning(
        *(
            _m.c[name]
            for name in (
                "id",
                "status",
                "message_type",
                "category",
                "channel",
                "language",
                "locale",
                "country",
                "recipient_id",
                "address",
                "content",
                "send_after",
                "deadline",
                "attempts",
                "meta",
                "campaign_id",
                "queue",
            )
        )
    )
)


def _finish_statement(back_to_queue: bool, with_meta: bool):
    values: dict[str, Any] = {
        "status": bindparam("status"),
        "error": bindparam("error"),
        "provider_id": func.coalesce(bindparam("provider_id", type_=String), _m.c.provider_id),
    }
    if back_to_queue:
        values.update(claimed_at=None, claimed_by=None, enqueued_at=bindparam("now", type_=schema.UTCDateTime))
    else:
        values["finished_at"] = bindparam("now", type_=schema.UTCDateTime)
    if with_meta:
        values["meta"] = bindparam("meta", type_=schema.JSON)
    return (
        update(_m)
        .where(_m.c.id == bindparam("mid"), _m.c.status == "sending", _m.c.claimed_by == bindparam("worker"))
        .values(**values)
    )


_FINISH = {(queued, meta): _finish_statement(queued, meta) for queued in (False, True) for meta in (False, True)}
_ATTEMPT = schema.delivery_attempts.insert()


def _copy_rows(conn, table, rows: list[dict[str, Any]]) -> None:
    """Write rows with PostgreSQL's COPY (psycopg 3): far less work per row than INSERT."""
    columns = [c for c in table.columns]
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


def now_utc() -> datetime:
    return datetime.now(UTC)


def _claimant_dead(claimed_by: str | None) -> bool:
    """True when the claim was made by a process on this host that no longer exists."""
    if not claimed_by or ":" not in claimed_by:
        return False
    host, _, pid = claimed_by.split("/", 1)[0].rpartition(":")
    if host != HOSTNAME or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _safe_url(url: str) -> str:
    """The URL without its password, for error messages and logs."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<store url>"
