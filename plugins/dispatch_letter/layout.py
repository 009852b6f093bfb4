"""Typeset letters with Typst: one PDF per letter, and one PDF per print batch.

The page (A4, all measures in millimetres from the page's top-left corner) is made
for left-window envelopes — C5, C5/6 and DL:

- the window: 20 mm from the left, 45 mm from the top, 85 × 45 mm (DIN 5008 form B,
  DIN 680 windows). The return line sits at its top (from 46.5 mm) and the
  recipient's lines start at 52 mm, 4.4 mm apart, 5 mm in from the window's left and
  right edges, so that the first five lines also show in the higher Nordic C6/5 and
  C5 windows (39–74 mm and 44–79 mm from the top, 15 mm from the left) and stay
  visible when the sheet shifts in the envelope. Lines shrink to fit the window and
  are cut with an ellipsis below 8 pt; none leaves it;
- information block (place and date, customer number): 125 mm from the left, 50 mm down;
- folding marks at 105 and 210 mm, the hole mark at 148.5 mm;
- body from 98.46 mm, 25 mm left and 20 mm right margins, 25 mm bottom margin above
  the footer (company line, and the page number "1/2" on every page).

``typst.compile`` runs in Rust without the GIL, so letters are typeset on threads in
the worker process itself: no child processes (a spawned process pool re-runs a
user's ``__main__`` when their script has no main guard). A ``typst.Compiler``
cannot be used by two threads at once, so each thread has its own; they share
nothing but the read-only font files.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typst

from dispatch.errors import PermanentDeliveryError

logger = logging.getLogger(__name__)

FONTS = Path(__file__).parent / "fonts"
TEMPLATE = Path(__file__).parent / "letter.typ"

PAGE_WIDTH = 210.0
PAGE_HEIGHT = 297.0
ADDRESS_LEFT = 20.0
ADDRESS_TOP = 45.0
ADDRESS_WIDTH = 85.0
ADDRESS_HEIGHT = 45.0
ADDRESS_INSET = 5.0
#: The top of the return line, in the window's first few millimetres.
RETURN_TOP = 46.5
#: The recipient's first line (its top edge) and the height the lines may fill.
RECIPIENT_TOP = 52.0
RECIPIENT_HEIGHT = 26.4
ADDRESS_LINE = 4.4
#: Font sizes (pt): the recipient's address shrinks down to MIN before a line is cut.
ADDRESS_FONT, ADDRESS_FONT_MIN = 10.5, 8.0
SENDER_TOP = 12.0
INFO_LEFT = 125.0
INFO_TOP = 50.0
BODY_TOP = 98.46
LEFT_MARGIN = 25.0
RIGHT_MARGIN = 20.0
TOP_MARGIN = 20.0
#: The body ends this far above the bottom edge; the footer sits below it.
BOTTOM_MARGIN = 25.0
FOOTER_TOP = PAGE_HEIGHT - BOTTOM_MARGIN + 5.0
FOLD_MARKS = (105.0, 210.0)
HOLE_MARK = 148.5
QR_SIZE = 22.0

#: PDF/A-2u: archivable, every character mapped to Unicode; tagged for screen readers too.
PDF_STANDARD = "a-2u"

_GEOMETRY = json.dumps(
    {
        "left_margin": LEFT_MARGIN,
        "right_margin": RIGHT_MARGIN,
        "top_margin": TOP_MARGIN,
        "bottom_margin": BOTTOM_MARGIN,
        "sender_top": SENDER_TOP,
        "address_left": ADDRESS_LEFT,
        "address_width": ADDRESS_WIDTH,
        "address_inset": ADDRESS_INSET,
        "return_top": RETURN_TOP,
        "recipient_top": RECIPIENT_TOP,
        "recipient_height": RECIPIENT_HEIGHT,
        "address_line": ADDRESS_LINE,
        "address_font": ADDRESS_FONT,
        "address_font_min": ADDRESS_FONT_MIN,
        "info_left": INFO_LEFT,
        "info_top": INFO_TOP,
        "body_top": BODY_TOP,
        "fold_marks": list(FOLD_MARKS),
        "hole_mark": HOLE_MARK,
        "qr_size": QR_SIZE,
    }
)


class TypesetError(PermanentDeliveryError):
    """Typst could not set a letter: a fault in the layout or the markup writer (data is never code).

    Setting the same letter again would fail again, so it is not retried.
    """


@dataclass
class LetterHead:
    """What goes around the body: sender, window address, date line, footer, opt-out QR code."""

    title: str
    language: str
    sender_lines: list[str]
    return_line: str
    recipient_lines: list[str]
    info_lines: list[str]
    footer: str
    author: str = ""
    #: An SVG QR code and the caption printed beside it (the opt-out or preferences link).
    qr_svg: str | None = None
    qr_caption: list[str] = field(default_factory=list)
    qr_alt: str = "QR"


@dataclass(frozen=True)
class Typeset:
    """One letter ready to print, and what a batch needs to set it again."""

    pdf: bytes
    pages: int
    head: LetterHead
    body: str
    #: The PDF of the letters set together with this one (a part of the print batch), and the
    #: page (from 0) where this letter starts in it; None when the letter was set alone.
    part: bytes | None = None
    first_page: int = 0

    def without_pdf(self, *, keep_part: bool = True) -> Typeset:
        """The same letter without its PDF bytes (what a print batch keeps)."""
        part = self.part if keep_part else None
        return Typeset(pdf=b"", pages=self.pages, head=self.head, body=self.body, part=part, first_page=self.first_page)


_local = threading.local()
_fonts_lock = threading.Lock()
_fonts: list[Any] = []


def _compiler() -> typst.Compiler:
    """This thread's compiler (a compiler is not safe to share between threads)."""
    compiler = getattr(_local, "compiler", None)
    if compiler is None:
        with _fonts_lock:
            if not _fonts:  # the font index is read once per process
                _fonts.append(typst.Fonts(include_system_fonts=False, include_embedded_fonts=True, font_paths=[FONTS]))
        compiler = typst.Compiler(font_paths=_fonts[0], ignore_system_fonts=True)
        _local.compiler = compiler
    return compiler


def _source(bodies: list[str]) -> bytes:
    """The template followed by one ``#letter(i)[body][last block]`` per letter: the last block
    (after :data:`~dispatch_letter.markup.KEEP_WITH_QR`) goes on the page of the opt-out QR code."""
    from .markup import KEEP_WITH_QR

    calls = []
    for i, body in enumerate(bodies):
        main, mark, last = body.rpartition(KEEP_WITH_QR)
        if not mark:
            main, last = body, ""
        calls.append(f"#letter({i})[\n{main}\n][\n{last}\n]\n")
    return (_template() + "\n" + "".join(calls)).encode()


def _template() -> str:
    text = getattr(_local, "template", None)
    if text is None:
        text = _local.template = TEMPLATE.read_text(encoding="utf-8")
    return text


def _head_data(head: LetterHead, pages: int = 0, mark: str = "") -> dict[str, Any]:
    data = asdict(head)
    return {
        "title": data["title"],
        "author": data["author"],
        "lang": data["language"],
        "sender": data["sender_lines"],
        "return_line": data["return_line"],
        "recipient": data["recipient_lines"],
        "info": data["info_lines"],
        "footer": data["footer"],
        "qr": data["qr_svg"],
        "qr_caption": data["qr_caption"],
        "qr_alt": data["qr_alt"],
        "pages": pages,
        "mark": mark,
    }


#: Page label prefixes use no character Typst counts with (1, a, A, i, I, ...): "Lb-" for letter 0.
_MARK_DIGITS = str.maketrans("0123456789", "bcdefghjkl")


def _inputs(letters: list[tuple[LetterHead, str, int]], *, marks: bool = False) -> dict[str, str]:
    """``sys.inputs`` of the template: the letters' heads and the page geometry.

    With ``marks``, each letter's pages carry a page label prefix of their own ("Lb-", "Lc-",
    ...), from which :meth:`dispatch_letter.split.ChunkPdf.letter_pages` finds where each
    letter starts and how long it is.
    """
    data = [
        _head_data(head, pages, f"L{str(i).translate(_MARK_DIGITS)}-" if marks else "")
        for i, (head, _, pages) in enumerate(letters)
    ]
    return {"letters": json.dumps(data, ensure_ascii=False), "geometry": _GEOMETRY}


def document(letters: list[tuple[LetterHead, str, int]]) -> tuple[bytes, dict[str, str]]:
    """The Typst document that sets ``letters`` (head, body markup, page count): its source and
    ``sys_inputs``, for ``typst.compile`` with the fonts in :data:`FONTS` (what the benchmark's plain loop compiles)."""
    return _source([body for _, body, _ in letters]), _inputs(letters)


def _stamp(timestamp: datetime | None) -> datetime:
    return (timestamp or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)


def _compile(
    letters: list[tuple[LetterHead, str, int]],
    *,
    timestamp: datetime | None,
    standard: str | None,
    tagged: bool | None = None,
    plain_if_needed: bool = True,
    marks: bool = False,
) -> bytes:
    """One PDF holding ``letters`` (head, body markup, known page count or 0)."""
    source = _source([body for _, body, _ in letters])
    try:
        return _compiler().compile(
            source,
            sys_inputs=_inputs(letters, marks=marks),
            pdf_standards=[standard] if standard else [],
            timestamp=_stamp(timestamp),
            # A letter's own PDF is tagged (a structure tree: headings, paragraphs, tables, the QR code's
            # alt text) so that a screen reader can read it where the PDF is read on a screen (a digital
            # mailbox, the archive). Print batches are not: tags cost ~15 % more time and paper needs none.
            # ("a-2a" and "a-3a" always require one.)
            pdf_tags=bool(tagged) or bool(standard and standard.endswith("a")),
        )
    except typst.TypstError as exc:
        if standard and "PDF/A" in exc.message and plain_if_needed:
            # A character no font has (PDF/A forbids the blank box): print the letter as plain PDF
            # rather than not at all.
            logger.warning("letter %s is plain PDF, not %s: %s", letters[0][0].title, standard, exc.message)
            return _compile(letters, timestamp=timestamp, standard=None, tagged=tagged)
        raise TypesetError(f"typst: {exc.message}") from None


def render_letter(
    head: LetterHead,
    body: str,
    *,
    timestamp: datetime | None = None,
    standard: str | None = PDF_STANDARD,
    tagged: bool = True,
    pages: int = 1,
) -> Typeset:
    """Typeset one letter; ``body`` is Typst markup from :func:`dispatch_letter.markup.html_to_typst`.

    The footer prints "page/pages". Asking Typst for the page count inside the document
    would lay every letter out twice, so the letter is set for ``pages`` pages (one by
    default: most letters have one) and set again, with the count it turned out to have,
    only when that was wrong.
    """
    while True:
        pdf = _compile([(head, body, pages)], timestamp=timestamp, standard=standard, tagged=tagged)
        actual = page_count(pdf)
        if actual == pages:
            return Typeset(pdf=pdf, pages=pages, head=head, body=body)
        pages = actual


def render_letters(
    letters: list[tuple[LetterHead, str]],
    *,
    timestamp: datetime | None = None,
    standard: str | None = PDF_STANDARD,
    tagged: bool = True,
) -> list[Typeset | TypesetError]:
    """Typeset several letters in one Typst compile and cut each letter's PDF out of it.

    One compile of many letters costs about half as much per letter as one compile per
    letter (the template, the document set-up and the fonts are done once). Each letter's
    PDF is cut out by :mod:`dispatch_letter.split` (its pages, tags, bookmarks and PDF/A
    metadata); the whole PDF becomes a part of the print batch (:attr:`Typeset.part`).

    Letters are set for one page each first (most are); the page labels tell each letter's
    length, and the longer ones are set once more, together, with their page count in the
    footer ("1/2"). When one letter's markup fails, or one needs a glyph no font has (PDF/A
    then falls back to plain PDF for that letter only), the letters are set one by one with
    :func:`render_letter`. A letter that cannot be set at all comes back as its
    :class:`TypesetError`; the others are unaffected.
    """
    results: list[Typeset | TypesetError | None] = [None] * len(letters)
    todo = list(range(len(letters)))
    pages = [1] * len(letters)
    for _ in range(2):  # the second round: the letters whose page count was not 1
        if len(todo) <= 1:
            break
        options = {"timestamp": timestamp, "standard": standard, "tagged": tagged}
        todo, failed = _set_together(letters, todo, pages, results, **options)
        if failed:
            break
    for i in todo:  # alone: one letter, or letters that could not be set together
        head, body = letters[i]
        try:
            results[i] = render_letter(
                head, body, timestamp=timestamp, standard=standard, tagged=tagged, pages=pages[i]
            )
        except TypesetError as exc:
            results[i] = exc
    return [r for r in results if r is not None]


def _set_together(
    letters: list[tuple[LetterHead, str]],
    todo: list[int],
    pages: list[int],
    results: list[Typeset | TypesetError | None],
    **options: Any,
) -> tuple[list[int], bool]:
    """Set ``letters[i]`` for ``i in todo`` in one compile, each for ``pages[i]`` pages; fill ``results``
    for those whose page count was right, learn the others' (in ``pages``) and return them, with
    whether the compile failed (then every letter of ``todo`` is returned)."""
    from .split import ChunkPdf, SplitError

    chosen = [(*letters[i], pages[i]) for i in todo]
    try:
        pdf = _compile(chosen, plain_if_needed=False, marks=True, **options)
        chunk = ChunkPdf(pdf)
        runs = chunk.letter_pages()
        if len(runs) != len(todo):
            raise SplitError(f"{len(runs)} letters found, {len(todo)} set")
        again = []
        for i, (first, count) in zip(todo, runs, strict=True):
            head, body = letters[i]
            if count != pages[i]:
                pages[i] = count
                again.append(i)
                continue
            cut = chunk.letter(first, count, title=head.title, lang=head.language)
            results[i] = Typeset(pdf=cut, pages=count, head=head, body=body, part=pdf, first_page=first)
        return again, False
    except (TypesetError, SplitError) as exc:
        logger.info("%d letters are set one by one: %s", len(todo), exc)
        return todo, True


def render_letter_png(
    head: LetterHead, body: str, *, ppi: float = 96.0, timestamp: datetime | None = None
) -> list[bytes]:
    """The letter's pages as PNG images, numbered as printed (for ``dispatch preview``)."""
    pages = 1
    while True:
        source = _source([body])
        try:
            images = _compiler().compile(
                source, sys_inputs=_inputs([(head, body, pages)]), format="png", ppi=ppi, timestamp=_stamp(timestamp)
            )
        except typst.TypstError as exc:
            raise TypesetError(f"typst: {exc.message}") from None
        images = images if isinstance(images, list) else [images]
        if len(images) == pages:
            return images
        pages = len(images)


def render_batch(
    letters: list[Typeset], *, timestamp: datetime | None = None, standard: str | None = PDF_STANDARD
) -> bytes:
    """One PDF with ``letters``, each starting on a new page and numbered on its own.

    Typst holds a whole document in memory while it sets it (about 1 MB a letter), so a
    large print batch is set in parts of :data:`BATCH_PART` letters (see :func:`join_pieces`).
    """
    return _compile([(t.head, t.body, t.pages) for t in letters], timestamp=timestamp, standard=standard)


#: Letters per part of a print batch: a part is set in one go (memory grows with it).
BATCH_PART = 100


def join_pieces(pieces: list[tuple[bytes, int, int]], target: Path) -> None:
    """Write a print batch: ``(pdf, first page, pages)`` pieces, in order, as one PDF.

    Neighbouring pieces of one PDF are taken as one. The pages are joined by
    :func:`dispatch_letter.split.join` (fonts and all, the first PDF's PDF/A metadata and
    output intent; no tags, no page labels), or — for a PDF laid out otherwise — by pypdf,
    whose joined file is a plain PDF.
    """
    from .split import ChunkPdf, SplitError, join

    runs: list[list[Any]] = []
    for pdf, first, count in pieces:
        if runs and runs[-1][0] is pdf and runs[-1][1] + runs[-1][2] == first:
            runs[-1][2] += count
        else:
            runs.append([pdf, first, count])
    tmp = target.with_suffix(f"{target.suffix}.{threading.get_ident()}.tmp")
    try:
        parsed: dict[int, ChunkPdf] = {}
        for pdf, _, _ in runs:
            if id(pdf) not in parsed:
                parsed[id(pdf)] = ChunkPdf(pdf)
        tmp.write_bytes(join([(parsed[id(pdf)], first, count) for pdf, first, count in runs]))
    except SplitError as exc:
        import io

        from pypdf import PdfReader, PdfWriter

        logger.info("the print batch is joined with pypdf: %s", exc)
        writer = PdfWriter()
        readers: dict[int, Any] = {}
        for pdf, first, count in runs:
            reader = readers.get(id(pdf))
            if reader is None:
                reader = readers[id(pdf)] = PdfReader(io.BytesIO(pdf))
            writer.append(reader, pages=(first, first + count), import_outline=False)
        with open(tmp, "wb") as handle:
            writer.write(handle)
    tmp.replace(target)


_COUNT = re.compile(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)|/Count\s+(\d+)[^>]*?/Type\s*/Pages\b")


def page_count(pdf: bytes) -> int:
    """The number of pages of a PDF Typst wrote (its page tree's root holds the count)."""
    counts = [int(a or b) for a, b in _COUNT.findall(pdf)]
    if counts:
        return max(counts)
    import io  # pragma: no cover - a Typst that compresses its page tree

    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(pdf)).pages)
