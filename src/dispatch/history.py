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

from sqlalchemy.exc import DBAPIError

from .config import PolicyConfig
from .national_id import mask as mask_national_id
from .policy.calendar import add_months
from .serialize import to_json
from .store import Store
from .store.approvals import approval_in_force


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
    return [who] if store.messages_for(who) or store.has_consents(who) else []


def person_history(store: Store, recipient_id: str, *, national_id: bool = False) -> dict[str, Any]:
    """Everything stored about one recipient: facts, messages with attempts and state changes, ledger entries.

    The national id (SPEC §3) is masked unless ``national_id`` asks for it (an access request's export).
    """
    messages = store.messages_for(recipient_id)
    attempts = store.attempts_for([m["id"] for m in messages])
    transitions = store.transitions_for([m["id"] for m in messages])
    person = store.recipient_row(recipient_id)
    ledger = store.consent_history(recipient_id)
    approvals = store.approvals_of_versions([m["template_version"] for m in messages if m.get("template_version")])
    out_messages = []
    for message in messages:
        content = message.pop("content") or {}
        message["parts"] = content.get("parts")
        message["inputs"] = content.get("inputs")
        if not national_id:
            _mask_national_id(message)
        message["attempts"] = attempts.get(message["id"], [])
        message["transitions"] = transitions.get(message["id"], [])
        approval = approval_in_force(
            approvals.get(
                (message["message_type"], message["language"], message["channel"], message.get("template_version"))
            ),
            message["decided_at"],
        )
        message["template_approval"] = (
            {"by": approval["by"], "at": approval["at"], "comment": approval["comment"]} if approval else None
        )
        out_messages.append(message)
    return {
        "recipient_id": recipient_id,
        "recipient": dict(person) if person else None,
        "messages": out_messages,
        "consents": [dict(e) for e in ledger],
        "offers": [offer if national_id else _mask_offer(offer) for offer in _offers(store, recipient_id)],
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


def _mask_offer(offer: dict[str, Any]) -> dict[str, Any]:
    """An offer with the national id in its stored recipient masked (SPEC §3)."""
    person = offer.get("recipient")
    if isinstance(person, dict) and person.get("national_id"):
        return {**offer, "recipient": {**person, "national_id": mask_national_id(person["national_id"])}}
    return offer


def _mask_national_id(message: dict[str, Any]) -> None:
    """Mask the national id wherever a stored message keeps it: its inputs and its digital-mailbox routing."""
    person = (message.get("inputs") or {}).get("recipient")
    if isinstance(person, dict) and person.get("national_id"):
        message["inputs"] = {
            **message["inputs"],
            "recipient": {**person, "national_id": mask_national_id(person["national_id"])},
        }
    meta = message.get("meta")
    mailbox = meta.get("digital_mailbox") if isinstance(meta, dict) else None
    if isinstance(mailbox, dict) and mailbox.get("national_id"):
        message["meta"] = {
            **meta,
            "digital_mailbox": {**mailbox, "national_id": mask_national_id(mailbox["national_id"])},
        }


def export_history(store: Store, recipient_id: str, *, national_id: bool = False) -> dict[str, Any]:
    """:func:`person_history` as JSON-compatible data (dates as ISO strings).

    SPEC §3: the national id is left out (masked) unless asked for with ``national_id=True``.
    """
    return to_json(person_history(store, recipient_id, national_id=national_id))


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
    out = []
    for rid, status, paid, verified, seen in store.retention_candidates():
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
    statutory_until = now - timedelta(days=365 * policy.statutory_retention_years)
    result = PurgeResult(len(ids), 0, 0, 0, 0)
    if not ids:
        return result
    counts = store.purge_history(ids, statutory_until, dry_run=dry_run)
    result.messages, result.kept_statutory = counts["messages"], counts["kept_statutory"]
    result.consents, result.attempts = counts["consents"], counts["attempts"]
    return result
