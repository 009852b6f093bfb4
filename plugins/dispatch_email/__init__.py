"""Built-in email channel: multipart text + HTML; SMTP (aiosmtplib) or .eml files."""

from __future__ import annotations

from collections.abc import Callable

from dispatch import hookimpl

from .channel import EmailChannel, EmailSettings

__all__ = ["EmailChannel", "EmailSettings"]


@hookimpl
def dispatch_channels(register: Callable[[type], None]) -> None:
    register(EmailChannel)
