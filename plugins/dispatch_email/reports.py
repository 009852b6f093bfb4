"""Returned mail → :class:`~dispatch.feedback.ProviderEvent`: DSNs, ARF complaints, plain bounces.

One job: read the bytes of a message that came back to the bounce mailbox and
say what it reports. Nothing here talks to a server or writes a file.

- **DSN** (RFC 3464): ``multipart/report; report-type=delivery-status`` with a
  ``message/delivery-status`` part — what Postfix, Exim 4, Exchange/Microsoft 365
  and Gmail send. The stdlib ``email`` package parses that part into its field
  blocks (the per-message block, then one per recipient). Each recipient block
  becomes one event: ``Action: failed`` → ``bounced`` (``permanent`` unless the
  status is 4.x.x: the MTA gave up on a temporary cause), ``Action: delayed`` →
  ``soft_bounced``,
  ``delivered``/``relayed``/``expanded`` → ``delivered``.
- **ARF** (RFC 5965): ``multipart/report; report-type=feedback-report`` with a
  ``message/feedback-report`` part → ``complained`` for the feedback types
  ``abuse``, ``fraud``, ``virus`` and ``other`` (``not-spam`` and
  ``auth-failure`` are no complaint by the recipient: nothing is reported).
- **Plain bounce** (fallback): a message that looks like a bounce (sent to a VERP
  address, ``X-Failed-Recipients``, from ``MAILER-DAEMON``/``postmaster``, or an
  empty Return-Path) whose text holds a 5.x.x status, e.g. ``550 5.1.1``.

The message id comes only from a VERP address whose keyed tag verifies (see
:mod:`dispatch_email.verp`): the address the mail was sent to, else the
``Original-Mail-From`` of an ARF report, else the ``Return-Path`` of the returned
original. A ``Message-ID`` header is never enough: anyone can write one, and a
customer knows their own message's. Without a verified id the event names no message
(the listener keeps such mail aside).

Returned mail comes from anyone, so the work it may cause is bounded: a message that
declares more MIME boundaries, part delimiters or embedded messages than a real report
has is refused before it is parsed (:data:`MAX_BOUNDARIES`, :data:`MAX_DELIMITERS`,
:data:`MAX_EMBEDDED`), at most
:data:`MAX_FIELD_BLOCKS` recipient blocks are read, and one mail yields at most one
event per message and kind (2,000 ``Action: delayed`` blocks are one soft bounce).

``detail`` carries diagnostics without personal data: the
reporting and remote MTA, the action, and the diagnostic text with every address
in it replaced by ``<address>``.
"""

from __future__ import annotations

import binascii
import itertools
import quopri
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from email.utils import parsedate_to_datetime
from typing import Any

from dispatch.feedback import FeedbackKind, ProviderEvent

from .verp import MESSAGE_ID, ReturnPath

SOURCE_DSN = "dsn"
SOURCE_ARF = "arf"
SOURCE_PLAIN = "plain_bounce"

#: ARF feedback types that are a complaint by the recipient (RFC 5965 §7.3).
COMPLAINT_TYPES = frozenset({"abuse", "fraud", "virus", "other"})

_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_PLAIN_PERMANENT = re.compile(r"(?<![\d.])5\d\d[ -]+#?(5\.\d{1,3}\.\d{1,3})(?![\d.])")
_PLAIN_BARE = re.compile(r"(?<![\d.])(5\.\d{1,3}\.\d{1,3})(?![\d.])")
_ADDRESS = re.compile(r"<?[^\s<>@;,\"']+@[^\s<>;,\"']+>?")
_HEADER_ID = re.compile(r"<(" + MESSAGE_ID.pattern + r")@[^>]*>", re.IGNORECASE)
_DAEMONS = ("mailer-daemon", "postmaster", "mail-delivery-system", "mail-delivery-subsystem", "mdaemon")
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery status notification|failure notice|returned mail|mail delivery fail|"
    r"delivery has failed|non-delivery|could not be delivered",
    re.IGNORECASE,
)
_ORIGINAL_TYPES = frozenset(
    {"message/rfc822", "message/global", "text/rfc822-headers", "message/rfc822-headers", "message/global-headers"}
)
_DIAGNOSTIC_MAX = 300
_PLAIN_TEXT_MAX = 64 * 1024
#: A real DSN or ARF report has 2-3 MIME boundaries and one embedded original; junk nested
#: hundreds of levels deep costs the email package seconds of CPU to parse.
MAX_BOUNDARIES = 16
MAX_EMBEDDED = 8
#: Lines that may delimit MIME parts (``--boundary``): a report has a handful, a signature one more.
MAX_DELIMITERS = 256
#: Recipient blocks read from one delivery-status part (a message of ours has one recipient).
MAX_FIELD_BLOCKS = 50
#: Addresses looked at when searching a text for a VERP address.
_MAX_ADDRESSES = 200
_BOUNDARY = re.compile(rb"boundary\s*=", re.IGNORECASE)
_EMBEDDED = re.compile(rb"message/(?:rfc822|global)\b", re.IGNORECASE)
_BLANK_LINE = re.compile(rb"\n[ \t]*\n")
_DELIMITER = re.compile(rb"^--", re.MULTILINE)

# compat32, not policy.default: both parse message/delivery-status into its field blocks, but
# policy.default's header registry costs ~3 ms per DSN (10x the whole parse); values are read as text.
_PARSER = BytesParser(policy=policy.compat32)
_HEADER_PARSER = BytesHeaderParser(policy=policy.compat32)


@dataclass(frozen=True, slots=True)
class ParsedMail:
    """What one returned message reports."""

    #: ``dsn``, ``arf`` or ``plain_bounce``; None when it is none of them.
    source: str | None
    events: tuple[ProviderEvent, ...]
    #: Why no event was taken from it (kept aside by the listener), else None.
    problem: str | None = None


def parse_returned_mail(
    raw: bytes,
    *,
    return_path: ReturnPath | None = None,
    envelope_recipients: Sequence[str] = (),
    received_at: datetime | None = None,
) -> ParsedMail:
    """The provider events in ``raw`` (a whole message as received); never raises.

    ``envelope_recipients`` are the SMTP ``RCPT TO`` addresses (the VERP address);
    without them (IMAP) the ``Delivered-To``/``X-Original-To``/``To`` headers are read.
    """
    received_at = received_at or datetime.now(UTC)
    too_complex = _too_complex(raw)
    if too_complex:
        return ParsedMail(None, (), too_complex)
    try:
        return _parse(raw, return_path, envelope_recipients, received_at)
    except Exception as exc:  # malformed beyond what the email package tolerates
        return ParsedMail(None, (), f"malformed message ({type(exc).__name__})")


def _too_complex(raw: bytes) -> str | None:
    """Why ``raw`` is refused before parsing (more structure than any real report has), or None."""
    if sum(1 for _ in itertools.islice(_BOUNDARY.finditer(raw), MAX_BOUNDARIES + 1)) > MAX_BOUNDARIES:
        return f"more than {MAX_BOUNDARIES} MIME boundaries: not parsed"
    if sum(1 for _ in itertools.islice(_EMBEDDED.finditer(raw), MAX_EMBEDDED + 1)) > MAX_EMBEDDED:
        return f"more than {MAX_EMBEDDED} embedded messages: not parsed"
    if sum(1 for _ in itertools.islice(_DELIMITER.finditer(raw), MAX_DELIMITERS + 1)) > MAX_DELIMITERS:
        return f"more than {MAX_DELIMITERS} MIME part delimiters: not parsed"
    return None


def _parse(
    raw: bytes, return_path: ReturnPath | None, envelope_recipients: Sequence[str], received_at: datetime
) -> ParsedMail:
    msg = _PARSER.parsebytes(raw)
    verp_id = _verp_id(msg, return_path, envelope_recipients)
    report = _find_report(msg)
    if report is not None:
        kind, part = report
        if kind == SOURCE_DSN:
            parsed = _dsn(msg, part, verp_id, return_path, received_at)
        else:
            parsed = _arf(msg, part, verp_id, return_path, received_at)
    else:
        parsed = _plain_bounce(msg, verp_id, return_path, received_at)
    return _one_per_message_and_kind(parsed)


def _one_per_message_and_kind(parsed: ParsedMail) -> ParsedMail:
    """At most one event per (message, kind): the first one the mail gives (per address when it names none)."""
    seen: set[tuple[str | None, FeedbackKind, str | None]] = set()
    events = []
    for event in parsed.events:
        key = (event.message_id, event.kind, None if event.message_id else event.address)
        if key not in seen:
            seen.add(key)
            events.append(event)
    return ParsedMail(parsed.source, tuple(events), parsed.problem)


# -- where the message id comes from --------------------------------------------------


def _verp_id(msg: Message, return_path: ReturnPath | None, envelope_recipients: Sequence[str]) -> str | None:
    if return_path is None:
        return None
    candidates = list(envelope_recipients)
    if not candidates:
        for name in ("Delivered-To", "X-Original-To", "Envelope-To", "To"):
            candidates += [str(v) for v in msg.get_all(name, [])]
    return _verp_in(candidates, return_path)


def _verp_in(values: Sequence[str], return_path: ReturnPath | None) -> str | None:
    """The message id of the first VERP address in ``values`` whose tag verifies, or None."""
    if return_path is None:
        return None
    for value in values[:_MAX_ADDRESSES]:
        for token in _ADDRESS.findall(str(value))[:_MAX_ADDRESSES]:
            message_id = return_path.message_id(token)
            if message_id:
                return message_id
    return None


def _original_verp(original: Message | None, return_path: ReturnPath | None) -> str | None:
    """The message id in the ``Return-Path`` of the returned original (our VERP envelope sender)."""
    if original is None:
        return None
    return _verp_in([str(v) for v in original.get_all("Return-Path", [])], return_path)


def _original_id(original: Message | None, name: str = "Message-ID") -> str | None:
    """The dispatch message id in a ``Message-ID`` header of the original (for the record only: never trusted)."""
    value = original.get(name) if original is not None else None
    match = _HEADER_ID.search(str(value)) if value else None
    return match.group(1).upper() if match else None


# -- finding the parts ----------------------------------------------------------------


def _parts(msg: Message) -> Iterator[Message]:
    """Every part of ``msg``, depth first, without entering attached messages."""
    yield msg
    if msg.is_multipart() and not msg.get_content_type().startswith("message/"):
        for part in msg.get_payload():
            if isinstance(part, Message):
                yield from _parts(part)


def _find_report(msg: Message) -> tuple[str, Message] | None:
    """The ``(source, report part)`` of a DSN or ARF report, also when nested in multipart/mixed."""
    for part in _parts(msg):
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            return SOURCE_DSN, part
        if ctype == "message/feedback-report":
            return SOURCE_ARF, part
    return None


def _field_blocks(part: Message) -> list[Message]:
    """The field blocks of a ``message/delivery-status`` or ``message/feedback-report`` part."""
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    payload = part.get_payload()
    if encoding not in ("base64", "quoted-printable"):
        if isinstance(payload, list):
            return [p for p in payload if isinstance(p, Message) and len(p) > 0]
        data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
    else:
        # Some gateways encode the part: the email package then parsed the encoded text as fields.
        body = part.as_bytes().replace(b"\r\n", b"\n").partition(b"\n\n")[2]
        try:
            data = binascii.a2b_base64(body) if encoding == "base64" else quopri.decodestring(body)
        except (binascii.Error, ValueError):
            return []
    text = data.replace(b"\r\n", b"\n")
    chunks: list[bytes] = []
    start = 0
    for separator in itertools.chain(_BLANK_LINE.finditer(text), [None]):
        end = separator.start() if separator is not None else len(text)
        chunk = text[start:end].strip(b"\n")
        if chunk.strip():
            chunks.append(chunk)
            if len(chunks) > MAX_FIELD_BLOCKS:  # the per-message block + MAX_FIELD_BLOCKS recipients
                break
        if separator is not None:
            start = separator.end()
    return [_HEADER_PARSER.parsebytes(chunk + b"\n") for chunk in chunks]


def _original(msg: Message) -> Message | None:
    """The returned original (message or headers only) in a report, if any."""
    for part in _parts(msg):
        ctype = part.get_content_type()
        if part is msg or ctype not in _ORIGINAL_TYPES:
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0]
        data = part.get_payload(decode=True)
        if isinstance(data, bytes) and data.strip():
            return _HEADER_PARSER.parsebytes(data.lstrip())
    return None


# -- DSN ------------------------------------------------------------------------------


def _dsn(
    msg: Message, part: Message, verp_id: str | None, return_path: ReturnPath | None, received_at: datetime
) -> ParsedMail:
    blocks = _field_blocks(part)
    if not blocks:
        return ParsedMail(SOURCE_DSN, (), "delivery-status part without fields")
    # The per-message block comes first; a sloppy writer may leave it out.
    first_is_recipient = _recipient_of(blocks[0]) is not None
    per_message = Message() if first_is_recipient else blocks[0]
    rest = blocks if first_is_recipient else blocks[1:]
    recipients = [b for b in rest if _recipient_of(b) or b.get("Status") or b.get("Action")]
    original = _original(msg)
    header_id = _original_id(original) or _original_id(per_message, "X-Original-Message-ID")
    message_id = verp_id or _original_verp(original, return_path)
    reporter = _reporter(msg, per_message)
    common: dict[str, Any] = {"reporter": reporter} if reporter else {}
    if per_message.get("Reporting-MTA"):
        common["reporting_mta"] = redact(per_message["Reporting-MTA"])
    if message_id and header_id and message_id != header_id:
        common["message_id_mismatch"] = True  # the verified VERP address wins: it was our envelope
    queue_id = _clean(per_message.get("X-Postfix-Queue-ID", "")) or None
    message_date = _date(per_message.get("Arrival-Date")) or _date(msg.get("Date"))
    events = []
    for block in recipients:
        action = _clean(block.get("Action", "")).lower()
        status = _status(block.get("Status")) or _status(block.get("Diagnostic-Code"))
        kind, permanent = _dsn_kind(action, status)
        if kind is None:
            continue
        detail = dict(common)
        if action:
            detail["action"] = action
        if block.get("Remote-MTA"):
            detail["remote_mta"] = redact(block["Remote-MTA"])
        if block.get("Diagnostic-Code"):
            detail["diagnostic"] = redact(str(block["Diagnostic-Code"]))
        events.append(
            ProviderEvent(
                kind=kind,
                channel="email",
                occurred_at=_date(block.get("Last-Attempt-Date")) or message_date or received_at,
                message_id=message_id,
                provider_id=queue_id,
                address=_recipient_of(block),
                code=status,
                permanent=permanent,
                detail=detail,
                source=SOURCE_DSN,
            )
        )
    if not events:
        return ParsedMail(SOURCE_DSN, (), "DSN without a recipient that failed, was delayed or was delivered")
    return ParsedMail(SOURCE_DSN, tuple(events))


def _dsn_kind(action: str, status: str | None) -> tuple[FeedbackKind | None, bool]:
    klass = status[0] if status else ""
    if action == "failed":
        # The MTA gave up: the message is lost. Only a 5.x.x status says the address is bad;
        # a 4.x.x one (retried for days) is a failed message at an address that may still work.
        return FeedbackKind.BOUNCED, klass != "4"
    if action == "delayed":
        return FeedbackKind.SOFT_BOUNCED, False
    if action in ("delivered", "relayed", "expanded"):
        return FeedbackKind.DELIVERED, False
    # No or an unknown action: the status class decides.
    return {"5": (FeedbackKind.BOUNCED, True), "4": (FeedbackKind.SOFT_BOUNCED, False)}.get(
        klass, (FeedbackKind.DELIVERED, False) if klass == "2" else (None, False)
    )


def _recipient_of(block: Message) -> str | None:
    for name in ("Final-Recipient", "Original-Recipient"):
        value = block.get(name)
        if value:
            address = _address_field(str(value))
            if address:
                return address
    return None


def _address_field(value: str) -> str | None:
    """``rfc822; user@example.com`` → ``user@example.com`` (a typed address, RFC 3464 §2.3.2)."""
    kind, semicolon, address = value.partition(";")
    address = (address if semicolon else kind).strip().strip("<>").strip()
    return address if "@" in address else None


def _status(value: Any) -> str | None:
    """The first enhanced status code (RFC 3463) in ``value``: ``5.1.1``."""
    if not value:
        return None
    match = _STATUS.search(str(value))
    return ".".join(match.groups()) if match else None


def _reporter(msg: Message, per_message: Message | None = None) -> str | None:
    """Which kind of MTA wrote the report (for the record; nothing depends on it)."""
    keys = {k.lower() for k in msg.keys()}  # noqa: SIM118 - Message is not a dict
    if per_message is not None:
        keys |= {k.lower() for k in per_message.keys()}  # noqa: SIM118
    sender = str(msg.get("From", "")).lower()
    if "googlemail.com" in sender or "x-gm-message-state" in keys:
        return "gmail"
    if any(k.startswith("x-ms-exchange") for k in keys):
        return "exchange"
    if "x-postfix-queue-id" in keys or "x-postfix-sender" in keys:
        return "postfix"
    if "x-failed-recipients" in keys:
        return "exim"
    return None


# -- ARF ------------------------------------------------------------------------------


def _arf(
    msg: Message, part: Message, verp_id: str | None, return_path: ReturnPath | None, received_at: datetime
) -> ParsedMail:
    blocks = _field_blocks(part)
    if not blocks:
        return ParsedMail(SOURCE_ARF, (), "feedback-report part without fields")
    report = blocks[0]
    feedback_type = _clean(report.get("Feedback-Type", "")).lower()
    if feedback_type not in COMPLAINT_TYPES:
        shown = redact(feedback_type)[:40] or "missing"
        return ParsedMail(SOURCE_ARF, (), f"feedback type {shown!r} is not a complaint")
    original = _original(msg)
    message_id = (
        verp_id
        or _verp_in([str(v) for v in report.get_all("Original-Mail-From", [])], return_path)
        or _original_verp(original, return_path)
    )
    # Only Original-Rcpt-To names the recipient: the original's To is often redacted by the reporter.
    address = None
    for value in report.get_all("Original-Rcpt-To", []):
        address = _address_field(str(value))
        if address:
            break
    detail: dict[str, Any] = {"feedback_type": feedback_type}  # one of COMPLAINT_TYPES
    for name, key in (("User-Agent", "user_agent"), ("Reporting-MTA", "reporting_mta"), ("Incidents", "incidents")):
        if report.get(name):
            detail[key] = redact(report[name])
    event = ProviderEvent(
        kind=FeedbackKind.COMPLAINED,
        channel="email",
        occurred_at=_date(report.get("Arrival-Date")) or _date(report.get("Received-Date")) or received_at,
        message_id=message_id,
        address=address,
        code=feedback_type,
        permanent=False,
        detail=detail,
        source=SOURCE_ARF,
    )
    return ParsedMail(SOURCE_ARF, (event,))


# -- plain bounces --------------------------------------------------------------------


def _plain_bounce(
    msg: Message, verp_id: str | None, return_path: ReturnPath | None, received_at: datetime
) -> ParsedMail:
    failed = [a.strip() for v in msg.get_all("X-Failed-Recipients", []) for a in str(v).split(",") if "@" in a]
    if not (verp_id or failed or _from_daemon(msg) or _BOUNCE_SUBJECT.search(str(msg.get("Subject", "")))):
        return ParsedMail(None, (), "neither a DSN, an ARF report nor a bounce")
    text = _text_of(msg)
    match = _PLAIN_PERMANENT.search(text) or _PLAIN_BARE.search(text)
    if match is None:
        return ParsedMail(None, (), "a bounce without a 5.x.x status")
    code = match.group(1)
    # The returned original's headers (its Return-Path: our VERP address) are often quoted in the text.
    message_id = verp_id or _verp_in([text], return_path) or _original_verp(_original(msg), return_path)
    reporter = _reporter(msg)
    detail: dict[str, Any] = {"diagnostic": redact(_line_around(text, match.start()))}
    if reporter:
        detail["reporter"] = reporter
    events = tuple(
        ProviderEvent(
            kind=FeedbackKind.BOUNCED,
            channel="email",
            occurred_at=_date(msg.get("Date")) or received_at,
            message_id=message_id,
            address=address,
            code=code,
            permanent=True,
            detail=detail,
            source=SOURCE_PLAIN,
        )
        for address in (failed or [None])
    )
    return ParsedMail(SOURCE_PLAIN, events)


def _from_daemon(msg: Message) -> bool:
    sender = str(msg.get("From", "")).lower()
    if any(name in sender for name in _DAEMONS):
        return True
    return str(msg.get("Return-Path", "x")).strip() == "<>"


def _text_of(msg: Message) -> str:
    """The first text/plain part (else the first text part), at most 64 KiB of it."""
    texts = [p for p in _parts(msg) if p.get_content_maintype() == "text" and not p.is_multipart()]
    texts.sort(key=lambda p: p.get_content_type() != "text/plain")
    for part in texts:
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        try:
            content = data.decode(part.get_content_charset() or "utf-8", "replace")
        except LookupError:  # an unknown charset
            content = data.decode("utf-8", "replace")
        if content.strip():
            return content[:_PLAIN_TEXT_MAX]
    return ""


def _line_around(text: str, position: int) -> str:
    start = text.rfind("\n", 0, position) + 1
    end = text.find("\n", position)
    return text[start : end if end != -1 else len(text)].strip()


# -- small helpers --------------------------------------------------------------------


def redact(text: str) -> str:
    """Diagnostic text without personal data: every address becomes ``<address>``; one line, 300 characters."""
    one_line = " ".join(str(text).split())
    return _ADDRESS.sub("<address>", one_line)[:_DIAGNOSTIC_MAX]


def _clean(value: Any) -> str:
    return " ".join(str(value).split())


def _date(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None or parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC)


__all__ = [
    "COMPLAINT_TYPES",
    "SOURCE_ARF",
    "SOURCE_DSN",
    "SOURCE_PLAIN",
    "ParsedMail",
    "parse_returned_mail",
    "redact",
]
