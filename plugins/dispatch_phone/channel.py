"""The phone channel: a call task per message, into a JSON-lines task list (and a CRM webhook).

Delivery is idempotent: a task goes into ``tasks.jsonl`` once per message id, even
when the queue hands the message over again after a webhook failure or a crash.
The list is appended under an exclusive file lock, so worker processes sharing
the outbox do not interleave or duplicate lines either.
"""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Any, ClassVar
from urllib.parse import urlsplit

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the thread lock alone guards the list
    fcntl = None  # type: ignore[assignment]

from dispatch.channels import Channel
from dispatch.clock import now_utc
from dispatch.errors import ConfigError
from dispatch.models import DeliveryResult, OutgoingMessage

REASONS = {
    "renewal_offer": "renewal",
    "marketing": "campaign offer",
}

#: What the agent records when the customer wants the product: the data of the written offer that
#: ``Dispatcher.offer`` sends after the call. Nothing is agreed on the phone — the contract exists only
#: when the customer accepts that offer in writing (FI KSL 6 luku 12 a §, SE lag (2005:59) 2 kap. 3 a §,
#: NO angrerettloven § 10; SPEC §13).
OFFER_FIELDS = {
    "sold_on": "the date of this call (YYYY-MM-DD)",
    "product": "the product the customer chose",
    "price_elements": "every price element quoted: [{name, unit, new}], amounts as decimal strings",
    "duration": "the contract length in months, or {until: YYYY-MM-DD}",
    "terms_url": "the link to the contract terms",
    "valid_until": "the last day the customer can accept the written offer (YYYY-MM-DD)",
}


@dataclass
class PhoneSettings:
    """``[channels.phone]``: the task list, and an optional CRM webhook."""

    outbox: str | None = None
    #: POST every task as JSON here (e.g. a CRM); retried on failure.
    webhook_url: str | None = None
    #: Shared secret: the POST carries X-Dispatch-Signature (HMAC-SHA256 of the body).
    webhook_secret: str | None = None
    webhook_timeout: float = 10.0
    #: Hours after the calling window opens by which the call should be made.
    due_hours: int = 72


class PhoneChannel(Channel):
    """Phone-call tasks (SPEC §6): who to call, the script, why, and when."""

    name = "phone"
    parts: ClassVar[dict[str, str]] = {"script": "phone.txt"}
    settings_class = PhoneSettings
    address_kind = "phone"

    def __init__(self, settings: PhoneSettings, context) -> None:
        super().__init__(settings, context)
        self.outbox = context.config.path(settings.outbox) if settings.outbox else context.outbox
        self._lock = threading.Lock()
        self._task_list = TaskList(self.outbox / "tasks.jsonl")
        if settings.webhook_url and urlsplit(settings.webhook_url).scheme not in ("http", "https"):
            raise ConfigError(
                f"channels.phone.webhook_url must be an http:// or https:// URL, not {settings.webhook_url!r}"
            )

    def task(self, message: OutgoingMessage) -> dict[str, Any]:
        """The call task: who, why, the script, and when the agent may call (the calling window)."""
        window = message.meta.get("calling_window")  # [start, end] of the first allowed window, ISO
        window_opens = message.send_after or now_utc()
        due = window_opens + timedelta(hours=self.settings.due_hours)
        if message.deadline and message.deadline < due:
            due = message.deadline
        return {
            "id": message.id,
            "recipient_id": message.recipient_id,
            "phone": message.address,
            "language": message.language,
            "country": message.country,
            "type": message.message_type,
            "reason": REASONS.get(message.message_type, message.message_type.replace("_", " ")),
            "category": message.category,
            "script": message.parts.get("script", ""),
            "send_after": window_opens.isoformat(),
            "calling_window": {"start": window[0], "end": window[1]} if window else None,
            "due": due.isoformat(),
            "created_at": now_utc().isoformat(),
            "offer": offer_form(message),
        }

    async def deliver(self, message: OutgoingMessage) -> DeliveryResult:
        task = self.task(message)
        with self._lock:
            task, added = self._task_list.add(task)
        path = self._task_list.path
        detail: dict[str, Any] = {"task_list": str(path), "due": task["due"], "added": added}
        if self.settings.webhook_url:
            from .webhook import post_task

            # The task as first written: a retry posts the very same body.
            detail["webhook_status"] = await post_task(self.settings, task)
        return DeliveryResult(provider_id=f"{path.name}:{message.id}", detail=detail)


class TaskList:
    """A JSON-lines task list that holds each task id once.

    The file is read once, then only what other processes appended since (it only
    grows), so adding stays cheap for long lists; memory holds an offset per id.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offsets: dict[str, int] = {}
        self._end = 0

    def add(self, task: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Append ``task`` unless its id is listed; returns the listed task and whether it was added."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+b") as handle, _locked(handle):
            self._catch_up(handle)
            offset = self._offsets.get(str(task["id"]))
            if offset is not None:
                handle.seek(offset)
                return json.loads(handle.readline()), False
            line = (json.dumps(task, ensure_ascii=False) + "\n").encode("utf-8")
            handle.seek(0, 2)
            self._offsets[str(task["id"])] = handle.tell()
            handle.write(line)
            handle.flush()
            self._end = handle.tell()
        return task, True

    def _catch_up(self, handle: IO[bytes]) -> None:
        handle.seek(0, 2)
        if handle.tell() < self._end:  # the list was rotated or emptied: read it again
            self._offsets.clear()
            self._end = 0
        handle.seek(self._end)
        for raw in handle:
            if not raw.endswith(b"\n"):
                break  # a line still being written by someone without the lock
            start, self._end = self._end, self._end + len(raw)
            try:
                task = json.loads(raw)
            except ValueError:
                continue
            if isinstance(task, dict) and "id" in task:
                self._offsets.setdefault(str(task["id"]), start)


@contextmanager
def _locked(handle: IO[bytes]):
    if fcntl is None:
        yield
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def offer_form(message: OutgoingMessage) -> dict[str, Any]:
    """What the agent records after a sale on this call: the fields of the ``sales_offer`` sent after it,
    prefilled with the terms the call was about (the product, its prices and duration, when known)."""
    terms = message.meta.get("offer_terms") or {}
    return {
        "message_type": "sales_offer",
        "create_with": "Dispatcher.offer(recipient, data)",
        "nothing_agreed_on_the_call": True,
        "fields": dict(OFFER_FIELDS),
        "prefill": {key: terms[key] for key in ("product", "price_elements", "duration") if key in terms},
    }
