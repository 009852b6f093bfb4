"""Schema migrations with Alembic: every store is brought to the newest schema on open.

Several processes opening one new store at once (web workers, a campaign beside a
worker) must not race on its migrations, so an upgrade takes a lock first and then
looks again at the revision it finds: PostgreSQL an advisory lock, SQLite the
database's own write lock (``BEGIN EXCLUSIVE``: the whole upgrade is one transaction,
which SQLite's DDL allows). ``dispatch db upgrade`` runs the same thing explicitly, and
``dispatch db revision -m "..."`` (for developers) writes a new migration.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_ID = 0x64697370  # "disp"


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade_schema(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (default: the newest), safe to run from several processes at once.

    The lock is taken inside the transaction that runs the migrations, and Alembic reads
    the current revision after it, so whoever waited finds the work done and does nothing.
    """
    if revision == "head" and current_revision(engine) == head_revision():
        return
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        elif engine.dialect.name == "sqlite":
            # pysqlite begins transactions lazily (only before DML); begin one ourselves,
            # exclusive, so the CREATE TABLEs are inside it and other writers wait.
            conn.exec_driver_sql("BEGIN EXCLUSIVE")
        command.upgrade(alembic_config(conn), revision)
