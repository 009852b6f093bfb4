"""A4 letter layout after DIN 5008 form B, for C5/DL window envelopes.

All measures in millimetres from the top-left corner of the page:

- address field (the envelope window): 20 mm from the left, 45 mm from the top,
  85 × 45 mm. Its first 17.7 mm hold the return-address line (just above the
  recipient), the recipient's address starts at 62.7 mm; both are set 5 mm in
  from the window's edge so that they stay visible when the sheet shifts in the
  envelope, and both are shrunk to fit the window (never clipped by it);
- information block (date and place, customer number): 125 mm from the left, 50 mm down;
- folding marks at 105 and 210 mm, the hole mark at 148.5 mm;
- body from 98.46 mm, 25 mm left and 20 mm right margins; it breaks onto the next
  page 25 mm above the bottom edge, above the footer (company line and the page
  number "1/2" on every page).
"""

from __future__ import annotations

import copy
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from fontTools import ttLib
from fpdf import FPDF
from fpdf.errors import FPDFException
from fpdf.fonts import SubsetMap, TTFFont

FONTS = Path(__file__).parent / "fonts"

PAGE_WIDTH = 210.0
PAGE_HEIGHT = 297.0
ADDRESS_LEFT = 20.0
ADDRESS_TOP = 45.0
ADDRESS_WIDTH = 85.0
ADDRESS_HEIGHT = 45.0
ADDRESS_INSET = 5.0
RETURN_LINE_HEIGHT = 17.7
INFO_LEFT = 125.0
INFO_TOP = 50.0
BODY_TOP = 98.46
LEFT_MARGIN = 25.0
RIGHT_MARGIN = 20.0
TOP_MARGIN = 20.0
#: The body breaks onto a new page this far above the bottom edge.
BOTTOM_MARGIN = 25.0
#: The footer's top edge, below the body's lowest line.
FOOTER_TOP = PAGE_HEIGHT - 15.0
PAGE_NUMBER_WIDTH = 16.0
FOLD_MARKS = (105.0, 210.0)
HOLE_MARK = 148.5
ADDRESS_LINE = 4.6
#: Font sizes (pt): the recipient's address shrinks down to MIN before a line is cut.
ADDRESS_FONT, ADDRESS_FONT_MIN = 10.5, 8.0
RETURN_FONT, RETURN_FONT_MIN = 6.5, 5.0


#: DejaVu Sans cut down to the scripts letters need (scripts/build_letter_fonts.py).
FONT_FILES = {
    "": "DejaVuSans-Letter.ttf",
    "B": "DejaVuSans-Letter-Bold.ttf",
    "I": "DejaVuSans-Letter-Oblique.ttf",
    "BI": "DejaVuSans-Letter-BoldOblique.ttf",
}
_ITALIC = re.compile(r"<(i|em|cite|var|dfn|address)\b", re.IGNORECASE)
_parsed_fonts: dict[tuple[str, str], TTFFont] = {}
_parsed_lock = threading.Lock()


def add_cached_font(pdf: FPDF, family: str, style: str, path: Path) -> None:
    """``pdf.add_font`` without re-reading the TrueType file for every letter.

    fpdf2 parses the whole font (metrics, character map) on each ``add_font``: about
    50 ms per font, four fonts per letter. The parsed metrics are read-only and are
    shared here; each document still gets its own lazily opened font file and its
    own glyph subset, because fpdf2 subsets the font object in place when it writes
    the PDF. If fpdf2's internals ever change, this falls back to a plain ``add_font``.
    """
    key = (style, str(path))
    with _parsed_lock:
        parsed = _parsed_fonts.get(key)
    if parsed is None:
        pdf.add_font(family, style, str(path))
        fontkey = f"{family.lower()}{style}"
        snapshot = copy.copy(pdf.fonts[fontkey])
        snapshot.ttfont = None  # the document's own copy is subset in place; never share it
        with _parsed_lock:
            _parsed_fonts[key] = snapshot
        return
    try:
        font = copy.copy(parsed)
        font.i = len(pdf.fonts) + 1
        font.ttfont = ttLib.TTFont(path, recalcTimestamp=False, lazy=True)
        font.subset = SubsetMap(font)
        font.missing_glyphs = []
        font.biggest_size_pt = 0
        font._hbfont = None
        font.color_font = None
        pdf.fonts[font.fontkey] = font
    except (AttributeError, TypeError):  # pragma: no cover - a changed fpdf2
        pdf.add_font(family, style, str(path))


@dataclass(frozen=True)
class LetterHead:
    """What goes around the body: sender, recipient, date line and reference."""

    sender_lines: list[str]
    return_line: str
    recipient_lines: list[str]
    info_lines: list[str]
    footer: str


class LetterPDF(FPDF):
    """FPDF with the letter's footer (company line and page number) and fonts."""

    def __init__(self, footer: str, styles: tuple[str, ...] = tuple(FONT_FILES)) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self._footer_text = footer
        for style in styles:
            add_cached_font(self, "dejavu", style, FONTS / FONT_FILES[style])
        self.set_margins(LEFT_MARGIN, TOP_MARGIN, RIGHT_MARGIN)
        self.set_auto_page_break(auto=True, margin=BOTTOM_MARGIN)
        self.alias_nb_pages("{nb}")

    def footer(self) -> None:
        """Company line on the left, "page/pages" on the right; they never overlap."""
        text_width = PAGE_WIDTH - LEFT_MARGIN - RIGHT_MARGIN - PAGE_NUMBER_WIDTH - 4
        self.set_text_color(90, 90, 90)
        self.set_xy(LEFT_MARGIN, FOOTER_TOP)
        fit_font(self, self._footer_text, text_width, 7, 5)
        self.cell(text_width, 4, clip(self, self._footer_text, text_width))
        self.set_font("dejavu", "", 8)
        self.set_xy(PAGE_WIDTH - RIGHT_MARGIN - PAGE_NUMBER_WIDTH, FOOTER_TOP)
        self.cell(PAGE_NUMBER_WIDTH, 4, f"{self.page_no()}/{{nb}}", align="R")
        self.set_text_color(0, 0, 0)


def fit_font(pdf: FPDF, text: str, width: float, size: float, smallest: float, style: str = "") -> None:
    """Set the largest font size from ``size`` down to ``smallest`` at which ``text`` fits ``width``."""
    pdf.set_font("dejavu", style, size)
    while size > smallest and pdf.get_string_width(text) > width:
        size = max(smallest, size - 0.25)
        pdf.set_font_size(size)


def clip(pdf: FPDF, text: str, width: float) -> str:
    """``text`` cut (with an ellipsis) to fit ``width`` at the current font: it must not leave the window."""
    if pdf.get_string_width(text) <= width:
        return text
    while text and pdf.get_string_width(text + "…") > width:
        text = text[:-1]
    return text.rstrip() + "…"


def render_letter(head: LetterHead, body_html: str) -> tuple[bytes, int]:
    """The PDF bytes and page count for one letter.

    Every embedded font costs time when the PDF is written, so the italic faces are
    added only when the body uses italics (and the letter is drawn again with all
    four faces if fpdf2 asks for one that is missing).
    """
    styles = tuple(FONT_FILES) if _ITALIC.search(body_html) else ("", "B")
    try:
        return _render(head, body_html, styles)
    except FPDFException as exc:
        if "undefined font" not in str(exc).lower() or len(styles) == len(FONT_FILES):
            raise
        return _render(head, body_html, tuple(FONT_FILES))


def _render(head: LetterHead, body_html: str, styles: tuple[str, ...]) -> tuple[bytes, int]:
    pdf = LetterPDF(head.footer, styles)
    pdf.set_title(head.recipient_lines[0] if head.recipient_lines else "letter")
    pdf.set_creator("dispatch")
    pdf.add_page()
    _marks(pdf)
    _sender(pdf, head.sender_lines)
    _address_field(pdf, head.return_line, head.recipient_lines)
    _information(pdf, head.info_lines)
    pdf.set_xy(LEFT_MARGIN, BODY_TOP)
    pdf.set_font("dejavu", "", 10)
    pdf.write_html(body_html, font_family="dejavu", tag_styles=None)
    return bytes(pdf.output()), pdf.pages_count


def _sender(pdf: FPDF, lines: list[str]) -> None:
    width = PAGE_WIDTH - LEFT_MARGIN - RIGHT_MARGIN
    pdf.set_xy(LEFT_MARGIN, 12)
    for i, line in enumerate(lines[:5]):
        if i == 0:
            fit_font(pdf, line, width, 10, 7, "B")
            pdf.cell(width, 5, clip(pdf, line, width), new_x="LMARGIN", new_y="NEXT")
        else:
            fit_font(pdf, line, width, 8, 6)
            pdf.cell(width, 3.8, clip(pdf, line, width), new_x="LMARGIN", new_y="NEXT")


def _address_field(pdf: FPDF, return_line: str, recipient_lines: list[str]) -> None:
    left = ADDRESS_LEFT + ADDRESS_INSET
    width = ADDRESS_WIDTH - 2 * ADDRESS_INSET
    # Return address: one small line at the bottom of the 17.7 mm zone, above the recipient.
    if return_line:
        fit_font(pdf, return_line, width, RETURN_FONT, RETURN_FONT_MIN)
        pdf.set_xy(left, ADDRESS_TOP + RETURN_LINE_HEIGHT - 4)
        pdf.cell(width, 3, clip(pdf, return_line, width))
    # Recipient: from 62.7 mm. One font size for the block (the widest line decides);
    # more lines than the zone holds at 4.6 mm get tighter spacing, none is dropped.
    zone = ADDRESS_HEIGHT - RETURN_LINE_HEIGHT
    step = min(ADDRESS_LINE, zone / max(1, len(recipient_lines)))
    size = ADDRESS_FONT
    for line in recipient_lines:
        fit_font(pdf, line, width, size, ADDRESS_FONT_MIN)
        size = pdf.font_size_pt
    pdf.set_font("dejavu", "", size)
    y = ADDRESS_TOP + RETURN_LINE_HEIGHT
    for line in recipient_lines:
        pdf.set_xy(left, y)
        pdf.cell(width, step, clip(pdf, line, width))
        y += step


def _information(pdf: FPDF, lines: list[str]) -> None:
    width = PAGE_WIDTH - RIGHT_MARGIN - INFO_LEFT
    y = INFO_TOP
    for line in lines:
        fit_font(pdf, line, width, 9, 7)
        pdf.set_xy(INFO_LEFT, y)
        pdf.cell(width, ADDRESS_LINE, clip(pdf, line, width))
        y += ADDRESS_LINE


def _marks(pdf: FPDF) -> None:
    pdf.set_draw_color(120, 120, 120)
    pdf.set_line_width(0.2)
    for y in FOLD_MARKS:
        pdf.line(3, y, 8, y)
    pdf.line(3, HOLE_MARK, 10, HOLE_MARK)
    pdf.set_draw_color(0, 0, 0)
