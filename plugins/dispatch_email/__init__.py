"""Built-in email channel: text + HTML over SMTP (aiosmtplib) or .eml files; returned mail (VERP, DSN, ARF)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from dispatch import hookimpl

from .channel import EmailChannel, EmailSettings

if TYPE_CHECKING:
    from dispatch.host import Host

__all__ = ["EmailChannel", "EmailSettings"]


@hookimpl
def dispatch_channels(register: Callable[[type], None]) -> None:
    register(EmailChannel)


@hookimpl
def dispatch_serve_services(register: Callable[[Any], None], dispatcher: Host, options: Mapping[str, Any]) -> None:
    """The listener for returned mail (and the IMAP poller), when ``return_path`` is configured."""
    from .services import returned_mail_services_for

    for service in returned_mail_services_for(
        dispatcher, smtp_port=options.get("smtp_port"), smtp_host=options.get("smtp_host")
    ):
        register(service)
