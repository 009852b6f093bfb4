"""Built-in SMS channel: Twilio, or JSON lines in the outbox; segment counts under GSM-7/UCS-2."""

from __future__ import annotations

from collections.abc import Callable

from dispatch import hookimpl

from .channel import SmsChannel, SmsSettings

__all__ = ["SmsChannel", "SmsSettings"]


@hookimpl
def dispatch_channels(register: Callable[[type], None]) -> None:
    register(SmsChannel)
