"""Loaded do-not-contact registers: atomic import, matching, staleness.

``import_file`` reads a register file completely before touching the store, then
in one transaction writes the entries under a new generation, switches the
register to it and deletes the old one — a failed or half-read file leaves the
previous load in place.

``as_of`` tells the policy engine how recent each loaded copy is; the engine
fails closed (``register_unavailable``) on a register that was never loaded or
is older than its country's refresh period (SPEC §4).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from .clock import now_utc
from .errors import RegisterError
from .models import Recipient
from .policy.facts import RegisterInfo, register_is_fresh
from .registers import Register, recipient_keys
from .store import Store

logger = logging.getLogger("dispatch.registers")


class RegisterBook:
    """The registers a dispatcher knows, and what has been loaded into the store."""

    def __init__(self, store: Store, classes: Mapping[str, type[Register]], refresh_days: Mapping[str, int]) -> None:
        self.store = store
        self.classes = dict(classes)
        self.refresh_days = dict(refresh_days)
        self._warned: set[str] = set()

    def info(self) -> dict[str, RegisterInfo]:
        return {n: RegisterInfo(n, c.country, tuple(c.channels)) for n, c in self.classes.items()}

    def get(self, name: str) -> type[Register]:
        try:
            return self.classes[name]
        except KeyError:
            known = ", ".join(sorted(self.classes)) or "none"
            raise RegisterError(f"unknown register {name!r} (known: {known})") from None

    def import_file(
        self, name: str, path: str | Path, *, file_date: datetime | None = None, now: datetime | None = None
    ) -> dict[str, Any]:
        """Replace register ``name`` with the entries of ``path``, atomically."""
        cls = self.get(name)
        source = Path(path)
        entries = {(e.kind, e.key) for e in cls().read(source)}
        if not entries:
            raise RegisterError(f"{source}: the file holds no entries; the previous load is kept")
        loaded_at = now or now_utc()
        values = {
            "loaded_at": loaded_at,
            "file_date": file_date or loaded_at,
            "source_file": str(source),
            "entries": len(entries),
        }
        generation = self.store.replace_register(name, entries, values)
        self._warned.discard(name)
        return {"name": name, "entries": len(entries), "loaded_at": loaded_at, "generation": generation}

    def as_of(self) -> dict[str, datetime]:
        """For each loaded register, the moment its current copy was produced (file date, else load time).

        A register missing here has never been loaded. This is what the policy engine
        reads (:attr:`dispatch.policy.Facts.registers_as_of`) to fail closed.
        """
        rows = self.store.register_dates()
        return {name: file_date or loaded_at for name, file_date, loaded_at in rows if name in self.classes}

    def status(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Each known register: when loaded, from which file date, how many entries, stale or not.

        ``stale`` is true for a register never loaded too: either way, letter and phone
        marketing it covers is suppressed (``register_unavailable``) until an import.
        """
        now = now or now_utc()
        loaded = self.store.register_rows()
        out = []
        for name, cls in sorted(self.classes.items()):
            row = loaded.get(name)
            refresh = self.refresh_days.get(cls.country, 31)
            as_of = (row["file_date"] or row["loaded_at"]) if row else None
            age = (now - as_of).days if as_of else None
            out.append(
                {
                    "name": name,
                    "title": cls.title,
                    "country": cls.country,
                    "channels": list(cls.channels),
                    "loaded_at": row["loaded_at"] if row else None,
                    "file_date": row["file_date"] if row else None,
                    "entries": row["entries"] if row else 0,
                    "age_days": age,
                    "refresh_days": refresh,
                    "stale": not register_is_fresh(as_of, now, refresh),
                }
            )
        return out

    def listed_on(self, recipients: Iterable[Recipient], now: datetime | None = None) -> dict[str, frozenset[str]]:
        """For each recipient id, the loaded registers that list them (any channel)."""
        keys: dict[tuple[str, str], list[str]] = {}
        for recipient in recipients:
            for entry in recipient_keys(recipient):
                keys.setdefault((entry.kind, entry.key), []).append(recipient.id)
        if not keys:
            return {}
        found: dict[str, set[str]] = {}
        for register, kind, key in self.store.register_matches(keys):
            for rid in keys.get((kind, key), ()):
                found.setdefault(rid, set()).add(register)
        if found:
            self._warn_if_stale({name for names in found.values() for name in names}, now)
        return {rid: frozenset(names) for rid, names in found.items()}

    def _warn_if_stale(self, names: set[str], now: datetime | None) -> None:
        pending = names - self._warned
        if not pending:
            return
        for item in self.status(now):
            if item["name"] in pending and item["stale"]:
                logger.warning(
                    "register %s is stale: file date %s is older than %d days; its letter and phone marketing "
                    "is suppressed (register_unavailable) until a fresh copy is imported",
                    item["name"],
                    item["file_date"],
                    item["refresh_days"],
                )
            self._warned.add(item["name"])


def describe_unavailable(status: Iterable[Mapping[str, Any]]) -> list[str]:
    """One plain sentence per register that cannot be relied on, from :meth:`RegisterBook.status`.

    For ``dispatch registers status`` and the demo summary: what is held back, and how to fix it.
    """
    lines = []
    for item in status:
        if not item["stale"]:
            continue
        if item["loaded_at"] is None:
            why = "has never been loaded"
        else:
            as_of = item["file_date"] or item["loaded_at"]
            why = f"is as of {as_of.date().isoformat()}, older than {item['refresh_days']} days"
        channels = " and ".join({"letter": "letters", "phone": "calls"}.get(c, c) for c in item["channels"])
        lines.append(
            f"{item['name']} ({item['country']}) {why}: marketing {channels} it covers are suppressed "
            f"(register_unavailable) until `dispatch registers import {item['name']} FILE`."
        )
    return lines
