"""SMS segment counting under GSM 03.38 (7-bit) and UCS-2.

A text that the GSM 7-bit alphabet can encode (with its extension table, where
``€``, ``[``, ``{``... take two septets) fits 160 septets in one segment and 153
per segment when split. Anything else goes as UCS-2: 70 characters in one
segment, 67 per segment when split (characters outside the BMP take two).
Encoding is done by the ``gsm0338`` codec.
"""

from __future__ import annotations

from dataclasses import dataclass

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

GSM_SINGLE, GSM_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67
_ESCAPE = 0x1B


@dataclass(frozen=True, slots=True)
class SegmentCount:
    """How an SMS text will travel: ``encoding`` (``GSM-7`` or ``UCS-2``), ``units`` and ``segments``."""

    encoding: str
    units: int
    segments: int

    def as_dict(self) -> dict[str, object]:
        return {"encoding": self.encoding, "units": self.units, "segments": self.segments}


def count_segments(text: str) -> SegmentCount:
    """Count the segments ``text`` needs."""
    try:
        septets = text.encode("gsm03.38")
    except UnicodeEncodeError:
        return _ucs2(text)
    units = len(septets)
    if units <= GSM_SINGLE:
        return SegmentCount("GSM-7", units, 1 if units else 0)
    return SegmentCount("GSM-7", units, _gsm_segments(septets))


def _ucs2(text: str) -> SegmentCount:
    """UCS-2 (UTF-16) units; a character outside the BMP is a pair that is never split."""
    widths = [2 if ord(c) > 0xFFFF else 1 for c in text]
    units = sum(widths)
    if units <= UCS2_SINGLE:
        return SegmentCount("UCS-2", units, 1 if units else 0)
    segments, used = 1, 0
    for width in widths:
        if used + width > UCS2_MULTI:
            segments, used = segments + 1, 0
        used += width
    return SegmentCount("UCS-2", units, segments)


def _gsm_segments(septets: bytes) -> int:
    """Split at 153 septets without cutting an escape sequence in two."""
    segments, used, i = 1, 0, 0
    while i < len(septets):
        width = 2 if septets[i] == _ESCAPE and i + 1 < len(septets) else 1
        if used + width > GSM_MULTI:
            segments += 1
            used = 0
        used += width
        i += width
    return segments


def non_gsm_characters(text: str) -> list[str]:
    """Characters that force UCS-2 (for template checks that explain why a text got long)."""
    out = []
    for char in dict.fromkeys(text):
        try:
            char.encode("gsm03.38")
        except UnicodeEncodeError:
            out.append(char)
    return out
