"""Built-in digital mailboxes (SPEC §6): Kivra (SE, FI), Digipost (NO) and OmaPosti (FI), one module each.

Each provider is a :class:`dispatch.mailboxes.MailboxChannel`: a route of the letter
channel, used when ``[channels.letter] digital_first`` names it and its own
``[channels.<name>]`` section gives its settings (none: never used).
"""

from __future__ import annotations

from collections.abc import Callable

from dispatch import hookimpl

from .digipost import DigipostChannel, DigipostSettings
from .kivra import KivraChannel, KivraSettings
from .omaposti import OmaPostiChannel, OmaPostiSettings

__all__ = [
    "DigipostChannel",
    "DigipostSettings",
    "KivraChannel",
    "KivraSettings",
    "OmaPostiChannel",
    "OmaPostiSettings",
]


@hookimpl
def dispatch_channels(register: Callable[[type], None]) -> None:
    register(KivraChannel)
    register(DigipostChannel)
    register(OmaPostiChannel)
