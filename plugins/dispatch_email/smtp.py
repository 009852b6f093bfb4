"""SMTP delivery: a small pool of reused aiosmtplib connections, DKIM signing, error mapping.

The pool lives on the delivery event loop (every worker thread hands its
``deliver()`` coroutine to that one loop), so all threads of a worker process
share at most ``pool_size`` connections. A connection is replaced after
``messages_per_connection`` messages and after any error.

SMTP replies map onto dispatch's errors:

- any 4xx reply, a refused connection, a timeout or a dropped connection →
  :class:`~dispatch.errors.TransientDeliveryError` (the queue retries);
- a 5xx reply to ``RCPT TO`` or ``DATA`` (and 552 "message too big" to ``MAIL``) →
  :class:`~dispatch.errors.PermanentDeliveryError`: a bounce;
- a 5xx at greeting, ``EHLO``, ``AUTH`` or ``MAIL FROM`` says the relay refuses *us*
  (wrong credentials, sender not allowed): that is a configuration problem, not the
  recipient's, so it stays transient and the messages wait until it is fixed
  instead of being recorded as bounces (and re-sent as letters).
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiosmtplib

from dispatch.errors import AddressRejected, DeliveryError, PermanentDeliveryError, TransientDeliveryError
from dispatch.models import DeliveryResult, OutgoingMessage

from .mime import BuiltEmail, needs_smtputf8

if TYPE_CHECKING:
    from .channel import EmailChannel, EmailSettings

logger = logging.getLogger("dispatch.email")

#: Headers the DKIM signature covers. RFC 8058 §4: List-Unsubscribe and
#: List-Unsubscribe-Post MUST be covered.
DKIM_HEADERS = (
    "From",
    "To",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Language",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
)
#: Signed once more than they occur, so that a copy added on the way breaks the signature.
DKIM_OVERSIGN = ("From", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post")

_QUEUE_ID = (
    re.compile(r"queued as ([\w.-]+)", re.IGNORECASE),  # Postfix, many others
    re.compile(r"\bid=([\w.-]+)", re.IGNORECASE),  # Exim
    re.compile(r"^(?:\d\.\d\.\d\s+)?Ok\s+([\w.-]{16,})$", re.IGNORECASE),  # Amazon SES
)


def queue_id(reply: str) -> str | None:
    """The server's queue id in a reply to DATA (``250 2.0.0 Ok: queued as 4XyZ``), if it has one."""
    for pattern in _QUEUE_ID:
        match = pattern.search(reply.strip())
        if match:
            return match.group(1)
    return None


@dataclass
class _Connection:
    smtp: aiosmtplib.SMTP
    sent: int = 0


class _StaleConnection(Exception):
    """An idle connection turned out to be closed before the server accepted anything."""


class SmtpPool:
    """Up to ``pool_size`` SMTP connections, opened on demand and reused (one event loop)."""

    def __init__(self, settings: EmailSettings, password: str | None) -> None:
        self.settings = settings
        self.password = password
        self.loop = asyncio.get_running_loop()
        # Free places in the pool, one token each. A queue rather than a Semaphore: with hundreds of
        # sends waiting, Python 3.11's Semaphore looks through every waiter on each acquire.
        self._slots: asyncio.Queue[None] = asyncio.Queue()
        for _ in range(max(1, settings.pool_size)):
            self._slots.put_nowait(None)
        self._idle: list[_Connection] = []
        self._goodbyes: set[asyncio.Task[None]] = set()
        self.closed = False
        #: Connections opened so far (for logs and tests).
        self.opened = 0

    async def send(self, sender: str, recipient: str, data: bytes) -> aiosmtplib.SMTPResponse:
        """Send one message; returns the reply to DATA. Raises aiosmtplib's errors as they come."""
        if self.closed:
            raise TransientDeliveryError("the SMTP pool is closed", code="closed")
        await self._slots.get()
        try:
            conn, reused = await self._checkout()
            try:
                reply = await self._transaction(conn, sender, recipient, data, reused=reused)
            except _StaleConnection:
                # The server had dropped the idle connection before MAIL FROM was
                # answered: nothing was accepted, so one retry cannot send it twice.
                conn.smtp.close()
                conn = await self._connect()
                reply = await self._transaction(conn, sender, recipient, data, reused=False)
            self._checkin(conn)
            return reply
        finally:
            self._slots.put_nowait(None)

    async def _checkout(self) -> tuple[_Connection, bool]:
        while self._idle:
            conn = self._idle.pop()
            if conn.smtp.is_connected:
                return conn, True
            conn.smtp.close()
        return await self._connect(), False

    async def _connect(self) -> _Connection:
        s = self.settings
        smtp = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            username=s.username,
            password=self.password if s.username else None,
            local_hostname=s.local_hostname,
            timeout=s.timeout,
            use_tls=s.use_tls,
            start_tls=False if s.use_tls else s.starttls,
            validate_certs=s.validate_certs,
            cert_bundle=s.cert_bundle,
        )
        try:
            await smtp.connect()
            if smtp.is_ehlo_or_helo_needed:  # learn the extensions (SIZE, SMTPUTF8) now
                try:
                    await smtp.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await smtp.helo()
        except BaseException:
            smtp.close()
            raise
        self.opened += 1
        logger.debug("SMTP connection %d to %s:%s opened", self.opened, s.host, s.port)
        return _Connection(smtp)

    async def _transaction(
        self, conn: _Connection, sender: str, recipient: str, data: bytes, *, reused: bool
    ) -> aiosmtplib.SMTPResponse:
        smtp = conn.smtp
        utf8 = needs_smtputf8(recipient) or needs_smtputf8(sender)
        options = []
        if utf8:
            if not smtp.supports_extension("smtputf8"):
                self._checkin(conn)
                raise PermanentDeliveryError(
                    f"{recipient!r} needs SMTPUTF8, which the server {self.settings.host} does not offer",
                    code="smtputf8",
                )
            options.append("SMTPUTF8")
        if smtp.supports_extension("size"):
            options.append(f"SIZE={len(data)}")
        encoding = "utf-8" if utf8 else "ascii"
        try:
            try:
                await smtp.mail(sender, options=options, encoding=encoding)
            except aiosmtplib.SMTPServerDisconnected as exc:
                if reused:
                    raise _StaleConnection() from exc
                raise
            await smtp.rcpt(recipient, encoding=encoding)
            reply = await smtp.data(data)
        except _StaleConnection:
            raise
        except aiosmtplib.SMTPResponseException:
            self._retire(conn)  # a clean refusal: say goodbye, use a new connection next time
            raise
        except BaseException:
            conn.smtp.close()  # broken, timed out or cancelled mid-command: drop it
            raise
        conn.sent += 1
        return reply

    def _checkin(self, conn: _Connection) -> None:
        if self.closed or conn.sent >= self.settings.messages_per_connection or not conn.smtp.is_connected:
            self._retire(conn)
        else:
            self._idle.append(conn)

    def _retire(self, conn: _Connection) -> None:
        """QUIT in the background, or just close a connection that is already broken."""
        if not conn.smtp.is_connected:
            conn.smtp.close()
            return
        task = self.loop.create_task(_quit(conn.smtp))
        self._goodbyes.add(task)
        task.add_done_callback(self._goodbyes.discard)

    async def close(self) -> None:
        """QUIT every idle connection and wait for the goodbyes under way."""
        self.closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_quit(c.smtp) for c in idle), *self._goodbyes, return_exceptions=True)


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    try:
        await asyncio.wait_for(smtp.quit(), timeout=5)
    except Exception:  # a goodbye that fails changes nothing
        pass
    finally:
        smtp.close()


def pool_for(channel: EmailChannel) -> SmtpPool:
    """The channel's pool on the running event loop (a new one if the loop changed): the channel owns it."""
    return channel.smtp_pool()


def dkim_sign(data: bytes, *, selector: str, domain: str, key: bytes) -> bytes:
    """``data`` with a DKIM-Signature header (relaxed/simple, rsa-sha256) in front."""
    import dkim

    present = {
        line.split(b":", 1)[0].strip().lower().decode("ascii", "replace")
        for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        if line[:1] not in (b" ", b"\t")
    }
    include = [h for h in DKIM_HEADERS if h.lower() in present]
    include += [h for h in DKIM_OVERSIGN if h.lower() in present]
    signature = dkim.sign(
        data,
        selector.encode("ascii"),
        domain.encode("ascii"),
        key,
        include_headers=[h.encode("ascii") for h in include],
        linesep=b"\r\n",
    )
    return signature + data


def _error(exc: BaseException, stage: str) -> DeliveryError:
    """Map an aiosmtplib (or socket) error onto dispatch's transient/permanent errors."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc = exc.recipients[0]
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        code = exc.code
        text = f"SMTP {code} at {stage}: {exc.message}"
        bounce = isinstance(exc, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError) or (
            isinstance(exc, aiosmtplib.SMTPSenderRefused) and code == 552
        )
        if 500 <= code < 600 and isinstance(exc, aiosmtplib.SMTPRecipientRefused):
            return AddressRejected(text, code=str(code))  # the mailbox itself: suppress the address
        if 500 <= code < 600 and bounce:
            return PermanentDeliveryError(text, code=str(code))
        return TransientDeliveryError(text, code=str(code))
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return TransientDeliveryError(f"SMTP timeout at {stage}: {exc}", code="timeout")
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPConnectError | ConnectionError | OSError):
        return TransientDeliveryError(f"SMTP connection failed at {stage}: {exc}", code="connection")
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return TransientDeliveryError(f"SMTP server does not support what is needed: {exc}", code="not_supported")
    if isinstance(exc, ValueError):  # aiosmtplib refuses an address it cannot put in the envelope
        return PermanentDeliveryError(f"address refused before sending: {exc}", code="invalid_address")
    return TransientDeliveryError(f"SMTP error at {stage}: {type(exc).__name__}: {exc}", code="smtp")


async def send_via_pool(channel: EmailChannel, message: OutgoingMessage, email: BuiltEmail) -> DeliveryResult:
    """Send ``email`` over the channel's pool; returns the server's queue id (or the Message-ID)."""
    settings = channel.settings
    data = email.data
    key = channel.dkim_key()
    if key is not None:
        # Pure-Python RSA: keep the ~10 ms off the event loop the other channels share.
        data = await asyncio.to_thread(
            dkim_sign, data, selector=settings.dkim_selector, domain=settings.dkim_domain, key=key
        )
    try:
        reply = await pool_for(channel).send(email.sender, email.recipient, data)
    except DeliveryError:
        raise
    except Exception as exc:  # every failure becomes transient or permanent
        raise _error(exc, _stage(exc)) from exc
    return DeliveryResult(
        provider_id=queue_id(reply.message) or email.message_id,
        detail={"smtp_code": reply.code, "smtp_reply": reply.message, "message_id": email.message_id},
    )


def _stage(exc: BaseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPRecipientsRefused):
        return "RCPT TO"
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return "MAIL FROM"
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return "DATA"
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return "AUTH"
    if isinstance(exc, aiosmtplib.SMTPHeloError):
        return "EHLO"
    if isinstance(exc, aiosmtplib.SMTPConnectError | aiosmtplib.SMTPConnectTimeoutError | ConnectionRefusedError):
        return "connect"
    return "send"
