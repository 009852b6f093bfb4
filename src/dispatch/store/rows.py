"""Typed rows: what goes into the store and what comes out of it on the delivery path."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from ..lifecycle import Status


@dataclass(slots=True)
class MessageRecord:
    """A decided message as it is stored (SPEC §4: every decision is kept, sent or suppressed)."""

    id: str
    recipient_id: str
    country: str
    message_type: str
    category: str
    channel: str | None
    language: str
    status: Status
    allowed: bool
    reasons: list[str]
    notes: dict[str, Any]
    legal_basis: str | None
    rules_version: str
    decided_at: datetime
    idempotency_key: str | None = None
    campaign_id: str | None = None
    requested_language: str | None = None
    send_after: datetime | None = None
    deadline: datetime | None = None
    locale: str | None = None
    queue: str | None = None
    address: Any = None
    #: {"parts": {...}} or {"v": variant id, "t": own values, "ta": bool}, plus {"inputs": {...}}
    content: dict[str, Any] | None = None
    meta: dict[str, Any] | None = None
    enqueued_at: datetime | None = None
    fallback_of: str | None = None
    #: The version of the template set it was rendered from (SPEC §5); None when nothing was rendered.
    template_version: str | None = None

    def as_row(self) -> dict[str, Any]:
        """The columns as a mapping (shallow: content is encoded by the store, not copied here)."""
        row = {name: getattr(self, name) for name in _RECORD_FIELDS}
        row["status"] = str(self.status)
        return row


_RECORD_FIELDS = tuple(f.name for f in fields(MessageRecord))


@dataclass(frozen=True, slots=True)
class Claimed:
    """A message a worker holds (``sending``) until its lease runs out."""

    id: str
    message_type: str
    category: str
    channel: str
    language: str
    locale: str | None
    country: str
    recipient_id: str
    address: Any
    content: dict[str, Any]
    send_after: datetime | None
    deadline: datetime | None
    #: This claim's attempt number (the store raises it at each claim).
    attempts: int
    meta: dict[str, Any]
    campaign_id: str | None
    queue: str | None
    fallback_of: str | None
    decided_at: datetime
    template_version: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt ended, to be written by :meth:`Store.finish`.

    ``target`` is ``sent``/``delivered`` (the provider took it), ``queued`` (a
    transient failure, tried again at ``retry_at``), ``failed`` or ``dead``.
    """

    message_id: str
    attempt: int
    target: Status
    started_at: datetime
    finished_at: datetime
    cause: str
    channel: str | None = None
    message_type: str | None = None
    recipient_id: str | None = None
    provider_id: str | None = None
    error: str | None = None
    #: Replaces the message's meta when given.
    meta: dict[str, Any] | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    retry_at: datetime | None = None
    template_version: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-compatible form, for the worker's journal on disk."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}  # shallow: asdict deep-copies (~30 us)
        out["target"] = str(self.target)
        for key in ("started_at", "finished_at", "retry_at"):
            out[key] = out[key].isoformat() if out[key] else None
        return out

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Outcome:
        data = dict(value)
        data["target"] = Status(data["target"])
        for key in ("started_at", "finished_at", "retry_at"):
            data[key] = datetime.fromisoformat(data[key]) if data.get(key) else None
        return cls(**data)
