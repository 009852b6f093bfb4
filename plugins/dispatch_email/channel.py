"""The email channel: .eml files in the outbox, or SMTP when a host is configured."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dispatch.channels import Channel
from dispatch.models import DeliveryResult, OutgoingMessage
from dispatch.store import now_utc

from .mime import build_email


@dataclass
class EmailSettings:
    """``[channels.email]``: no ``host`` means .eml files in the outbox."""

    host: str | None = None
    port: int = 25
    starttls: bool = False
    use_tls: bool = False
    username: str | None = None
    #: Or DISPATCH_SMTP_PASSWORD in the environment.
    password: str | None = None
    timeout: float = 30.0
    #: Concurrent SMTP connections per worker process.
    pool_size: int = 4
    #: Messages sent over one connection before it is replaced.
    messages_per_connection: int = 500
    #: Validate the server's TLS certificate (turn off only for local test servers).
    validate_certs: bool = True
    #: The From header; default: the company's name and email.
    sender: str | None = None
    reply_to: str | None = None
    #: Mailbox for mailto: in List-Unsubscribe (besides the https link).
    unsubscribe_mailto: str | None = None
    outbox: str | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_key_file: str | None = None
    inline_css: bool = True


class EmailChannel(Channel):
    """Email: multipart text + HTML with List-Unsubscribe for marketing (SPEC §6)."""

    name = "email"
    parts = {"subject": "email.subject.txt", "html": "email.html", "text": "email.txt"}
    settings_class = EmailSettings
    address_kind = "email"

    def __init__(self, settings: EmailSettings, context) -> None:
        super().__init__(settings, context)
        self.outbox = context.config.path(settings.outbox) if settings.outbox else context.outbox
        self.password = os.environ.get("DISPATCH_SMTP_PASSWORD") or settings.password

    @property
    def embedded(self) -> bool:
        return not self.settings.host

    def sender_for(self, message: OutgoingMessage) -> str:
        if self.settings.sender:
            return self.settings.sender
        company = self.context.company_for(message.country)
        return f"{company.get('name', 'dispatch')} <{company.get('email', 'noreply@localhost')}>"

    def reply_to_for(self, message: OutgoingMessage) -> str | None:
        return self.settings.reply_to or self.context.company_for(message.country).get("email")

    def build(self, message: OutgoingMessage):
        html = message.parts.get("html")
        if html and self.settings.inline_css:
            html = _inline_css(html)
        return build_email(
            message,
            sender=self.sender_for(message),
            reply_to=self.reply_to_for(message),
            date=now_utc(),
            html=html,
            unsubscribe_mailto=self.settings.unsubscribe_mailto or self.context.config.links.unsubscribe_mailto,
        )

    async def deliver(self, message: OutgoingMessage) -> DeliveryResult:
        email = self.build(message)
        if self.embedded:
            return self._write_eml(message, email)
        from .smtp import send_via_pool

        return await send_via_pool(self, message, email)

    def _write_eml(self, message: OutgoingMessage, email) -> DeliveryResult:
        self.outbox.mkdir(parents=True, exist_ok=True)
        path = self.outbox / f"{message.id}.eml"
        tmp = path.with_suffix(".eml.tmp")
        tmp.write_bytes(email.as_bytes())
        os.replace(tmp, path)  # a reader never sees half a file; a re-send replaces it
        return DeliveryResult(provider_id=str(path), detail={"file": str(path)})

    async def aclose(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            await pool.close()


def _inline_css(html: str) -> str:
    try:
        import css_inline
    except ImportError:  # pragma: no cover - the email extra is missing
        return html
    return css_inline.inline(html)


def outbox_files(path: Path) -> list[Path]:
    return sorted(path.glob("*.eml"))


__all__: list[Any] = ["EmailChannel", "EmailSettings"]
