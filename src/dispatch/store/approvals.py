"""Template governance in the store: approvals of template versions, and the versions messages used.

A mixin of :class:`dispatch.store.Store`. ``template_approvals`` is append-only: a
proposal or an approval is a new row, nothing is ever updated or deleted, so the
record of who proposed and who approved which version, and when, stays whole
(SPEC §5). The rules over these rows live in :mod:`dispatch.approvals`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from .. import schema
from ..errors import InputError
from .engine import chunks

_a = schema.template_approvals
_m = schema.messages
ACTIONS = ("proposed", "approved")


class TemplateApprovals:
    """Reads and appends of ``template_approvals``; template versions seen in ``messages``."""

    def add_template_approval(
        self,
        *,
        action: str,
        message_type: str,
        language: str,
        channel: str,
        version: str,
        by: str,
        at: datetime,
        comment: str | None = None,
        source_language: str | None = None,
        source_version: str | None = None,
    ) -> dict[str, Any]:
        """Append one proposal or approval; returns the row as stored."""
        if action not in ACTIONS:
            raise InputError(f"template approval action {action!r} is not one of {', '.join(ACTIONS)}")
        row = {
            "action": action,
            "message_type": message_type,
            "language": language,
            "channel": channel,
            "version": version,
            "source_language": source_language,
            "source_version": source_version,
            "by": by,
            "at": at,
            "comment": comment,
        }
        with self.transaction() as conn:
            row["id"] = conn.execute(_a.insert().values(**row)).inserted_primary_key[0]
        return row

    def template_approvals(
        self, message_type: str | None = None, language: str | None = None, channel: str | None = None
    ) -> list[dict[str, Any]]:
        """Proposals and approvals, oldest first (optionally of one type, language, channel)."""
        query = select(_a).order_by(_a.c.id)
        if message_type is not None:
            query = query.where(_a.c.message_type == message_type)
        if language is not None:
            query = query.where(_a.c.language == language)
        if channel is not None:
            query = query.where(_a.c.channel == channel)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def approvals_of_versions(self, versions: Sequence[str]) -> dict[tuple[str, str, str, str], list[dict[str, Any]]]:
        """Every approval of each of ``versions``, oldest first: (type, language, channel, version) → rows."""
        out: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
        wanted = sorted({v for v in versions if v})
        with self.engine.connect() as conn:
            for chunk in chunks(wanted, 900):
                rows = conn.execute(
                    select(_a).where(_a.c.action == "approved", _a.c.version.in_(chunk)).order_by(_a.c.at, _a.c.id)
                ).mappings()
                for row in rows:
                    key = (row["message_type"], row["language"], row["channel"], row["version"])
                    out.setdefault(key, []).append(dict(row))
        return out

    def template_versions(self, message_type: str) -> list[dict[str, Any]]:
        """Versions of ``message_type`` that messages were rendered from: per language and channel,
        when first and last used and by how many messages, oldest first."""
        query = (
            select(
                _m.c.language,
                _m.c.channel,
                _m.c.template_version,
                func.min(_m.c.decided_at),
                func.max(_m.c.decided_at),
                func.count(),
            )
            .where(_m.c.message_type == message_type, _m.c.template_version.is_not(None))
            .group_by(_m.c.language, _m.c.channel, _m.c.template_version)
        )
        with self.engine.connect() as conn:
            rows = [
                {
                    "language": language,
                    "channel": channel,
                    "version": version,
                    "first_used": _aware(first),
                    "last_used": _aware(last),
                    "messages": count,
                }
                for language, channel, version, first, last, count in conn.execute(query)
            ]
        return sorted(rows, key=lambda r: (r["first_used"], r["language"], r["channel"] or ""))


def _aware(value: Any) -> datetime | None:
    """An aggregate of a timestamp column as an aware datetime (SQLite returns naive text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def approval_in_force(rows: Sequence[dict[str, Any]] | None, moment: datetime) -> dict[str, Any] | None:
    """Of a version's approvals (oldest first), the latest made at or before ``moment``."""
    found = None
    for row in rows or ():
        if row["at"] <= moment:
            found = row
    return found
