"""Built-in email channel: text + HTML over SMTP (aiosmtplib) or .eml files; returned mail (VERP, DSN, ARF)."""

from __future__ import annotations

from collections.abc import Callable

from dispatch import hookimpl

from .channel import EmailChannel, EmailSettings

__all__ = ["EmailChannel", "EmailSettings"]


@hookimpl
def dispatch_channels(register: Callable[[type], None]) -> None:
    register(EmailChannel)
