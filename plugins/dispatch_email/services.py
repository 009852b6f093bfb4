"""What ``dispatch serve`` runs for returned mail: the SMTP listener and/or the IMAP poller.

``dispatch serve`` adds them to the services it runs beside the web application
(each has ``start()``/``stop()``, running in a thread of its own)::

    from dispatch_email.services import returned_mail_services_for

    services += returned_mail_services_for(dispatcher, smtp_port=smtp_port)   # not started yet

or, outside the web application::

    from dispatch_email.services import returned_mail_services

    with returned_mail_services(dispatcher.channels["email"], dispatcher.handle_feedback, smtp_port=2525) as inbound:
        run_web_app(...)            # inbound.stats.snapshot() for a health page

Both share one :class:`~dispatch_email.inbound.ReturnedMailProcessor` (one set of
counters, one keep-aside folder). The listener runs when ``smtp_port`` (the
``--smtp-port`` option) or ``[channels.email] inbound_port`` is given; the poller
when ``imap_host`` is set. Neither without ``return_path``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dispatch.errors import ConfigError

from .imap import ImapPoller, ImapSettings
from .inbound import InboundListener, InboundStats, OnFeedback, ReturnedMailProcessor

if TYPE_CHECKING:
    from dispatch.host import Host

    from .channel import EmailChannel


@dataclass
class ReturnedMailServices:
    """The running listener and poller (either may be None) and their shared counters."""

    processor: ReturnedMailProcessor
    listener: InboundListener | None = None
    poller: ImapPoller | None = None

    @property
    def stats(self) -> InboundStats:
        return self.processor.stats

    def stop(self) -> None:
        if self.listener is not None:
            self.listener.stop()
        if self.poller is not None:
            self.poller.stop()


def build_processor(
    channel: EmailChannel, on_feedback: OnFeedback, *, accept_unmatched: bool = False
) -> ReturnedMailProcessor:
    """The processor for ``channel``'s return path; raises :class:`ConfigError` without ``return_path``."""
    if channel.return_path is None:
        raise ConfigError("returned mail needs [channels.email] return_path (the bounce mailbox)")
    settings = channel.settings
    folder = (
        channel.context.config.path(settings.inbound_keep_aside)
        if settings.inbound_keep_aside
        else channel.outbox / "inbound-kept-aside"
    )
    return ReturnedMailProcessor(
        channel.return_path,
        on_feedback,
        folder,
        accept_unmatched=accept_unmatched,
        keep_aside_max=settings.inbound_keep_aside_max,
        keep_aside_max_bytes=settings.inbound_keep_aside_max_bytes,
    )


def imap_settings(channel: EmailChannel) -> ImapSettings | None:
    """``imap_*`` of ``[channels.email]`` (password: DISPATCH_IMAP_PASSWORD first), or None."""
    s = channel.settings
    if not s.imap_host:
        return None
    return ImapSettings(
        host=s.imap_host,
        port=s.imap_port,
        tls=s.imap_tls,
        starttls=s.imap_starttls,
        username=s.imap_username,
        password=os.environ.get("DISPATCH_IMAP_PASSWORD") or s.imap_password,
        folder=s.imap_folder,
        interval=s.imap_interval,
        timeout=s.timeout,
        validate_certs=s.validate_certs,
    )


def start_returned_mail_services(
    channel: EmailChannel,
    on_feedback: OnFeedback,
    *,
    smtp_port: int | None = None,
    smtp_host: str | None = None,
) -> ReturnedMailServices:
    """Start the listener (when a port is given or configured) and the IMAP poller (when configured)."""
    services = _build(channel, on_feedback, smtp_port, smtp_host)
    try:
        if services.listener is not None:
            services.listener.start()
        if services.poller is not None:
            services.poller.start()
    except BaseException:
        services.stop()
        raise
    return services


def returned_mail_services_for(
    dispatcher: Host, *, smtp_port: int | None = None, smtp_host: str | None = None
) -> list[InboundListener | ImapPoller]:
    """The listener and/or poller for ``dispatcher``'s email channel, not started, events to ``handle_feedback``.

    Empty when nothing is configured (no ``return_path``, no port, no ``imap_host``);
    raises :class:`ConfigError` when ``smtp_port`` is asked for without ``return_path``.
    """
    channel = dispatcher.channels.get("email")
    if channel is None or getattr(channel, "return_path", None) is None:
        if smtp_port is not None:
            raise ConfigError("--smtp-port needs [channels.email] return_path (the bounce mailbox)")
        return []
    services = _build(channel, dispatcher.handle_feedback, smtp_port, smtp_host)
    return [s for s in (services.listener, services.poller) if s is not None]


def _build(
    channel: EmailChannel, on_feedback: OnFeedback, smtp_port: int | None, smtp_host: str | None
) -> ReturnedMailServices:
    """The listener (a port given or configured) and the poller (``imap_host``), not started."""
    services = ReturnedMailServices(build_processor(channel, on_feedback))
    settings = channel.settings
    port = smtp_port if smtp_port is not None else settings.inbound_port
    if port is not None:
        services.listener = InboundListener(
            services.processor,
            host=smtp_host or settings.inbound_host,
            port=port,
            max_bytes=settings.inbound_max_bytes,
            server_name=settings.local_hostname,
        )
    imap = imap_settings(channel)
    if imap is not None:
        services.poller = ImapPoller(imap, services.processor)
    return services


@contextmanager
def returned_mail_services(
    channel: EmailChannel, on_feedback: OnFeedback, *, smtp_port: int | None = None, smtp_host: str | None = None
) -> Iterator[ReturnedMailServices]:
    """:func:`start_returned_mail_services` as a context manager (stopped on exit)."""
    services = start_returned_mail_services(channel, on_feedback, smtp_port=smtp_port, smtp_host=smtp_host)
    try:
        yield services
    finally:
        services.stop()


__all__ = [
    "ReturnedMailServices",
    "build_processor",
    "imap_settings",
    "returned_mail_services",
    "returned_mail_services_for",
    "start_returned_mail_services",
]
