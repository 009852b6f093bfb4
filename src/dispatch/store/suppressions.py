"""The suppression list: addresses dispatch no longer sends to on a channel, and why.

An address is suppressed after a hard bounce, a provider's "invalid number", a spam
complaint, or too many soft bounces in a row (SPEC §10); an operator may add or
remove one (the customer gave a new address or asked). Nothing is deleted: a
removal is recorded on the row, so the history stays.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from .. import schema
from ..errors import InputError, StoreOutage
from .engine import chunks

_s = schema.suppressions
_b = schema.soft_bounces
CAUSES = ("hard_bounce", "invalid_number", "complaint", "soft_bounces", "manual", "returned_mail")
#: The cause a permanent bounce lists an address with, by channel (the rest: ``invalid_number``).
BOUNCE_CAUSES = {"email": "hard_bounce", "letter": "returned_mail"}


def normalise(channel: str, address: Any) -> str | None:
    """The form addresses are listed in: email lower-cased, numbers as given (E.164), and a postal
    address (the letter channel's mapping) as one key of name, street, postal code, city and country,
    case-folded with punctuation and spacing removed — so the same address written differently
    matches, and a new address (the customer moved) does not.
    """
    if isinstance(address, dict):
        return postal_key(address) if channel == "letter" else None
    if not isinstance(address, str) or not address.strip():
        return None
    address = address.strip()
    return address.lower() if channel == "email" else address


def postal_key(address: dict[str, Any]) -> str | None:
    """The suppression-list key of a postal address mapping (``name``, ``street``, ``postal_code``, ...)."""
    parts = [str(address.get(k) or "") for k in ("name", "street", "postal_code", "city", "country")]
    if not any(parts[1:3]):
        return None
    return "postal:" + "|".join(re.sub(r"[\W_]+", "", p.casefold()) for p in parts)


class SuppressionList:
    """Reads and writes of the suppression list (a mixin of :class:`dispatch.store.Store`)."""

    def suppress(
        self,
        channel: str,
        address: str,
        cause: str,
        now: datetime,
        *,
        message_id: str | None = None,
        code: str | None = None,
    ) -> bool:
        """List ``address`` on ``channel``; False if it was listed already (nothing changes then)."""
        if cause not in CAUSES:
            raise InputError(f"suppression cause {cause!r} is not one of {', '.join(CAUSES)}")
        key = normalise(channel, address)
        if key is None:
            return False
        with self.transaction() as conn:
            active = conn.execute(
                select(_s.c.id).where(_s.c.channel == channel, _s.c.address == key, _s.c.removed_at.is_(None))
            ).first()
            if active is not None:
                return False
            conn.execute(
                _s.insert().values(
                    channel=channel, address=key, cause=cause, code=code, message_id=message_id, created_at=now
                )
            )
            conn.execute(_b.delete().where(_b.c.channel == channel, _b.c.address == key))
        return True

    def unsuppress(self, channel: str, address: str, reason: str, now: datetime) -> int:
        """Take ``address`` off the list (the row stays, with when and why); returns rows changed."""
        key = normalise(channel, address)
        with self.transaction() as conn:
            return conn.execute(
                update(_s)
                .where(_s.c.channel == channel, _s.c.address == key, _s.c.removed_at.is_(None))
                .values(removed_at=now, removed_reason=reason[:500])
            ).rowcount

    def suppressed(self, pairs: Iterable[tuple[str, Any]]) -> set[tuple[str, str]]:
        """Which of the (channel, address) pairs are listed now (addresses normalised)."""
        wanted = {(c, k) for c, a in pairs if (k := normalise(c, a)) is not None}
        if not wanted:
            return set()
        found: set[tuple[str, str]] = set()
        try:
            with self.engine.connect() as conn:
                for chunk in chunks(sorted({a for _c, a in wanted}), 900):
                    rows = conn.execute(
                        select(_s.c.channel, _s.c.address).where(_s.c.address.in_(chunk), _s.c.removed_at.is_(None))
                    )
                    found.update(pair for pair in rows if tuple(pair) in wanted)
        except DBAPIError as exc:  # unreachable, or a store from before the suppression list
            raise StoreOutage("the suppression list cannot be read") from exc
        return {tuple(pair) for pair in found}

    def suppression_list(self, *, include_removed: bool = False, limit: int = 1000) -> list[dict[str, Any]]:
        """The list, newest first (with removed entries when asked)."""
        query = select(_s).order_by(_s.c.created_at.desc(), _s.c.id.desc()).limit(limit)
        if not include_removed:
            query = query.where(_s.c.removed_at.is_(None))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def suppression_count(self) -> int:
        from sqlalchemy import func

        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).where(_s.c.removed_at.is_(None))).scalar() or 0

    def soft_bounce(self, channel: str, address: str, now: datetime) -> int:
        """Count one more soft bounce in a row for ``address``; returns the count."""
        key = normalise(channel, address)
        if key is None:
            return 0
        with self.transaction() as conn:
            count = conn.execute(select(_b.c.count).where(_b.c.channel == channel, _b.c.address == key)).scalar()
            if count is None:
                conn.execute(_b.insert().values(channel=channel, address=key, count=1, last_at=now))
                return 1
            conn.execute(
                update(_b).where(_b.c.channel == channel, _b.c.address == key).values(count=count + 1, last_at=now)
            )
            return count + 1

    def delivered_to(self, channel: str, address: str) -> None:
        """A confirmed delivery ends a run of soft bounces."""
        key = normalise(channel, address)
        if key is not None:
            with self.transaction() as conn:
                conn.execute(_b.delete().where(_b.c.channel == channel, _b.c.address == key))
