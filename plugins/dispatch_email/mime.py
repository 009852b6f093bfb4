"""Build the MIME message: multipart/alternative text + HTML, safe headers.

- Every header value is checked for CR, LF and NUL: header injection is refused,
  never cleaned.
- Non-ASCII text in ``Subject`` and display names is RFC 2047-encoded by the
  ``email`` package (``From`` and ``Reply-To`` are built as ``Address`` objects so
  that a display name like ``Sähkö Oy, Åbo`` is quoted and encoded correctly).
- ``Message-ID`` is derived from dispatch's message id, so a re-send after a crash
  carries the same one.
- ``List-Unsubscribe`` (RFC 2369) is written verbatim, folded only between its
  entries: the ``email`` package would otherwise turn a long URI into RFC 2047
  encoded-words, which no mail client reads as a URI. ``List-Unsubscribe-Post:
  List-Unsubscribe=One-Click`` (RFC 8058) is added only when the list holds an
  HTTPS URI, as RFC 8058 §3.1 requires; the DKIM signature must cover both
  headers (see :mod:`dispatch_email.smtp`).
"""

from __future__ import annotations

from datetime import datetime
from email.headerregistry import Address, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import SMTP, EmailPolicy
from email.utils import format_datetime, parseaddr
from urllib.parse import urlsplit

from dispatch.errors import PermanentDeliveryError
from dispatch.models import OutgoingMessage


class HeaderInjection(PermanentDeliveryError):
    """A header value held a line break (or another character a header cannot carry)."""


class InvalidAddress(PermanentDeliveryError):
    """The recipient's address cannot be written into a header or an SMTP envelope."""


class _VerbatimListHeader(UnstructuredHeader):
    """An RFC 2369 list of ``<URI>`` entries: never encoded, folded between entries only."""

    def fold(self, *, policy: EmailPolicy) -> str:  # type: ignore[override]
        entries = [e.strip() for e in split_list_header(str(self))]
        return f"{self.name}: " + ("," + policy.linesep + " ").join(entries) + policy.linesep


def _policy() -> EmailPolicy:
    registry = HeaderRegistry()
    registry.map_to_type("list-unsubscribe", _VerbatimListHeader)
    return SMTP.clone(header_factory=registry)


#: SMTP line endings (CRLF), 78-column folding, and the verbatim List-Unsubscribe.
POLICY = _policy()
#: The same for messages whose recipient has a non-ASCII local part (needs SMTPUTF8).
POLICY_UTF8 = POLICY.clone(utf8=True)


def check_header(name: str, value: str) -> str:
    """Refuse CR, LF and NUL in a header value; returns the value unchanged."""
    if any(c in value for c in "\r\n\x00"):
        raise HeaderInjection(f"header {name} contains a line break; refused", code="header_injection")
    return value


def split_list_header(value: str) -> list[str]:
    """The ``<...>`` entries of a List-* header value (commas inside ``<>`` do not split)."""
    entries, depth, start = [], 0, 0
    for i, char in enumerate(value):
        if char == "<":
            depth += 1
        elif char == ">":
            depth = max(depth - 1, 0)
        elif char == "," and depth == 0:
            entries.append(value[start:i])
            start = i + 1
    entries.append(value[start:])
    return [e.strip() for e in entries if e.strip()]


def message_id_header(message_id: str, domain: str) -> str:
    """``<message id@domain>``: the same for every attempt to send one message."""
    return f"<{message_id}@{domain}>"


def sender_domain(address: str) -> str:
    """The ASCII (IDNA) domain of an address, for the Message-ID."""
    _, addr = parseaddr(address)
    domain = addr.rpartition("@")[2] or "localhost"
    return _ascii_domain(domain)


def _ascii_domain(domain: str) -> str:
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidAddress(f"domain {domain!r} is not a valid internationalised domain name",
                             code="invalid_address") from exc


def envelope_address(address: str) -> str:
    """The address as used in the SMTP envelope and the ``To`` header.

    An internationalised domain becomes its IDNA (``xn--``) form, which every server
    accepts; a non-ASCII local part stays as it is (it needs SMTPUTF8).
    """
    check_header("To", address)
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in address.strip()):
        raise InvalidAddress(f"{address!r} is not an email address", code="invalid_address")
    return f"{local}@{_ascii_domain(domain)}"


def needs_smtputf8(address: str) -> bool:
    """True when the envelope address cannot be sent without the SMTPUTF8 extension."""
    return not address.isascii()


def _mailbox(name: str, value: str) -> Address | str:
    """A header mailbox from ``Name <addr>`` or ``addr``; the display name is RFC 2047-encoded later."""
    check_header(name, value)
    display, addr = parseaddr(value)
    if not addr or "@" not in addr:
        raise InvalidAddress(f"{name} {value!r} is not an email address", code="invalid_address")
    local, _, domain = addr.rpartition("@")
    addr = f"{local}@{_ascii_domain(domain)}"
    try:
        return Address(display_name=display, addr_spec=addr)
    except (ValueError, IndexError) as exc:
        raise InvalidAddress(f"{name} {value!r} is not an email address: {exc}", code="invalid_address") from exc


def _recipient(address: str) -> Address | str:
    addr = envelope_address(address)
    if needs_smtputf8(addr):
        return addr  # the email package cannot build an Address with a non-ASCII local part
    try:
        return Address(addr_spec=addr)
    except (ValueError, IndexError) as exc:  # "a@b, c@d" and other things that are not one address
        raise InvalidAddress(f"{address!r} is not one email address: {exc}", code="invalid_address") from exc


def list_unsubscribe(url: str, mailto: str | None, message_id: str) -> tuple[str, bool]:
    """The List-Unsubscribe value and whether it allows RFC 8058 one-click (an HTTPS URI)."""
    check_header("List-Unsubscribe", url)
    if not url.isascii() or any(c in url for c in " <>,"):
        raise HeaderInjection(f"unsubscribe URL {url!r} must be an ASCII URI without spaces, <, > or commas",
                              code="header_injection")
    targets = [f"<{url}>"]
    if mailto:
        check_header("List-Unsubscribe", mailto)
        if not mailto.isascii() or any(c in mailto for c in " <>,?"):
            raise HeaderInjection(f"unsubscribe mailbox {mailto!r} must be a plain ASCII address",
                                  code="header_injection")
        targets.append(f"<mailto:{mailto}?subject=unsubscribe%20{message_id}>")
    return ", ".join(targets), urlsplit(url).scheme == "https"


def build_email(
    message: OutgoingMessage,
    *,
    sender: str,
    reply_to: str | None,
    date: datetime,
    html: str | None = None,
    unsubscribe_mailto: str | None = None,
) -> EmailMessage:
    """The email for ``message``; ``html`` overrides the HTML part (e.g. with CSS inlined).

    Raises :class:`HeaderInjection` or :class:`InvalidAddress` (both permanent
    delivery errors) instead of writing a header that could be abused.
    """
    subject = check_header("Subject", message.parts.get("subject", "").strip())
    to = _recipient(str(message.address))
    msg = EmailMessage(policy=POLICY_UTF8 if isinstance(to, str) else POLICY)
    msg["From"] = _mailbox("From", sender)
    msg["To"] = to
    if reply_to:
        msg["Reply-To"] = _mailbox("Reply-To", reply_to)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id_header(message.id, sender_domain(sender))
    msg["X-Dispatch-Type"] = check_header("X-Dispatch-Type", message.message_type)
    if message.unsubscribe_url:
        value, one_click = list_unsubscribe(message.unsubscribe_url, unsubscribe_mailto, message.id)
        msg["List-Unsubscribe"] = value
        if one_click:
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(message.parts.get("text", ""), subtype="plain", charset="utf-8", cte="quoted-printable")
    body = html if html is not None else message.parts.get("html")
    if body:
        msg.add_alternative(body, subtype="html", charset="utf-8", cte="quoted-printable")
        for part in msg.iter_parts():
            del part["MIME-Version"]  # belongs to the top level only (RFC 2045 §4)
    # Content-* headers must be set after the body: set_content() clears them.
    msg["Content-Language"] = check_header("Content-Language", message.language)
    return msg
