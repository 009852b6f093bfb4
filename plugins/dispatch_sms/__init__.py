"""Built-in SMS channel: Twilio, or JSON lines in the outbox; segment counts under GSM-7/UCS-2."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dispatch import hookimpl

from .channel import SmsChannel, SmsSettings

if TYPE_CHECKING:
    from dispatch.host import Host

__all__ = ["SmsChannel", "SmsSettings"]


@hookimpl
def dispatch_channels(register: Callable[[type], None]) -> None:
    register(SmsChannel)


@hookimpl
def dispatch_web_routes(register: Callable[..., Any], dispatcher: Host) -> None:
    """Twilio's status callback and inbound replies (STOP/START), with signature checks."""
    from .web import register_routes  # the web extra (Starlette) is only needed by `dispatch serve`

    register_routes(register, dispatcher)
