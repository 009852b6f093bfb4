"""The values that flow through dispatch: recipients, decisions, receipts, messages.

All of them are plain, immutable dataclasses so that the policy engine can stay a
pure function and the values can be logged, stored and compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any, Literal

from .lifecycle import Status

Country = Literal["FI", "SE", "NO"]
Language = Literal["fi", "sv", "nb", "en"]
Category = Literal["statutory", "service", "marketing"]
LegalBasis = Literal["contract", "legal_obligation", "consent", "soft_opt_in", "legitimate_interest"]

COUNTRIES: tuple[str, ...] = ("FI", "SE", "NO")
#: Each country's time zone: calendars, quiet hours and dates in messages follow it.
COUNTRY_TIMEZONES: dict[str, str] = {"FI": "Europe/Helsinki", "SE": "Europe/Stockholm", "NO": "Europe/Oslo"}
LANGUAGES: tuple[str, ...] = ("fi", "sv", "nb", "en")
CATEGORIES: tuple[str, ...] = ("statutory", "service", "marketing")
KINDS: tuple[str, ...] = ("household", "business")
STATUSES: tuple[str, ...] = ("prospect", "active", "former")
#: A consent entry whose channel is one of these applies to every channel.
ALL_CHANNELS = "all"


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address, normalised for matching against registers and for envelopes."""

    name: str
    street: str
    postal_code: str
    city: str
    country: str

    def lines(self) -> list[str]:
        """The address as the lines printed in an envelope window."""
        return [self.name, self.street, f"{self.postal_code} {self.city}".strip()]

    def as_dict(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class Consent:
    """One consent or objection: the newest per (purpose, channel) wins.

    ``channel`` is a channel name or ``"all"``; ``granted=False`` is a withdrawal or
    an objection.
    """

    purpose: str
    channel: str
    granted: bool
    at: datetime
    source: str = "import"
    wording_version: str | None = None


@dataclass(frozen=True, slots=True)
class Recipient:
    """A validated recipient (SPEC §3). Build one with :func:`dispatch.recipients.parse_recipient`."""

    id: str
    country: str
    language: str
    kind: str = "household"
    status: str | None = None
    birth_date: date | None = None
    last_invoice_paid_on: date | None = None
    data_verified_on: date | None = None
    email: str | None = None
    phone: str | None = None
    phone_is_mobile: bool = False
    address: Address | None = None
    preferred_channels: dict[str, str] = field(default_factory=dict)
    consents: tuple[Consent, ...] = ()
    marketing_blocked: bool = False
    #: True: subscribed; False: objected (always wins); None: the mapping says nothing.
    newsletter: bool | None = None
    #: Henkilötunnus, personnummer or fødselsnummer, checksum-validated (SPEC §3); only for digital
    #: mailboxes (§6). Kept out of ``repr()`` so that a logged recipient never shows it.
    national_id: str | None = field(default=None, repr=False)

    @property
    def name(self) -> str | None:
        """The person's name as written on the address, if any."""
        return self.address.name if self.address else None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-compatible mapping with the keys of SPEC §3."""
        return {
            "id": self.id,
            "country": self.country,
            "language": self.language,
            "kind": self.kind,
            "status": self.status,
            "birth_date": _iso(self.birth_date),
            "last_invoice_paid_on": _iso(self.last_invoice_paid_on),
            "data_verified_on": _iso(self.data_verified_on),
            "email": self.email,
            "phone": self.phone,
            "address": self.address.as_dict() if self.address else None,
            "preferred_channels": dict(self.preferred_channels),
            "consents": [
                {
                    "purpose": c.purpose,
                    "channel": c.channel,
                    "granted": c.granted,
                    "at": c.at.isoformat(),
                    "source": c.source,
                }
                for c in self.consents
            ],
            "marketing_blocked": self.marketing_blocked,
            "newsletter": self.newsletter,
            "national_id": self.national_id,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """What may be sent, on which channel and in which language, and why (SPEC §1).

    ``reasons`` lists every reason code of SPEC §4 that applies; it is empty when
    ``allowed`` is true. ``send_after`` is the earliest allowed moment (calling
    hours, quiet hours); ``deadline`` the latest moment it must go out. A phone
    task carries ``calling_window``: the first allowed calling window (start, end;
    aware, in the recipient's time zone) at or after ``send_after``.
    """

    allowed: bool
    message_type: str
    category: str
    channel: str | None
    language: str
    reasons: list[str]
    legal_basis: str | None
    send_after: datetime | None = None
    deadline: datetime | None = None
    recipient_id: str = ""
    requested_language: str | None = None
    notes: dict[str, str] = field(default_factory=dict)
    rules_version: str = ""
    calling_window: tuple[datetime, datetime] | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["send_after"] = _iso(self.send_after)
        out["deadline"] = _iso(self.deadline)
        out["calling_window"] = [_iso(t) for t in self.calling_window] if self.calling_window else None
        out["reasons"] = list(self.reasons)
        out["notes"] = dict(self.notes)
        return out


@dataclass(frozen=True, slots=True)
class Receipt:
    """The outcome of :meth:`Dispatcher.dispatch`: the decision plus what happened.

    ``status`` is ``queued``, ``suppressed`` or ``duplicate``; ``queue`` is the
    queue a queued message went to.
    """

    allowed: bool
    message_type: str
    category: str
    channel: str | None
    language: str
    reasons: list[str]
    legal_basis: str | None
    send_after: datetime | None
    deadline: datetime | None
    recipient_id: str
    requested_language: str | None
    notes: dict[str, str]
    rules_version: str
    message_id: str
    status: str
    queue: str | None = None
    calling_window: tuple[datetime, datetime] | None = None

    @classmethod
    def from_decision(cls, decision: Decision, *, message_id: str, status: str, queue: str | None) -> Receipt:
        values = {f.name: getattr(decision, f.name) for f in fields(decision)}
        return cls(**values, message_id=message_id, status=status, queue=queue)

    @classmethod
    def from_row(cls, row: Mapping[str, Any], *, status: str) -> Receipt:
        """The receipt of a stored message (``status``: what this call did, e.g. ``duplicate``)."""
        window = (row.get("meta") or {}).get("calling_window")
        return cls(
            allowed=row["allowed"],
            message_type=row["message_type"],
            category=row["category"],
            channel=row["channel"],
            language=row["language"],
            reasons=list(row["reasons"] or []),
            legal_basis=row["legal_basis"],
            send_after=row["send_after"],
            deadline=row["deadline"],
            recipient_id=row["recipient_id"],
            requested_language=row["requested_language"],
            notes=dict(row["notes"] or {}),
            rules_version=row["rules_version"],
            message_id=row["id"],
            status=status,
            queue=row["queue"],
            calling_window=(datetime.fromisoformat(window[0]), datetime.fromisoformat(window[1])) if window else None,
        )

    @property
    def decision(self) -> Decision:
        return Decision(**{f.name: getattr(self, f.name) for f in fields(Decision)})

    def as_dict(self) -> dict[str, Any]:
        out = self.decision.as_dict()
        out.update(message_id=self.message_id, status=self.status, queue=self.queue)
        return out


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A rendered message as a channel plugin receives it for delivery.

    ``parts`` maps the channel's part names (``subject``, ``html``, ``text``,
    ``script``...) to rendered text; ``address`` is the channel's address value
    (an email address, an E.164 number, or a postal address mapping).
    """

    id: str
    message_type: str
    category: str
    channel: str
    language: str
    locale: str
    country: str
    recipient_id: str
    address: Any
    parts: dict[str, str]
    unsubscribe_url: str | None = None
    send_after: datetime | None = None
    deadline: datetime | None = None
    attempt: int = 1
    meta: dict[str, Any] = field(default_factory=dict)
    #: The version of the template set the message was rendered from (SPEC §5).
    template_version: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What a channel reports after handing a message on.

    ``status`` is :attr:`Status.SENT` (the provider took it: SMTP 250, a Twilio sid, a file
    written) or :attr:`Status.DELIVERED` when handing it over is itself proof of delivery. ``provider_id`` is the
    provider's own id (SMTP queue id, Twilio SID, file path); ``detail`` holds
    channel-specific facts worth recording (segment count, pages).
    """

    status: Status = Status.SENT
    provider_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
