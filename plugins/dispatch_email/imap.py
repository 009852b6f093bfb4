"""Poll an IMAP mailbox for returned mail, instead of (or besides) the SMTP listener.

For a company whose bounce mailbox lives on an existing mail server: every
``imap_interval`` seconds a thread logs in (``imaplib``; implicit TLS on 993, or
STARTTLS), selects ``imap_folder``, fetches the ``UNSEEN`` messages with
``BODY.PEEK[]`` (which does not set ``\\Seen``), processes each as the listener
does (:class:`~dispatch_email.inbound.ReturnedMailProcessor`) and then marks it
``\\Seen`` — unless processing asked to retry (store down), so the next poll
takes it again. A poll that fails (server down, wrong password) is logged
without addresses and retried at the next interval; it never stops the thread.

The VERP address is read from the ``Delivered-To``/``X-Original-To`` headers the
delivering server adds (IMAP has no envelope).
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import ssl
import threading
from dataclasses import dataclass

from .inbound import Outcome, ReturnedMailProcessor

logger = logging.getLogger("dispatch.email.imap")


@dataclass(frozen=True)
class ImapSettings:
    """Where the bounce mailbox is (from ``[channels.email] imap_*``)."""

    host: str
    port: int = 993
    tls: bool = True
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    folder: str = "INBOX"
    interval: float = 60.0
    timeout: float = 30.0
    #: Validate the server's certificate (turn off only for local test servers).
    validate_certs: bool = True


class ImapPoller:
    """Fetch UNSEEN messages, process them, mark them seen; ``start()``/``stop()`` a polling thread."""

    def __init__(self, settings: ImapSettings, processor: ReturnedMailProcessor) -> None:
        self.settings = settings
        self.processor = processor
        self.stats = processor.stats
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _connect(self) -> imaplib.IMAP4:
        s = self.settings
        context = ssl.create_default_context()
        if not s.validate_certs:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if s.tls:
            client: imaplib.IMAP4 = imaplib.IMAP4_SSL(s.host, s.port, ssl_context=context, timeout=s.timeout)
        else:
            client = imaplib.IMAP4(s.host, s.port, timeout=s.timeout)
            if s.starttls:
                client.starttls(ssl_context=context)
        if s.username:
            client.login(s.username, s.password or "")
        return client

    def poll_once(self) -> int:
        """One poll: process every UNSEEN message; returns how many were processed (marked seen).

        Raises ``imaplib.IMAP4.error`` or ``OSError`` when the server cannot be used.
        """
        client = self._connect()
        done = 0
        try:
            status, _ = client.select(_quote(self.settings.folder))
            if status != "OK":
                raise imaplib.IMAP4.error(f"cannot select folder {self.settings.folder!r}")
            status, data = client.uid("SEARCH", None, "UNSEEN")
            if status != "OK":
                raise imaplib.IMAP4.error("UID SEARCH UNSEEN failed")
            uids = data[0].split() if data and data[0] else []
            for uid in uids:
                status, parts = client.uid("FETCH", uid, "(BODY.PEEK[])")
                raw = next((p[1] for p in parts or [] if isinstance(p, tuple) and len(p) > 1), None)
                if status != "OK" or raw is None:
                    self.stats.add("errors")
                    logger.warning("IMAP: message uid %s could not be fetched", uid.decode(errors="replace"))
                    continue
                if self.processor.process(raw) is Outcome.RETRY:
                    continue  # stays unseen: the next poll takes it again
                client.uid("STORE", uid, "+FLAGS.SILENT", r"(\Seen)")
                done += 1
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                client.logout()
        if done:
            logger.info("IMAP: %d returned message(s) processed", done)
        return done

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # server down, login refused, a bug: retried next time
                self.stats.add("imap_errors")
                logger.warning("IMAP poll failed (%s); retrying in %ss", type(exc).__name__, self.settings.interval)
            self._stop.wait(self.settings.interval)

    def start(self) -> ImapPoller:
        """Poll in a daemon thread until :meth:`stop`."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="dispatch-inbound-imap", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 60) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


__all__ = ["ImapPoller", "ImapSettings"]
