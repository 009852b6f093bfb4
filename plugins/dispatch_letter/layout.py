"""A4 letter layout after DIN 5008 form B, for C5/DL window envelopes.

All measures in millimetres from the top-left corner of the page:

- address field: 20 mm from the left, 45 mm from the top, 85 × 45 mm; its first
  17.7 mm hold the return address line, the recipient's address starts at 62.7 mm;
- information block (date, place, customer number): 125 mm from the left, 50 mm down;
- folding marks at 105 and 210 mm, the hole mark at 148.5 mm;
- body from 98.46 mm, 25 mm left and 20 mm right margins; page numbers "1/2"
  bottom right.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fpdf import FPDF

FONTS = Path(__file__).parent / "fonts"

ADDRESS_LEFT = 20.0
ADDRESS_TOP = 45.0
ADDRESS_WIDTH = 85.0
ADDRESS_HEIGHT = 45.0
RETURN_LINE_HEIGHT = 17.7
INFO_LEFT = 125.0
INFO_TOP = 50.0
BODY_TOP = 98.46
LEFT_MARGIN = 25.0
RIGHT_MARGIN = 20.0
FOLD_MARKS = (105.0, 210.0)
HOLE_MARK = 148.5


@dataclass(frozen=True)
class LetterHead:
    """What goes around the body: sender, recipient, date line and reference."""

    sender_lines: list[str]
    return_line: str
    recipient_lines: list[str]
    info_lines: list[str]
    footer: str


class LetterPDF(FPDF):
    """FPDF with the letter's footer (page numbers) and fonts."""

    def __init__(self, footer: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self._footer_text = footer
        self.add_font("dejavu", "", str(FONTS / "DejaVuSans.ttf"))
        self.add_font("dejavu", "B", str(FONTS / "DejaVuSans-Bold.ttf"))
        self.add_font("dejavu", "I", str(FONTS / "DejaVuSans-Oblique.ttf"))
        self.add_font("dejavu", "BI", str(FONTS / "DejaVuSans-BoldOblique.ttf"))
        self.set_margins(LEFT_MARGIN, 20, RIGHT_MARGIN)
        self.set_auto_page_break(auto=True, margin=25)
        self.alias_nb_pages("{nb}")

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("dejavu", "", 7)
        self.set_text_color(90, 90, 90)
        self.cell(0, 4, self._footer_text, align="L")
        self.set_xy(-RIGHT_MARGIN - 20, -15)
        self.cell(20, 4, f"{self.page_no()}/{{nb}}", align="R")
        self.set_text_color(0, 0, 0)


def render_letter(head: LetterHead, body_html: str) -> tuple[bytes, int]:
    """The PDF bytes and page count for one letter."""
    pdf = LetterPDF(head.footer)
    pdf.set_title(head.recipient_lines[0] if head.recipient_lines else "letter")
    pdf.set_creator("dispatch")
    pdf.add_page()
    _marks(pdf)
    pdf.set_font("dejavu", "B", 10)
    pdf.set_xy(LEFT_MARGIN, 12)
    for line in head.sender_lines[:1]:
        pdf.cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("dejavu", "", 8)
    for line in head.sender_lines[1:]:
        pdf.cell(0, 3.8, line, new_x="LMARGIN", new_y="NEXT")
    # Return address: one small line at the top of the address field.
    pdf.set_font("dejavu", "", 6.5)
    pdf.set_xy(ADDRESS_LEFT + 5, ADDRESS_TOP + RETURN_LINE_HEIGHT - 5)
    pdf.cell(ADDRESS_WIDTH - 5, 3, head.return_line[:90])
    # Recipient address: from 62.7 mm, 5 mm in from the field's edge.
    pdf.set_font("dejavu", "", 10.5)
    y = ADDRESS_TOP + RETURN_LINE_HEIGHT
    for line in head.recipient_lines:
        pdf.set_xy(ADDRESS_LEFT + 5, y)
        pdf.cell(ADDRESS_WIDTH - 5, 4.6, line)
        y += 4.6
    # Information block: date and place, reference.
    pdf.set_font("dejavu", "", 9)
    y = INFO_TOP
    for line in head.info_lines:
        pdf.set_xy(INFO_LEFT, y)
        pdf.cell(75, 4.6, line)
        y += 4.6
    pdf.set_xy(LEFT_MARGIN, BODY_TOP)
    pdf.set_font("dejavu", "", 10)
    pdf.write_html(body_html, font_family="dejavu", tag_styles=None)
    return bytes(pdf.output()), pdf.pages_count


def _marks(pdf: FPDF) -> None:
    pdf.set_draw_color(120, 120, 120)
    pdf.set_line_width(0.2)
    for y in FOLD_MARKS:
        pdf.line(3, y, 8, y)
    pdf.line(3, HOLE_MARK, 10, HOLE_MARK)
    pdf.set_draw_color(0, 0, 0)
