"""Built-in phone channel: call tasks (script, customer, calling window) for agents."""

from __future__ import annotations

from collections.abc import Callable

from dispatch import hookimpl

from .channel import PhoneChannel, PhoneSettings

__all__ = ["PhoneChannel", "PhoneSettings"]


@hookimpl
def dispatch_channels(register: Callable[[type], None]) -> None:
    register(PhoneChannel)
