"""Accountability: a person's whole history, its export (access requests), and retention purges.

Every decision is stored with its reasons, legal basis and the rules' version
(GDPR Art 5(2), 7(1)); :func:`person_history` gathers them with the delivery
attempts and consent-ledger entries, :func:`export_history` writes the lot as
JSON for a data subject access request, and :func:`purge` deletes what is past
retention — prospects 6 months after their data was collected, former customers
24 months after their last invoice — while keeping statutory messages for their
legal period (and objections, so that a purged person is not marketed to again).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.exc import DBAPIError

from . import schema
from .config import PolicyConfig
from .policy.calendar import add_months
from .serialize import to_json
from .store import Store


def find_recipients(store: Store, who: str) -> list[str]:
    """The recipients ``who`` names: a message id, an email address, a phone number, or a recipient id."""
    who = who.strip()
    if not who:
        return []
    message = store.message(who, content=False) if len(who) == 26 else None
    if message is not None:
        return [message["recipient_id"]]
    if "@" in who:
        found = store.recipients_by_address("email", who) or store.recipients_by_address("email", who.lower())
        return sorted(found)
    if who.startswith("+") or who.replace(" ", "").replace("-", "").isdigit():
        from .recipients import normalise_phone

        try:
            number = normalise_phone(who, None if who.startswith("+") else "FI")
        except ValueError:
            number = None
        if number is not None:
            found = {*store.recipients_by_address("sms", number), *store.recipients_by_address("phone", number)}
            if found:
                return sorted(found)
    return [who] if store.messages_for(who) or _has_consents(store, who) else []


def _has_consents(store: Store, recipient_id: str) -> bool:
    with store.engine.connect() as conn:
        return (
            conn.execute(
                select(schema.consents.c.id).where(schema.consents.c.recipient_id == recipient_id).limit(1)
            ).first()
            is not None
        )


def person_history(store: Store, recipient_id: str) -> dict[str, Any]:
    """Everything stored about one recipient: facts, messages with attempts and state changes, ledger entries."""
    messages = store.messages_for(recipient_id)
    attempts = store.attempts_for([m["id"] for m in messages])
    transitions = store.transitions_for([m["id"] for m in messages])
    with store.engine.connect() as conn:
        person = (
            conn.execute(select(schema.recipients).where(schema.recipients.c.id == recipient_id)).mappings().first()
        )
        ledger = (
            conn.execute(
                select(schema.consents)
                .where(schema.consents.c.recipient_id == recipient_id)
                .order_by(schema.consents.c.at, schema.consents.c.id)
            )
            .mappings()
            .all()
        )
    out_messages = []
    for message in messages:
        content = message.pop("content") or {}
        message["parts"] = content.get("parts")
        message["inputs"] = content.get("inputs")
        message["attempts"] = attempts.get(message["id"], [])
        message["transitions"] = transitions.get(message["id"], [])
        out_messages.append(message)
    return {
        "recipient_id": recipient_id,
        "recipient": dict(person) if person else None,
        "messages": out_messages,
        "consents": [dict(e) for e in ledger],
        "offers": _offers(store, recipient_id),
    }


def _offers(store: Store, recipient_id: str) -> list[dict[str, Any]]:
    """The recipient's written offers (SPEC §13), each with the states it reached."""
    from .store.offers import OfferBook

    book = OfferBook(store)
    try:
        offers = book.listing(recipient_id=recipient_id, limit=10_000)
    except DBAPIError:  # a store from before offers (not migrated yet)
        return []
    return [{**offer, "states": book.states(offer["id"])} for offer in reversed(offers)]


def export_history(store: Store, recipient_id: str) -> dict[str, Any]:
    """:func:`person_history` as JSON-compatible data (dates as ISO strings)."""
    return to_json(person_history(store, recipient_id))


@dataclass
class PurgeResult:
    recipients: int
    messages: int
    attempts: int
    consents: int
    kept_statutory: int

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def expired_recipients(store: Store, policy: PolicyConfig, today: date) -> list[str]:
    """Ids of prospects and former customers past their retention period on ``today``."""
    t = schema.recipients
    out = []
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(t.c.id, t.c.status, t.c.last_invoice_paid_on, t.c.data_verified_on, t.c.last_seen_at).where(
                t.c.status.in_(("prospect", "former"))
            )
        ).all()
    for rid, status, paid, verified, seen in rows:
        if status == "prospect":
            start = verified or seen.date()
            if today > add_months(start, policy.prospect_retention_months):
                out.append(rid)
        elif paid is not None and today > add_months(paid, policy.former_retention_months):
            out.append(rid)
    return out


def purge(store: Store, policy: PolicyConfig, now: datetime, *, dry_run: bool = False) -> PurgeResult:
    """Delete the history of recipients past retention; keep statutory records and objections."""
    ids = expired_recipients(store, policy, now.date())
    m, a, c, r = schema.messages, schema.delivery_attempts, schema.consents, schema.recipients
    t = schema.message_transitions
    statutory_until = now - timedelta(days=365 * policy.statutory_retention_years)
    removable = and_(
        m.c.recipient_id.in_(ids),
        or_(m.c.category != "statutory", m.c.decided_at < statutory_until),
    )
    result = PurgeResult(len(ids), 0, 0, 0, 0)
    if not ids:
        return result
    with store.transaction() as conn:
        message_ids = [row[0] for row in conn.execute(select(m.c.id).where(removable))]
        result.messages = len(message_ids)
        kept_statutory = select(m.c.id).where(
            m.c.recipient_id.in_(ids), m.c.category == "statutory", m.c.decided_at >= statutory_until
        )
        result.kept_statutory = len(conn.execute(kept_statutory).all())
        grants = and_(c.c.recipient_id.in_(ids), c.c.granted.is_(True))
        result.consents = len(conn.execute(select(c.c.id).where(grants)).all())
        for start in range(0, len(message_ids), 900):
            chunk = message_ids[start : start + 900]
            result.attempts += len(conn.execute(select(a.c.id).where(a.c.message_id.in_(chunk))).all())
            if not dry_run:
                conn.execute(delete(a).where(a.c.message_id.in_(chunk)))
                conn.execute(delete(t).where(t.c.message_id.in_(chunk)))
                conn.execute(delete(m).where(m.c.id.in_(chunk)))
        if not dry_run:
            conn.execute(delete(c).where(grants))
            kept = {row[0] for row in conn.execute(select(m.c.recipient_id).where(m.c.recipient_id.in_(ids)))}
            gone = [rid for rid in ids if rid not in kept]
            for start in range(0, len(gone), 900):
                conn.execute(delete(r).where(r.c.id.in_(gone[start : start + 900])))
    return result
