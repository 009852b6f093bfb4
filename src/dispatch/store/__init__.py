"""The store: contact history, outbox and delivery state (SQLAlchemy; SQLite or PostgreSQL).

The store is the source of truth. A message is written here before it goes on the
queue; workers claim messages in batches under a lease and record outcomes in
batches; every change of ``status`` is a compare-and-set for a transition the
lifecycle (:mod:`dispatch.lifecycle`) allows, kept with its moment and cause.

The store knows nothing of rendering: rows keep a rendered variant's id and the
message's own values, and the dispatcher hands in the function that rebuilds parts.
"""

from __future__ import annotations

import os
import socket
import uuid

from .approvals import TemplateApprovals
from .base import Assembler, StoreBase
from .campaigns import ScheduledCampaigns
from .consents import ConsentRows
from .engine import decode_content, encode_content, is_outage, make_engine, now_utc, safe_url
from .evidence import EvidenceReads
from .mailboxes import MailboxEligibility
from .message_writes import DuplicateKey, MessageWrites
from .reads import MessageReads
from .registers import RegisterRows
from .retention import HistoryRows
from .rows import Claimed, MessageRecord, Outcome
from .snapshot import OperatorCounts, OperatorReads
from .suppressions import SuppressionList

HOSTNAME = socket.gethostname()
_BOOT = uuid.uuid4().hex[:8]


def worker_identity() -> str:
    """``host:pid:boot`` — this process, as the holder of claims (unique even when a pid is reused)."""
    return f"{HOSTNAME}:{os.getpid()}:{_BOOT}"


class Store(
    MessageWrites,
    SuppressionList,
    MailboxEligibility,
    MessageReads,
    TemplateApprovals,
    EvidenceReads,
    ScheduledCampaigns,
    ConsentRows,
    RegisterRows,
    OperatorReads,
    HistoryRows,
    StoreBase,
):
    """Reads and writes the contact history, the outbox and delivery state."""


__all__ = [
    "Assembler",
    "Claimed",
    "DuplicateKey",
    "MessageRecord",
    "OperatorCounts",
    "Outcome",
    "Store",
    "decode_content",
    "encode_content",
    "is_outage",
    "make_engine",
    "now_utc",
    "safe_url",
    "worker_identity",
]
