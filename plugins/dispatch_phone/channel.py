"""The phone channel: a call task per message, into a JSON-lines task list (and a CRM webhook)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

from dispatch.channels import Channel
from dispatch.models import DeliveryResult, OutgoingMessage
from dispatch.store import now_utc

REASONS = {
    "renewal_offer": "renewal",
    "marketing": "campaign offer",
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

    def task(self, message: OutgoingMessage) -> dict[str, Any]:
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
            "due": due.isoformat(),
            "created_at": now_utc().isoformat(),
        }

    async def deliver(self, message: OutgoingMessage) -> DeliveryResult:
        task = self.task(message)
        self.outbox.mkdir(parents=True, exist_ok=True)
        path = self.outbox / "tasks.jsonl"
        with self._lock, path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(task, ensure_ascii=False) + "\n")
        detail: dict[str, Any] = {"task_list": str(path), "due": task["due"]}
        if self.settings.webhook_url:
            from .webhook import post_task

            detail["webhook_status"] = await post_task(self.settings, task)
        return DeliveryResult(provider_id=f"{path.name}:{message.id}", detail=detail)
