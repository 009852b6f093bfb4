"""The digital-mailbox eligibility cache (SPEC §6): what each provider's look-up last said, per person.

A person is stored as a keyed hash of the national id (:func:`dispatch.mailboxes.person_key`),
never the number, so a copy of this table tells nobody who is listed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import select

from .. import schema
from ..lifecycle import Status
from .engine import chunks

_e = schema.mailbox_eligibility
_m = schema.messages
_a = schema.delivery_attempts


class MailboxEligibility:
    """Reads and writes of the eligibility cache (a mixin of :class:`dispatch.store.Store`)."""

    def mailbox_eligibility(self, provider: str, people: Iterable[str]) -> dict[str, tuple[bool, datetime]]:
        """``person key → (eligible, checked at)`` for the keys the cache holds for ``provider``."""
        wanted = sorted(set(people))
        out: dict[str, tuple[bool, datetime]] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(wanted, 900):
                rows = conn.execute(
                    select(_e.c.person, _e.c.eligible, _e.c.checked_at).where(
                        _e.c.provider == provider, _e.c.person.in_(chunk)
                    )
                )
                out.update({person: (bool(eligible), at) for person, eligible, at in rows})
        return out

    def letters_awaiting_receipt(self, provider: str, limit: int = 1000) -> list[tuple[str, str]]:
        """``(message id, provider id)`` of letters a mailbox ``provider`` took but has not confirmed (``sent``)."""
        query = (
            select(_m.c.id, _m.c.provider_id)
            .where(_m.c.channel == "letter", _m.c.status == str(Status.SENT), _m.c.provider_id.like(f"{provider}:%"))
            .order_by(_m.c.decided_at)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [(row[0], row[1]) for row in conn.execute(query)]

    def letter_routes(self, campaign_prefix: str) -> Counter[tuple[str, str]]:
        """``(country, route) → letters`` handed over in campaigns whose id starts with the prefix;
        the route is a mailbox provider's name or ``paper``."""
        query = (
            select(_m.c.country, _a.c.detail)
            .join(_a, _a.c.message_id == _m.c.id)
            .where(
                _m.c.channel == "letter",
                _m.c.campaign_id.startswith(campaign_prefix, autoescape=True),
                _a.c.outcome.in_((str(Status.SENT), str(Status.DELIVERED))),
            )
        )
        out: Counter[tuple[str, str]] = Counter()
        with self.engine.connect() as conn:
            for country, detail in conn.execute(query):
                out[(country, str((detail or {}).get("route") or "paper"))] += 1
        return out

    def record_mailbox_eligibility(self, provider: str, answers: Mapping[str, bool], now: datetime) -> None:
        """Keep the provider's answers (``person key → eligible``), replacing older ones."""
        if not answers:
            return
        rows = [{"provider": provider, "person": p, "eligible": e, "checked_at": now} for p, e in answers.items()]
        statement = self._insert(_e)
        statement = statement.on_conflict_do_update(
            index_elements=[_e.c.provider, _e.c.person],
            set_={"eligible": statement.excluded.eligible, "checked_at": statement.excluded.checked_at},
        )
        with self.transaction() as conn:
            for start in range(0, len(rows), 500):
                conn.execute(statement, rows[start : start + 500])
