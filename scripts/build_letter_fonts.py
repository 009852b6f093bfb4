"""Build the letter channel's fonts: DejaVu Sans cut down to the scripts letters need.

    .venv/bin/python scripts/build_letter_fonts.py /usr/share/fonts/truetype/dejavu

Keeps Latin (with Extended-A/B and ʒ for the Sámi languages, Baltic, Polish... names),
Greek, Cyrillic, punctuation, currency and common symbols, and the OpenType features
Typst uses for good text: kerning, mark positioning and glyph composition (no
ligatures, so text copied from a letter reads as typed). A small font is embedded and
subset quickly in every letter.
DejaVu's licence (LICENSE-DejaVu.txt) allows modified copies whose names do not
contain "Bitstream" or "Vera".
"""

from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset

RANGES = (
    "U+0020-007E,U+00A0-024F,U+0259,U+0292,U+02B0-02FF,U+0370-03FF,U+0400-052F,U+1E00-1EFF,U+2000-206F,"
    "U+20A0-20CF,U+2100-214F,U+2190-21FF,U+2212,U+2215,U+2219,U+221E,U+2248,U+2260,U+2264-2265,U+25CF"
)
FONTS = {
    "DejaVuSans.ttf": "DejaVuSans-Letter.ttf",
    "DejaVuSans-Bold.ttf": "DejaVuSans-Letter-Bold.ttf",
    "DejaVuSans-Oblique.ttf": "DejaVuSans-Letter-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf": "DejaVuSans-Letter-BoldOblique.ttf",
}
TARGET = Path(__file__).resolve().parents[1] / "plugins" / "dispatch_letter" / "fonts"


def main(source: Path) -> None:
    for original, built in FONTS.items():
        options = subset.Options()
        options.layout_features = ["kern", "mark", "mkmk", "ccmp", "locl"]
        options.drop_tables += ["FFTM", "MATH"]
        options.name_IDs = ["*"]
        options.notdef_outline = True
        font = subset.load_font(str(source / original), options)
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=subset.parse_unicodes(RANGES))
        subsetter.subset(font)
        subset.save_font(font, str(TARGET / built), options)
        print(f"{built}: {(TARGET / built).stat().st_size // 1024} KB")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/fonts/truetype/dejavu"))
