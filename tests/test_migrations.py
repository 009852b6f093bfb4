"""Schema changes go through Alembic: a fresh database upgraded to head matches the code's tables."""

from __future__ import annotations

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
