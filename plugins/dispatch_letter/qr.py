"""QR codes for letters: the opt-out or preferences link, as an SVG that Typst draws as vectors.

zxing-cpp makes the code (its writer is zint, in C): error correction M, the smallest
version that holds the link, the data mask chosen by ISO/IEC 18004's penalty scoring, and
the standard quiet zone of 4 modules. A pure-Python encoder spends ~4 ms per code,
most of it trying the eight masks — more than Typst needs to set the whole letter.
"""

from __future__ import annotations

import re
from functools import lru_cache

import zxingcpp

#: The XML declaration, the DOCTYPE and the description zint writes before the drawing.
_PREAMBLE = re.compile(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>|<desc>.*?</desc>", re.S)


@lru_cache(maxsize=256)
def qr_svg(url: str) -> str:
    """An SVG QR code (error correction M, a 4-module quiet zone, one module = 1 unit) for ``url``."""
    code = zxingcpp.create_barcode(url, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    svg = zxingcpp.write_barcode_to_svg(code, scale=1, add_hrt=False, add_quiet_zones=True)
    return _PREAMBLE.sub("", svg).strip()
