"""Built-in letter channel: print-ready A4 PDFs (DIN 5008 window layout) and print batches."""

from __future__ import annotations

from collections.abc import Callable

from dispatch import hookimpl

from .channel import LetterChannel, LetterSettings

__all__ = ["LetterChannel", "LetterSettings"]


@hookimpl
def dispatch_channels(register: Callable[[type], None]) -> None:
    register(LetterChannel)
