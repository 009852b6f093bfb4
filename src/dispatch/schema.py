"""Database tables (SQLAlchemy Core): contact history, outbox, ledger, registers.

One schema serves SQLite (the embedded default) and PostgreSQL. Timestamps are
stored as UTC and read back timezone-aware. Schema changes go through Alembic
migrations (``src/dispatch/migrations``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out, whatever the backend stores."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use timezone-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):  # pragma: no cover - SQLite returning text
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

#: Every decision (sent or suppressed) and, for those sent, the outbox entry.
messages = Table(
    "messages",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("idempotency_key", String(255), unique=True, nullable=True),
    Column("campaign_id", String(64), nullable=True, index=True),
    Column("recipient_id", String(128), nullable=False),
    Column("country", String(2), nullable=False),
    Column("message_type", String(64), nullable=False),
    Column("category", String(16), nullable=False),
    Column("channel", String(32), nullable=True),
    Column("language", String(8), nullable=False),
    Column("locale", String(16), nullable=True),
    Column("status", String(16), nullable=False),
    Column("allowed", Boolean, nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("notes", JSON, nullable=False),
    Column("legal_basis", String(32), nullable=True),
    Column("rules_version", String(32), nullable=False),
    Column("requested_language", String(8), nullable=True),
    Column("decided_at", UTCDateTime, nullable=False),
    Column("send_after", UTCDateTime, nullable=True),
    Column("deadline", UTCDateTime, nullable=True),
    Column("queue", String(64), nullable=True),
    Column("address", JSON, nullable=True),
    #: JSON, zlib-compressed when large: {"parts": {...}} or {"v": variant, "t": values, "ta": bool},
    #: plus {"inputs": {"recipient": ..., "data": ...}}
    Column("content", LargeBinary, nullable=True),
    Column("meta", JSON, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("enqueued_at", UTCDateTime, nullable=True),
    Column("claimed_at", UTCDateTime, nullable=True),
    Column("claimed_by", String(128), nullable=True),
    #: A worker's claim holds until then unless its heartbeat renews it (SPEC §7).
    Column("lease_expires_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("provider_id", String(255), nullable=True),
    Column("error", Text, nullable=True),
    Column("fallback_of", String(26), nullable=True),
    Column("possible_duplicate", Boolean, nullable=False, default=False),
    #: The version of the template set it was rendered from (SPEC §5; dispatch.render.Renderer.template_version).
    Column("template_version", String(32), nullable=True),
    Index("ix_messages_recipient", "recipient_id", "decided_at"),
    Index("ix_messages_provider", "provider_id"),
    Index("ix_messages_enqueued", "status", "enqueued_at"),
    #: The relay's and the embedded feeder's "never handed to the queue" lookup.
    Index(
        "ix_messages_unsent",
        "id",
        sqlite_where=text("status = 'queued' AND enqueued_at IS NULL"),
        postgresql_where=text("status = 'queued' AND enqueued_at IS NULL"),
    ),
    Index("ix_messages_status", "status", "send_after"),
    Index("ix_messages_template_version", "message_type", "template_version"),
    #: Evidence packs (dispatch.evidence) page through a campaign, or a type's period, in index order,
    #: and look up each page's statutory fallbacks.
    Index("ix_messages_campaign_page", "campaign_id", "id"),
    Index("ix_messages_type_period", "message_type", "decided_at", "id"),
    Index(
        "ix_messages_fallback_of",
        "fallback_of",
        sqlite_where=text("fallback_of IS NOT NULL"),
        postgresql_where=text("fallback_of IS NOT NULL"),
    ),
)

#: What was last known of each recipient: the facts retention depends on.
recipients = Table(
    "recipients",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("country", String(2), nullable=False),
    Column("status", String(16), nullable=True),
    Column("last_invoice_paid_on", Date, nullable=True),
    Column("data_verified_on", Date, nullable=True),
    Column("last_seen_at", UTCDateTime, nullable=False),
)

#: Rendered variants shared by many messages (dispatch.render_cache): a message stores only
#: its variant id and its own values; the parts are rebuilt byte for byte when read.
variants = Table(
    "variants",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("record", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

#: Every delivery attempt and its outcome.
delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(26), nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("worker", String(128), nullable=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("provider_id", String(255), nullable=True),
    Column("error", Text, nullable=True),
    Column("detail", JSON, nullable=True),
)

#: Every change of a message's state, with its moment and cause (dispatch.lifecycle).
message_transitions = Table(
    "message_transitions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(26), nullable=False, index=True),
    Column("source", String(16), nullable=True),
    Column("target", String(16), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("cause", Text, nullable=False),
    Column("detail", JSON, nullable=True),
)

#: The suppression list (SPEC §4 ``address_suppressed``): addresses that hard-bounced, were reported
#: invalid, complained, or soft-bounced too often. Rows are never deleted: removal is recorded.
suppressions = Table(
    "suppressions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(32), nullable=False),
    Column("address", String(320), nullable=False),
    #: hard_bounce, invalid_number, complaint, soft_bounces, manual
    Column("cause", String(32), nullable=False),
    Column("code", String(32), nullable=True),
    Column("message_id", String(26), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("removed_at", UTCDateTime, nullable=True),
    Column("removed_reason", Text, nullable=True),
    Index("ix_suppressions_address", "channel", "address"),
)

#: Digital mailboxes (SPEC §6): whether a person has a mailbox at a provider that accepts the
#: sender, as the provider last said. ``person`` is a keyed hash of the national id (never the number).
mailbox_eligibility = Table(
    "mailbox_eligibility",
    metadata,
    Column("provider", String(32), primary_key=True),
    Column("person", String(64), primary_key=True),
    Column("eligible", Boolean, nullable=False),
    Column("checked_at", UTCDateTime, nullable=False),
)

#: Soft bounces in a row per address; a confirmed delivery resets the count.
soft_bounces = Table(
    "soft_bounces",
    metadata,
    Column("channel", String(32), primary_key=True),
    Column("address", String(320), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("last_at", UTCDateTime, nullable=False),
)

#: Bulk campaigns: the data is stored once, messages point at it.
campaigns = Table(
    "campaigns",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("message_type", String(64), nullable=False),
    Column("data", JSON, nullable=False),
    Column("source", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("stats", JSON, nullable=True),
    #: Scheduled campaigns (dispatch.scheduled): scheduled, releasing, released, cancelled or failed;
    #: NULL for a campaign sent at once.
    Column("status", String(16), nullable=True),
    Column("release_at", UTCDateTime, nullable=True),
    Column("released_at", UTCDateTime, nullable=True),
    Index("ix_campaigns_release", "status", "release_at"),
)

#: The recipients of a scheduled campaign, kept until it is released (decided then) or cancelled.
scheduled_recipients = Table(
    "scheduled_recipients",
    metadata,
    Column("campaign_id", String(64), primary_key=True),
    Column("line", Integer, primary_key=True),
    Column("recipient", JSON, nullable=False),
)

#: The consent ledger: append-only.
consents = Table(
    "consents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recipient_id", String(128), nullable=False, index=True),
    Column("purpose", String(32), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("source", String(32), nullable=False),
    Column("wording_version", String(64), nullable=True),
    Column("evidence", Text, nullable=True),
    Column("recorded_at", UTCDateTime, nullable=False),
)

#: Loaded do-not-contact registers; ``generation`` switches atomically on import.
registers = Table(
    "registers",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("generation", Integer, nullable=False),
    Column("loaded_at", UTCDateTime, nullable=False),
    Column("file_date", UTCDateTime, nullable=True),
    Column("source_file", Text, nullable=True),
    Column("entries", Integer, nullable=False),
)

register_entries = Table(
    "register_entries",
    metadata,
    Column("register", String(64), nullable=False),
    Column("generation", Integer, nullable=False),
    Column("kind", String(8), nullable=False),
    Column("key", String(255), nullable=False),
    Index("ix_register_entries_key", "kind", "key"),
    Index("ix_register_entries_generation", "register", "generation"),
)

#: Small key/value settings kept with the data (the generated link secret).
settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

#: The durable outbox of webhooks (dispatch.webhooks): one row per event and endpoint, kept
#: until the receiver answered 2xx (``delivered``) or the event grew too old (``dead``).
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
    Column("endpoint", String(2048), nullable=False),
    Column("event_type", String(64), nullable=False),
    #: What the message or consent is about (ordering key): the message id or recipient id.
    Column("subject", String(128), nullable=True),
    #: The JSON body exactly as POSTed (every retry sends the same bytes).
    Column("body", Text, nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    #: ``pending``, ``delivered`` or ``dead``.
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    #: A sender's claim holds until then (compare-and-set: two senders never POST a row at once).
    Column("lease_until", UTCDateTime, nullable=True),
    Column("claimed_by", String(128), nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", String(255), nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    UniqueConstraint("event_id", "endpoint", name="uq_webhook_deliveries_event_endpoint"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    #: Per-subject order: an event waits for the earlier ones of its message (dispatch.store.webhook_deliveries).
    Index("ix_webhook_deliveries_subject", "endpoint", "subject", "occurred_at"),
)

#: Four-eyes approval of template versions (SPEC §5, dispatch.approvals): append-only, one row per
#: proposal or approval of one type × language × channel version. An approval of a translation
#: records the source language's version it was made from (``source_version``).
template_approvals = Table(
    "template_approvals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    #: ``proposed`` or ``approved``.
    Column("action", String(16), nullable=False),
    Column("message_type", String(64), nullable=False),
    Column("language", String(8), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("version", String(32), nullable=False),
    Column("source_language", String(8), nullable=True),
    Column("source_version", String(32), nullable=True),
    Column("by", String(128), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("comment", Text, nullable=True),
    Index("ix_template_approvals_template", "message_type", "language", "channel", "version"),
)

#: Written offers after a phone sale (SPEC §13, :mod:`dispatch.offers`): ``state`` leaves ``open`` once,
#: by compare-and-set, for ``accepted``, ``declined`` or ``lapsed`` (``unsent`` when the offer message was
#: suppressed); each state reached is also a row of ``offer_states``.
offers = Table(
    "offers",
    metadata,
    Column("id", String(26), primary_key=True),
    #: The message that carried the offer (set once it is recorded).
    Column("message_id", String(26), nullable=True),
    Column("recipient_id", String(128), nullable=False),
    Column("country", String(2), nullable=False),
    Column("language", String(8), nullable=True),
    #: The channel the offer went by (the evidence of acceptance names it).
    Column("channel", String(32), nullable=True),
    #: SHA-256 of the offer's terms as sent (dispatch.offers.content_hash).
    Column("content_hash", String(64), nullable=False),
    #: The moment the offer lapses: the end of its ``valid_until`` day in the country's time zone.
    Column("valid_until", UTCDateTime, nullable=False),
    Column("state", String(16), nullable=False),
    #: The offer's data as sent (JSON), and the recipient mapping the contract confirmation goes to.
    Column("terms", JSON, nullable=False),
    Column("recipient", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    #: The contract_confirmation sent on acceptance.
    Column("contract_message_id", String(26), nullable=True),
    #: An offer sent by SMS (its key terms and the link) also goes whole by email or letter: the durable copy.
    Column("copy_message_id", String(26), nullable=True),
    Index("ix_offers_recipient", "recipient_id", "created_at"),
    Index("ix_offers_due", "state", "valid_until"),
    Index("ix_offers_message", "message_id"),
)

#: Every state an offer reached, with its moment and evidence: append-only, each state once per offer.
#: An acceptance row is the durable evidence of SPEC §13 (content hash, wording version shown, channel).
offer_states = Table(
    "offer_states",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("offer_id", String(26), nullable=False),
    Column("state", String(16), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    #: Who moved it: ``dispatch`` (sent), ``acceptance_page``, ``worker``, ``cli``.
    Column("source", String(32), nullable=False),
    Column("content_hash", String(64), nullable=True),
    Column("wording_version", String(64), nullable=True),
    Column("channel", String(32), nullable=True),
    Column("evidence", JSON, nullable=True),
    UniqueConstraint("offer_id", "state", name="uq_offer_states_offer_state"),
)
