"""QR codes for letters: the opt-out or preferences link, as an SVG that Typst draws as vectors."""

from __future__ import annotations

import io
from functools import lru_cache

import segno


@lru_cache(maxsize=256)
def qr_svg(url: str) -> str:
    """An SVG QR code (error correction M, the standard 4-module quiet zone) for ``url``."""
    code = segno.make(url, error="m", micro=False)
    out = io.BytesIO()
    code.save(out, kind="svg", xmldecl=False, svgns=True, nl=False, scale=1, border=4)
    return out.getvalue().decode("ascii")
