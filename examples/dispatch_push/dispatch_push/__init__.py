"""Example dispatch plugin: a push-notification channel and an outage-notice message type.

This is the plugin built step by step in ``docs/plugins.md``; the test suite runs it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dispatch import Channel, DeliveryResult, FieldSpec, MessageType, hookimpl
from dispatch.errors import PermanentDeliveryError, TransientDeliveryError

TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class PushSettings:
    """``[channels.push]``: the app backend's endpoint; none → JSON lines in the outbox."""

    endpoint: str | None = None
    token: str | None = None
    timeout: float = 10.0


class PushChannel(Channel):
    """Push notifications to the customer's app, addressed by customer id."""

    name = "push"
    parts = {"title": "push.title.txt", "text": "push.txt"}  # noqa: RUF012
    settings_class = PushSettings
    address_kind = "custom"

    def __init__(self, settings: PushSettings, context) -> None:
        super().__init__(settings, context)
        self._lock = threading.Lock()

    @property
    def embedded(self) -> bool:
        return not self.settings.endpoint

    def address(self, recipient):
        return recipient.id  # the app backend knows the customer's devices

    async def deliver(self, message) -> DeliveryResult:
        payload = {
            "id": message.id,
            "customer": message.address,
            "language": message.language,
            "title": message.parts["title"],
            "body": message.parts["text"],
        }
        if self.embedded:
            self.context.outbox.mkdir(parents=True, exist_ok=True)
            with self._lock, (self.context.outbox / "push.jsonl").open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(payload, ensure_ascii=False) + "\n")
            return DeliveryResult(provider_id=f"push.jsonl:{message.id}")
        status = await asyncio.to_thread(self._post, payload)
        return DeliveryResult(provider_id=f"http:{status}")

    def _post(self, payload: dict) -> int:
        request = urllib.request.Request(
            self.settings.endpoint,
            data=json.dumps(payload).encode("utf-8"),
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.settings.token or ''}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            if exc.code >= 500 or exc.code == 429:
                raise TransientDeliveryError(f"push backend answered {exc.code}", code=str(exc.code)) from exc
            raise PermanentDeliveryError(f"push backend refused: {exc.code}", code=str(exc.code)) from exc
        except (urllib.error.URLError, TimeoutError) as exc:
            raise TransientDeliveryError(f"push backend unreachable: {exc}") from exc


OUTAGE_NOTICE = MessageType(
    name="outage_notice",
    category="service",
    fields=(FieldSpec("area", "text"), FieldSpec("outage_on", "date"), FieldSpec("hours", "text")),
    channels=("push", "sms"),
    default_order=("push", "sms"),
    legal_basis="contract",
    description="A planned power cut in the customer's area.",
)


@hookimpl
def dispatch_channels(register: Callable[[type], None]) -> None:
    register(PushChannel)


@hookimpl
def dispatch_message_types(register: Callable[[MessageType], None]) -> None:
    register(OUTAGE_NOTICE)


@hookimpl
def dispatch_template_roots(register: Callable[[Path], None]) -> None:
    register(TEMPLATES)
