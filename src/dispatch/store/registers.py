"""Loaded do-not-contact registers in the store: one generation per register, swapped atomically."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select, update

from .. import schema

_r = schema.registers
_e = schema.register_entries


class RegisterRows:
    """The store's part for :class:`dispatch.register_book.RegisterBook` (mixed into :class:`~dispatch.store.Store`)."""

    def replace_register(self, name: str, entries: set[tuple[str, str]], values: dict[str, Any]) -> int:
        """Store ``entries`` (``(kind, key)``) as register ``name``'s next generation and drop the old
        one, in one transaction; ``values`` are the register's row (``loaded_at``, ``file_date``,
        ``source_file``, ``entries``). Returns the new generation."""
        with self.transaction() as conn:
            current = conn.execute(select(_r.c.generation).where(_r.c.name == name)).scalar()
            generation = (current or 0) + 1
            rows = [{"register": name, "generation": generation, "kind": k, "key": v} for k, v in entries]
            for start in range(0, len(rows), 5000):
                conn.execute(_e.insert(), rows[start : start + 5000])
            values = {"generation": generation, **values}
            if current is None:
                conn.execute(_r.insert().values(name=name, **values))
            else:
                conn.execute(update(_r).where(_r.c.name == name).values(**values))
            conn.execute(delete(_e).where(_e.c.register == name, _e.c.generation != generation))
        return generation

    def register_dates(self) -> list[tuple[str, datetime | None, datetime]]:
        """``(name, file_date, loaded_at)`` of every loaded register."""
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(select(_r.c.name, _r.c.file_date, _r.c.loaded_at)).all()]

    def register_rows(self) -> dict[str, dict[str, Any]]:
        """Every loaded register's row, by name."""
        with self.engine.connect() as conn:
            return {row["name"]: dict(row) for row in conn.execute(select(_r)).mappings()}

    def register_matches(self, pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str, str]]:
        """``(register, kind, key)`` for each of the ``(kind, key)`` pairs a loaded register lists."""
        pairs = list(pairs)
        out: list[tuple[str, str, str]] = []
        with self.engine.connect() as conn:
            for start in range(0, len(pairs), 400):
                chunk = pairs[start : start + 400]
                condition = or_(*(and_(_e.c.kind == k, _e.c.key == v) for k, v in chunk))
                out.extend(
                    tuple(row)
                    for row in conn.execute(
                        select(_e.c.register, _e.c.kind, _e.c.key)
                        .join(_r, and_(_r.c.name == _e.c.register, _r.c.generation == _e.c.generation))
                        .where(condition)
                    )
                )
        return out
