"""Schema changes go through Alembic: a fresh database upgraded to head matches the code's tables."""

from __future__ import annotations

import multiprocessing

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from dispatch.migrate import current_revision, head_revision, upgrade_schema
from dispatch.schema import metadata
from dispatch.store import Store


def assert_matches_code(url: str) -> None:
    engine = create_engine(url)
    upgrade_schema(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == [], differences
    assert {"messages", "variants", "consents", "registers", "register_entries", "recipients"} <= set(
        inspect(engine).get_table_names()
    )
    engine.dispose()


def test_sqlite_upgrades_to_the_schema_the_code_declares(tmp_path):
    assert_matches_code(f"sqlite:///{tmp_path / 'm.db'}")


@pytest.mark.server
def test_postgresql_upgrades_to_the_schema_the_code_declares(postgres_url):
    assert_matches_code(postgres_url)


def test_an_existing_store_is_upgraded_in_place_and_keeps_its_data(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    upgrade_schema(engine, "0001")  # the first released schema
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO settings (key, value) VALUES ('link_secret', 'kept')")
    engine.dispose()
    store = Store(url)  # opening migrates to head
    assert store.link_secret() == "kept"
    assert current_revision(store.engine) == head_revision()
    store.close()


def _open_store(url: str, barrier, results) -> None:
    """In a child process: wait for the others, then open (and so migrate) the store."""
    from dispatch.store import Store

    barrier.wait(timeout=120)
    try:
        Store(url).close()
        results.put("ok")
    except Exception as exc:  # the parent reports whatever went wrong
        results.put(f"{type(exc).__name__}: {exc}")


def open_at_once(url: str, processes: int = 4) -> list[str]:
    """Start ``processes`` real processes that open a new store at the same moment; their outcomes."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes)
    results = ctx.Queue()
    children = [ctx.Process(target=_open_store, args=(url, barrier, results)) for _ in range(processes)]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=180) for _ in children]
    for child in children:
        child.join(timeout=60)
    return outcomes


@pytest.mark.slow
def test_processes_opening_a_new_sqlite_store_at_once_all_succeed(tmp_path):
    for attempt in range(3):
        url = f"sqlite:///{tmp_path / f'fresh{attempt}.db'}"
        assert open_at_once(url) == ["ok"] * 4
        engine = create_engine(url)
        assert current_revision(engine) == head_revision()
        engine.dispose()


@pytest.mark.server
@pytest.mark.slow
def test_processes_opening_a_new_postgresql_store_at_once_all_succeed(postgres_server):
    for _ in range(2):
        url = postgres_server.new_database()
        assert open_at_once(url) == ["ok"] * 4
        engine = create_engine(url)
        assert current_revision(engine) == head_revision()
        engine.dispose()


def test_a_sqlite_upgrade_is_one_transaction(tmp_path):
    """The schema appears all at once: a failed upgrade leaves no half-made tables behind."""
    url = f"sqlite:///{tmp_path / 'atomic.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:  # a table the first migration also creates: it fails part-way
        conn.exec_driver_sql("CREATE TABLE variants (id TEXT)")
    with pytest.raises(Exception, match="already exists"):
        upgrade_schema(engine)
    assert set(inspect(engine).get_table_names()) == {"variants"}
    engine.dispose()
