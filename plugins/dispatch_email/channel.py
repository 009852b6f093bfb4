"""The email channel: .eml files in the outbox, or SMTP when a host is configured."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

from dispatch.channels import Channel, ChannelContext
from dispatch.clock import now_utc
from dispatch.errors import ConfigError, DeliveryError
from dispatch.models import DeliveryResult, OutgoingMessage

from .mime import BuiltEmail, build_email, mailbox_header
from .verp import ReturnPath, is_message_id

logger = logging.getLogger("dispatch.email")


@dataclass
class EmailSettings:
    """``[channels.email]``: no ``host`` means .eml files in the outbox."""

    host: str | None = None
    port: int = 25
    #: Upgrade the connection with STARTTLS (required: a server without it is an error).
    starttls: bool = False
    #: Implicit TLS from the first byte (port 465).
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
    #: CA bundle (PEM) to validate the server's certificate with, e.g. a company CA.
    cert_bundle: str | None = None
    #: The name this host gives in EHLO (default: its fully qualified domain name).
    local_hostname: str | None = None
    #: The From header; default: the company's name and email.
    sender: str | None = None
    reply_to: str | None = None
    #: Mailbox for mailto: in List-Unsubscribe (besides the https link).
    unsubscribe_mailto: str | None = None
    outbox: str | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    #: PEM private key (PKCS#1 or PKCS#8, RSA) for DKIM signing.
    dkim_key_file: str | None = None
    inline_css: bool = True
    #: VERP bounce mailbox, e.g. ``bounces@example.fi``: each message is sent with the
    #: envelope sender (Return-Path) ``bounces+<message id>-<tag>@example.fi`` (SPEC §6, §10;
    #: the tag is keyed, see :mod:`dispatch_email.verp`).
    return_path: str | None = None
    #: The inbound SMTP listener for returned mail (``dispatch serve``); no port: no listener
    #: unless ``dispatch serve --smtp-port`` gives one. Accepts mail for ``return_path`` only.
    inbound_host: str = "127.0.0.1"
    inbound_port: int | None = None
    #: Larger returned mail is refused with 552.
    inbound_max_bytes: int = 10 * 1024 * 1024
    #: Where mail that is neither a DSN nor an ARF report is kept (default: ``<outbox>/inbound-kept-aside``).
    inbound_keep_aside: str | None = None
    #: At most this many messages, and this many bytes, kept aside; beyond that junk is counted and dropped.
    inbound_keep_aside_max: int = 10_000
    inbound_keep_aside_max_bytes: int = 512 * 1024 * 1024
    #: Poll an IMAP mailbox for returned mail instead of (or besides) the listener.
    imap_host: str | None = None
    imap_port: int = 993
    #: Implicit TLS (993); false: plain IMAP, upgraded with STARTTLS when ``imap_starttls``.
    imap_tls: bool = True
    imap_starttls: bool = False
    imap_username: str | None = None
    #: Or DISPATCH_IMAP_PASSWORD in the environment.
    imap_password: str | None = None
    imap_folder: str = "INBOX"
    #: Seconds between polls.
    imap_interval: float = 60.0


class EmailChannel(Channel):
    """Email: multipart text + HTML with List-Unsubscribe for marketing (SPEC §6)."""

    name = "email"
    parts: ClassVar[dict[str, str]] = {"subject": "email.subject.txt", "html": "email.html", "text": "email.txt"}
    settings_class = EmailSettings
    address_kind = "email"

    def __init__(self, settings: EmailSettings, context: ChannelContext) -> None:
        super().__init__(settings, context)
        self.outbox = context.config.path(settings.outbox) if settings.outbox else context.outbox
        self.password = os.environ.get("DISPATCH_SMTP_PASSWORD") or settings.password
        #: The SMTP pool on the running event loop (:class:`~dispatch_email.smtp.SmtpPool`); see :meth:`smtp_pool`.
        self.pool: Any = None
        self._dkim_key: bytes | None = None
        _check_settings(settings, context)
        self.return_path = (
            ReturnPath.parse(settings.return_path, key=lambda: context.signing_key("verp"))
            if settings.return_path
            else None
        )
        if settings.dkim_key_file:
            path = context.config.path(settings.dkim_key_file)
            try:
                self._dkim_key = path.read_bytes()
            except OSError as exc:
                raise ConfigError(f"channels.email.dkim_key_file: cannot read {str(path)!r}: {exc}") from None
            _check_dkim_key(self._dkim_key, str(path))

    @property
    def embedded(self) -> bool:
        return not self.settings.host

    def sender_for(self, message: OutgoingMessage) -> str:
        """The From header: ``sender`` from the settings, else the company of the recipient's country."""
        if self.settings.sender:
            return self.settings.sender
        company = self.context.company_for(message.country)
        return _company_sender(company)

    def reply_to_for(self, message: OutgoingMessage) -> str | None:
        return self.settings.reply_to or self.context.company_for(message.country).get("email")

    def envelope_sender_for(self, message: OutgoingMessage) -> str | None:
        """``MAIL FROM``: the per-message VERP address when ``return_path`` is set, else None (the From address)."""
        if self.return_path is None:
            return None
        if not is_message_id(message.id):  # not from the store (a hand-built message): the bare mailbox
            return self.return_path.address
        return self.return_path.for_message(message.id)

    def preview_headers(self, message: OutgoingMessage) -> dict[str, str]:
        """From and Reply-To as the recipient's mail program shows them."""
        headers = {"From": self.sender_for(message)}
        reply_to = self.reply_to_for(message)
        if reply_to:
            headers["Reply-To"] = reply_to
        return headers

    def dkim_key(self) -> bytes | None:
        """The DKIM private key (PEM), or None when signing is not configured."""
        return self._dkim_key

    def finalize_part(self, part: str, text: str) -> str:
        """Inline the CSS of the HTML part once, when it is rendered (not per delivery)."""
        if part == "html" and text and self.settings.inline_css:
            return inline_css(text)
        return text

    def prepare(self, message_type, parts) -> dict[str, Any]:
        return {"css_inlined": True} if self.settings.inline_css and parts.get("html") else {}

    def build(self, message: OutgoingMessage) -> BuiltEmail:
        """The message bytes for ``message`` (CSS inlined into the HTML part unless done at render time)."""
        html = message.parts.get("html")
        if html and self.settings.inline_css and not message.meta.get("css_inlined"):
            html = inline_css(html)
        return build_email(
            message,
            sender=self.sender_for(message),
            reply_to=self.reply_to_for(message),
            date=now_utc(),
            html=html,
            unsubscribe_mailto=self.settings.unsubscribe_mailto or self.context.config.links.unsubscribe_mailto,
            envelope_sender=self.envelope_sender_for(message),
        )

    async def deliver(self, message: OutgoingMessage) -> DeliveryResult:
        email = self.build(message)
        if self.embedded:
            return self._write_eml(message, email.as_delivered())
        from .smtp import send_via_pool

        return await send_via_pool(self, message, email)

    def _write_eml(self, message: OutgoingMessage, email: BuiltEmail) -> DeliveryResult:
        self.outbox.mkdir(parents=True, exist_ok=True)
        path = self.outbox / eml_name(message)
        tmp = path.with_suffix(f".eml.{os.getpid()}.tmp")
        tmp.write_bytes(email.as_bytes())
        os.replace(tmp, path)  # a reader never sees half a file; a re-send replaces it
        return DeliveryResult(provider_id=str(path), detail={"file": str(path)})

    def smtp_pool(self) -> Any:
        """This channel's SMTP pool on the running event loop: made on first use, and anew when the
        loop changed or the pool was closed. The channel owns it (and closes it in :meth:`aclose`)."""
        from .smtp import SmtpPool

        pool = self.pool
        if pool is None or pool.loop is not asyncio.get_running_loop() or pool.closed:
            pool = self.pool = SmtpPool(self.settings, self.password)
        return pool

    async def aclose(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            await pool.close()


def eml_name(message: OutgoingMessage) -> str:
    """The outbox file of ``message``, named so a person can find it: ``<type>-<lang>-<id>.eml``."""
    kind = re.sub(r"[^A-Za-z0-9_.]+", "_", message.message_type)
    return f"{kind}-{message.language}-{message.id}.eml"


def _company_sender(company: Any) -> str:
    name = str(company.get("name", "dispatch")).replace('"', "'")
    return f'"{name}" <{company.get("email", "noreply@localhost")}>'


def _check_settings(settings: EmailSettings, context: ChannelContext) -> None:
    """Refuse at start-up what would otherwise fail every message (and bounce it)."""
    problems = []
    if settings.use_tls and settings.starttls:
        problems.append("use_tls and starttls exclude each other (465: use_tls; 587: starttls)")
    if settings.pool_size < 1 or settings.messages_per_connection < 1:
        problems.append("pool_size and messages_per_connection must be at least 1")
    signing = [settings.dkim_selector, settings.dkim_domain, settings.dkim_key_file]
    if any(signing) and not all(signing):
        problems.append("DKIM needs all of dkim_selector, dkim_domain and dkim_key_file")
    senders = {"sender": settings.sender, "reply_to": settings.reply_to}
    if not settings.sender:
        senders.update({f"company {k}": _company_sender(v) for k, v in context.company.items()})
    for key, value in senders.items():
        if not value:
            continue
        try:
            mailbox_header("From", value)
        except DeliveryError as exc:
            problems.append(f"{key}: {exc}")
    if settings.return_path:
        try:
            ReturnPath.parse(settings.return_path)
        except ConfigError as exc:
            problems.append(str(exc))
    elif settings.inbound_port is not None or settings.imap_host:
        problems.append("the inbound listener and IMAP polling need return_path (the bounce mailbox)")
    if settings.inbound_max_bytes < 1024:
        problems.append("inbound_max_bytes must be at least 1024")
    if problems:
        raise ConfigError("channels.email is not usable:", problems)


def _check_dkim_key(key: bytes, path: str) -> None:
    try:
        from dkim.crypto import UnparsableKeyError, parse_pem_private_key
    except ImportError:
        raise ConfigError("DKIM signing needs dkimpy: pip install 'dispatch[email]'") from None
    try:
        parse_pem_private_key(key)
    except UnparsableKeyError as exc:
        raise ConfigError(f"channels.email.dkim_key_file: {path!r} is not an RSA private key in PEM: {exc}") from None


@cache
def _inliner() -> Any:
    import css_inline

    # No network at send time: a <link> to a remote stylesheet is not fetched.
    # @media rules stay in a <style> block for the clients that read them.
    return css_inline.CSSInliner(load_remote_stylesheets=False, keep_at_rules=True)


def inline_css(html: str) -> str:
    """Move the CSS of ``<style>`` blocks into ``style=""`` attributes, as mail clients need."""
    try:
        inliner = _inliner()
    except ImportError:  # pragma: no cover - the email extra is missing
        logger.warning("css-inline is not installed; HTML email goes out with its <style> block only")
        return html
    return inliner.inline(html)


__all__ = ["EmailChannel", "EmailSettings", "inline_css"]
