"""Build the MIME message: multipart/alternative text + HTML, safe headers.

Every header value is checked for CR/LF (header injection is refused, not
cleaned), non-ASCII header text is RFC 2047-encoded by the ``email`` package, and
the ``Message-ID`` is derived from dispatch's message id so that a re-send after a
crash carries the same one.
"""

from __future__ import annotations

from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr

from dispatch.errors import PermanentDeliveryError
from dispatch.models import OutgoingMessage


class HeaderInjection(PermanentDeliveryError):
    """A header value held a line break."""


def check_header(name: str, value: str) -> str:
    """Refuse CR, LF and NUL in a header value."""
    if any(c in value for c in "\r\n\x00"):
        raise HeaderInjection(f"header {name} contains a line break; refused", code="header_injection")
    return value


def message_id_header(message_id: str, domain: str) -> str:
    return f"<{message_id}@{domain}>"


def sender_domain(address: str) -> str:
    _, addr = parseaddr(address)
    return addr.rpartition("@")[2] or "localhost"


def build_email(
    message: OutgoingMessage,
    *,
    sender: str,
    reply_to: str | None,
    date: datetime,
    html: str | None = None,
    unsubscribe_mailto: str | None = None,
) -> EmailMessage:
    """The email for ``message``; ``html`` overrides the HTML part (e.g. with CSS inlined)."""
    subject = check_header("Subject", message.parts.get("subject", ""))
    to = check_header("To", str(message.address))
    check_header("From", sender)
    msg = EmailMessage(policy=SMTP)
    name, addr = parseaddr(sender)
    msg["From"] = Address(display_name=name, addr_spec=addr) if name else addr
    msg["To"] = to
    if reply_to:
        msg["Reply-To"] = check_header("Reply-To", reply_to)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id_header(message.id, sender_domain(sender))
    msg["Content-Language"] = message.language
    msg["X-Dispatch-Type"] = message.message_type
    if message.unsubscribe_url:
        targets = [f"<{check_header('List-Unsubscribe', message.unsubscribe_url)}>"]
        if unsubscribe_mailto:
            mailto = check_header("List-Unsubscribe", unsubscribe_mailto)
            targets.append(f"<mailto:{mailto}?subject=unsubscribe%20{message.id}>")
        msg["List-Unsubscribe"] = ", ".join(targets)
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(message.parts.get("text", ""), subtype="plain", charset="utf-8", cte="quoted-printable")
    body = html if html is not None else message.parts.get("html")
    if body:
        msg.add_alternative(body, subtype="html", charset="utf-8", cte="quoted-printable")
    return msg
