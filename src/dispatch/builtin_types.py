"""The built-in message types of SPEC §2, registered like any plugin's."""

from __future__ import annotations

from collections.abc import Callable

from .hookspecs import hookimpl
from .messages import BUILTIN_TYPES, MessageType


@hookimpl
def dispatch_message_types(register: Callable[[MessageType], None]) -> None:
    for message_type in BUILTIN_TYPES:
        register(message_type)
