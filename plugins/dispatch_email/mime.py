"""Build the message bytes: multipart/alternative text + HTML, safe headers.

- Every header value is checked for CR, LF and NUL: header injection is refused,
  never cleaned. The recipient must be exactly one address.
- Non-ASCII text in ``Subject`` and display names is RFC 2047-encoded (UTF-8
  encoded-words, split on character boundaries, folded at 78 columns) by the
  ``email`` package's header registry; ``From`` and ``Reply-To`` are built as
  ``Address`` objects, so ``Sähkö Oy, Åbo`` is quoted and encoded correctly.
  Internationalised domains are written in their IDNA (``xn--``) form; a
  non-ASCII local part makes the whole header block UTF-8 (RFC 6532, SMTPUTF8).
- ``Message-ID`` is derived from dispatch's message id, so a re-send after a crash
  carries the same one.
- ``List-Unsubscribe`` (RFC 2369) is written verbatim, folded only between its
  entries: the ``email`` package would turn a long URI into RFC 2047
  encoded-words, which no mail client reads as a URI. ``List-Unsubscribe-Post:
  List-Unsubscribe=One-Click`` (RFC 8058) is added only when the list holds an
  HTTPS URI, as RFC 8058 §3.1 requires; the DKIM signature must cover both
  headers (see :mod:`dispatch_email.smtp`).
- ``Content-Language`` is a header of the whole message (``EmailMessage`` used to
  drop it: ``set_content()`` clears every ``Content-*`` header).

The structure is written directly (two quoted-printable UTF-8 parts encoded by
``binascii``): the ``email`` package's object model cost ~1.5 ms per message,
more than the SMTP exchange itself. Header folding and encoding still come from
the ``email`` package, cached because a campaign repeats the same From, Reply-To
and usually the same Subject thousands of times. Tests parse the result with the
``email`` package and verify DKIM signatures over it.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass, replace
from datetime import datetime
from email.headerregistry import Address, HeaderRegistry, UnstructuredHeader
from email.policy import SMTP, EmailPolicy
from email.utils import format_datetime, parseaddr
from functools import lru_cache
from urllib.parse import urlsplit

from dispatch.errors import PermanentDeliveryError
from dispatch.models import OutgoingMessage

CRLF = "\r\n"
#: Plain ASCII tokens that never need encoding or quoting (language tags, type names).
_TOKEN = re.compile(r"^[A-Za-z0-9_.+-]{1,64}$")
_ADDR_FORBIDDEN = re.compile(r"[\s<>,;:\"()\[\]\\]")


class HeaderInjection(PermanentDeliveryError):
    """A header value held a line break (or another character a header cannot carry)."""


class InvalidAddress(PermanentDeliveryError):
    """The recipient's address cannot be written into a header or an SMTP envelope."""


class _VerbatimListHeader(UnstructuredHeader):
    """An RFC 2369 list of ``<URI>`` entries: never encoded, folded between entries only."""

    def fold(self, *, policy: EmailPolicy) -> str:  # type: ignore[override]
        entries = split_list_header(str(self))
        return f"{self.name}: " + ("," + policy.linesep + " ").join(entries) + policy.linesep


def _policy() -> EmailPolicy:
    registry = HeaderRegistry()
    registry.map_to_type("list-unsubscribe", _VerbatimListHeader)
    return SMTP.clone(header_factory=registry)


#: SMTP line endings (CRLF), 78-column folding, and the verbatim List-Unsubscribe.
POLICY = _policy()
#: The same for messages whose recipient has a non-ASCII local part (needs SMTPUTF8).
POLICY_UTF8 = POLICY.clone(utf8=True)


@dataclass(frozen=True, slots=True)
class BuiltEmail:
    """A message ready for SMTP: the bytes and what the envelope needs."""

    #: The whole message, CRLF line endings.
    data: bytes
    #: ``<id@domain>``, the same for every attempt.
    message_id: str
    #: Envelope sender (the VERP Return-Path when configured, else the From address)
    #: and recipient (addr-specs; IDNA domains).
    sender: str
    recipient: str
    #: The message or its envelope needs SMTPUTF8 (a non-ASCII local part).
    utf8: bool

    def as_bytes(self) -> bytes:
        """The message as it goes over the wire."""
        return self.data

    def as_delivered(self) -> BuiltEmail:
        """The message as a receiving MTA stores it (``.eml`` files): ``Return-Path: <envelope sender>`` first.

        Only the final delivery adds ``Return-Path`` (RFC 5321 §4.4); over SMTP the
        envelope sender travels in ``MAIL FROM`` instead.
        """
        line = f"Return-Path: <{self.sender}>{CRLF}".encode("utf-8" if self.utf8 else "ascii")
        return replace(self, data=line + self.data)


def check_header(name: str, value: str) -> str:
    """Refuse CR, LF and NUL in a header value; returns the value unchanged."""
    if "\n" in value or "\r" in value or "\x00" in value:
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


@lru_cache(maxsize=1024)
def _ascii_domain(domain: str) -> str:
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidAddress(
            f"domain {domain!r} is not a valid internationalised domain name", code="invalid_address"
        ) from exc


def envelope_address(address: str) -> str:
    """Exactly one addr-spec, as used in the SMTP envelope and the ``To`` header.

    An internationalised domain becomes its IDNA (``xn--``) form, which every server
    accepts; a non-ASCII local part stays as it is (it needs SMTPUTF8).
    """
    check_header("To", address)
    local, at, domain = address.strip().rpartition("@")
    if (
        not at
        or not local
        or not domain
        or _ADDR_FORBIDDEN.search(local)
        or _ADDR_FORBIDDEN.search(domain)
        or "@" in local
        or domain.startswith(".")
        or domain.endswith(".")
        or ".." in domain
    ):
        raise InvalidAddress(f"{address!r} is not one email address", code="invalid_address")
    return f"{local}@{_ascii_domain(domain)}"


def needs_smtputf8(address: str) -> bool:
    """True when the envelope address cannot be sent without the SMTPUTF8 extension."""
    return not address.isascii()


@lru_cache(maxsize=256)
def mailbox_header(name: str, value: str) -> tuple[str, str]:
    """The folded ``Name: display <addr>`` line for ``From``/``Reply-To``, and the addr-spec.

    RFC 2047-encodes a non-ASCII display name; raises :class:`InvalidAddress` for
    something that is not one mailbox.
    """
    check_header(name, value)
    display, addr = parseaddr(value)
    if not addr or "@" not in addr:
        raise InvalidAddress(f"{name} {value!r} is not an email address", code="invalid_address")
    addr = envelope_address(addr)
    try:
        mailbox = Address(display_name=display, addr_spec=addr)
    except (ValueError, IndexError) as exc:
        raise InvalidAddress(f"{name} {value!r} is not an email address: {exc}", code="invalid_address") from exc
    return POLICY.header_factory(name, mailbox).fold(policy=POLICY), addr


@lru_cache(maxsize=4096)
def _folded(name: str, value: str, utf8: bool) -> str:
    """``Name: value`` folded at 78 columns, non-ASCII RFC 2047-encoded (or raw UTF-8 under SMTPUTF8)."""
    policy = POLICY_UTF8 if utf8 else POLICY
    return policy.header_factory(name, value).fold(policy=policy)


def header(name: str, value: str, *, utf8: bool = False) -> str:
    """One header line (CRLF-terminated) for ``value``, checked for injection first."""
    check_header(name, value)
    if value.isascii() and len(name) + len(value) + 2 <= 78 and "=?" not in value:
        return f"{name}: {value}{CRLF}"
    return _folded(name, value, utf8)


def list_unsubscribe(url: str, mailto: str | None, message_id: str) -> tuple[str, bool]:
    """The List-Unsubscribe value and whether it allows RFC 8058 one-click (an HTTPS URI)."""
    check_header("List-Unsubscribe", url)
    if not url.isascii() or any(c in url for c in " <>,"):
        raise HeaderInjection(
            f"unsubscribe URL {url!r} must be an ASCII URI without spaces, <, > or commas", code="header_injection"
        )
    targets = [f"<{url}>"]
    if mailto:
        check_header("List-Unsubscribe", mailto)
        if not mailto.isascii() or any(c in mailto for c in " <>,?"):
            raise HeaderInjection(
                f"unsubscribe mailbox {mailto!r} must be a plain ASCII address", code="header_injection"
            )
        targets.append(f"<mailto:{mailto}?subject=unsubscribe%20{message_id}>")
    return ", ".join(targets), urlsplit(url).scheme == "https"


def quoted_printable(text: str) -> bytes:
    """UTF-8 quoted-printable body with CRLF line endings (lines ≤ 76 characters)."""
    normal = text.replace("\r\n", "\n").replace("\r", "\n")
    return binascii.b2a_qp(normal.encode("utf-8"), quotetabs=False, istext=True).replace(b"\n", b"\r\n")


def _text_part(subtype: str, text: str) -> bytes:
    head = (
        f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}'
    ).encode("ascii")
    body = quoted_printable(text)
    # The CRLF before the next boundary belongs to the boundary (RFC 2046 §5.1.1).
    return head + body + b"\r\n"


def build_email(
    message: OutgoingMessage,
    *,
    sender: str,
    reply_to: str | None,
    date: datetime,
    html: str | None = None,
    unsubscribe_mailto: str | None = None,
    envelope_sender: str | None = None,
) -> BuiltEmail:
    """The email for ``message``; ``html`` overrides the HTML part (e.g. with CSS inlined).

    ``envelope_sender`` is the ``MAIL FROM`` address (the per-message VERP address,
    see :mod:`dispatch_email.verp`); default: the ``From`` address.

    Raises :class:`HeaderInjection` or :class:`InvalidAddress` (both permanent
    delivery errors) instead of writing a header that could be abused.
    """
    subject = check_header("Subject", message.parts.get("subject", "").strip())
    recipient = envelope_address(str(message.address))
    utf8 = needs_smtputf8(recipient)
    from_line, from_addr = mailbox_header("From", sender)
    message_id = message_id_header(message.id, _ascii_domain(from_addr.rpartition("@")[2]))
    lines = [from_line, header("To", recipient, utf8=utf8)]
    if reply_to:
        lines.append(mailbox_header("Reply-To", reply_to)[0])
    lines += [
        header("Subject", subject, utf8=utf8),
        f"Date: {format_datetime(date)}{CRLF}",
        f"Message-ID: {message_id}{CRLF}",
        header("X-Dispatch-Type", message.message_type),
    ]
    if message.unsubscribe_url:
        value, one_click = list_unsubscribe(message.unsubscribe_url, unsubscribe_mailto, message.id)
        lines.append(_folded("List-Unsubscribe", value, False))
        if one_click:
            lines.append(f"List-Unsubscribe-Post: List-Unsubscribe=One-Click{CRLF}")
    lines.append(f"MIME-Version: 1.0{CRLF}")
    language = check_header("Content-Language", message.language)
    if not _TOKEN.match(language):
        raise HeaderInjection(f"language {language!r} is not a language tag", code="header_injection")
    text = message.parts.get("text", "")
    body = html if html is not None else message.parts.get("html")
    if body:
        boundary = f"=_dispatch_{message.id}"  # "=_" never occurs in quoted-printable text
        lines.append(f'Content-Type: multipart/alternative; boundary="{boundary}"{CRLF}')
        lines.append(f"Content-Language: {language}{CRLF}{CRLF}")
        delimiter = f"--{boundary}{CRLF}".encode("ascii")
        payload = (
            delimiter
            + _text_part("plain", text)
            + delimiter
            + _text_part("html", body)
            + f"--{boundary}--{CRLF}".encode("ascii")
        )
    else:
        lines.append(f'Content-Type: text/plain; charset="utf-8"{CRLF}')
        lines.append(f"Content-Transfer-Encoding: quoted-printable{CRLF}")
        lines.append(f"Content-Language: {language}{CRLF}{CRLF}")
        payload = quoted_printable(text)
    head = "".join(lines).encode("utf-8" if utf8 else "ascii")
    if envelope_sender is not None:
        envelope_sender = envelope_address(envelope_sender)
    return BuiltEmail(head + payload, message_id, envelope_sender or from_addr, recipient, utf8)
