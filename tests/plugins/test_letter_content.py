"""The shipped letters as printed (issue 20): text read back from the PDFs.

No page carries only the opt-out QR code, no URL is broken inside a word, and the sender's
details are in the letter's language (Swedish place names for Swedish-speaking Finns) with the
business id labelled (Y-tunnus, FO-nummer, Org.nr).
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import pytest
from pypdf import PdfReader

from dispatch.models import OutgoingMessage
from dispatch.samples import sample_data, sample_recipient
from dispatch_letter.layout import render_letter

NOW = datetime(2027, 1, 11, 10, 0, tzinfo=UTC)
READERS = [("fi", "FI"), ("sv", "FI"), ("sv", "SE"), ("nb", "NO"), ("en", "FI"), ("en", "SE"), ("en", "NO")]
_URL = re.compile(r"https?://[^\s<>\"']+")


def printed(d, message_type, language, country, kind="household", **changes):
    """(PDF pages' text, the letter's head) for a shipped template, set as the letter channel sets it."""
    recipient = {**sample_recipient(language, country), "language": language, "kind": kind}
    data = {**sample_data(message_type, country, language), **changes}
    parts = d.preview(message_type, recipient, data, channel="letter", language=language, now=NOW)
    found = re.search(r'https://[^"\s<]+/u/[^"\s<]+', parts["html"])
    message = OutgoingMessage(
        id="01JTESTLETTER0000000000000",
        message_type=message_type,
        category="statutory",
        channel="letter",
        language=language,
        locale="sv_FI" if (language, country) == ("sv", "FI") else f"{language}_{country}",
        country=country,
        recipient_id=recipient["id"],
        address=recipient["address"],
        parts=parts,
        unsubscribe_url=found.group(0) if found else None,
    )
    channel = d.channels["letter"]
    head = channel.head(message, NOW)
    pdf = render_letter(head, channel.body(message)).pdf
    pages = [page.extract_text().replace("\u200b", "") for page in PdfReader(io.BytesIO(pdf)).pages]
    return pages, head, parts["html"]


def url_pattern(url: str) -> re.Pattern[str]:
    """``url`` as printed: a line break allowed only where a URL may wrap."""
    out = []
    for i, char in enumerate(url):
        out.append(re.escape(char))
        nxt = url[i + 1] if i + 1 < len(url) else ""
        # After "//" or a single "/", after a hyphen, or before ".", "?", "&", "=", "#", "@": the places
        # the Chicago Manual of Style (14.18) and Unicode line breaking (UAX #14) allow; never inside a word.
        after = char == "-" or (char == "/" and nxt != "/")
        if nxt and (after or nxt in ".?&=#@"):
            out.append(r"\s?")
    return re.compile("".join(out))


CASES = [
    (message_type, language, country, kind)
    for message_type in ("marketing", "renewal_offer", "contract_confirmation")
    for language, country in READERS
    for kind in ("household", "business")
]


@pytest.mark.parametrize(("message_type", "language", "country", "kind"), CASES)
def test_no_page_carries_only_the_qr_code_and_no_url_breaks_inside_a_word(
    dispatcher, message_type, language, country, kind
):
    changes = {"product": "Tuuli 24"} if message_type == "renewal_offer" else {}  # another product: opt-out QR
    pages, head, html = printed(dispatcher, message_type, language, country, kind, **changes)
    caption = {line.strip() for line in head.qr_caption if line.strip()} if head.qr_svg else set()
    for number, text in enumerate(pages[1:], start=2):
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        body = [line for line in lines if line not in caption and not re.fullmatch(r"\d+/\d+", line)]
        body = [line for line in body if not head.footer.startswith(line) and line not in head.footer]
        assert body, f"page {number} carries only the QR code: {lines}"
    whole = "\n".join(pages)
    for url in {u.rstrip(".,;:)") for u in _URL.findall(re.sub(r"<[^>]+>", " ", html))}:
        if "/u/" in url or "/preferences/" in url:
            continue  # the long signed opt-out link is printed as a QR code, not as text
        assert url_pattern(url).search(whole), f"{url} is broken inside a word or missing"


def test_the_old_breaking_would_fail_the_url_check():
    assert not url_pattern("https://energia.example.fi/sopimusehdot").search(
        "https://energia.example.fi/s\nopimusehdot"
    )
    assert url_pattern("https://energia.example.fi/sopimusehdot").search("https://energia.example.fi/\nsopimusehdot")


@pytest.mark.parametrize(
    ("language", "country", "present", "absent"),
    [
        (
            "sv",
            "FI",
            ["Elvägen 1", "Helsingfors", "FO-nummer 1234567-8", "kundservice@example.fi"],
            ["Sähkötie", "asiakaspalvelu@"],
        ),
        ("fi", "FI", ["Sähkötie 1", "Helsinki", "Y-tunnus 1234567-8", "asiakaspalvelu@example.fi"], ["Helsingfors"]),
        ("sv", "SE", ["Kraftgatan 3", "Org.nr 556677-8899"], ["Sähkötie"]),
        ("nb", "NO", ["Strømveien 7", "Org.nr. 912 345 678"], ["Sähkötie"]),
    ],
)
def test_the_sender_is_given_in_the_letters_language_with_the_business_id_labelled(
    dispatcher, language, country, present, absent
):
    pages, _head, _ = printed(dispatcher, "price_change", language, country)
    first = pages[0]
    for text in present:
        assert text in first, text
    for text in absent:
        assert text not in "\n".join(pages), text
    assert "Stockholm" not in first or country == "SE"


def test_a_letters_pdf_is_tagged_for_screen_readers(dispatcher):
    recipient = {**sample_recipient("fi", "FI"), "language": "fi"}
    parts = dispatcher.preview("price_change", recipient, sample_data("price_change"), channel="letter", now=NOW)
    message = OutgoingMessage(
        id="01JTESTLETTER0000000000001",
        message_type="price_change",
        category="statutory",
        channel="letter",
        language="fi",
        locale="fi_FI",
        country="FI",
        recipient_id=recipient["id"],
        address=recipient["address"],
        parts=parts,
    )
    channel = dispatcher.channels["letter"]
    head, body = channel.head(message, NOW), channel.body(message)
    for tagged in (True, False):
        root = PdfReader(io.BytesIO(render_letter(head, body, tagged=tagged).pdf)).trailer["/Root"]
        assert ("/StructTreeRoot" in root) is tagged
        if tagged:
            assert bool(root["/MarkInfo"]["/Marked"]) and str(root["/Lang"]) == "fi"


@pytest.mark.parametrize(
    ("language", "country", "line"), [("sv", "SE", "Avtalet tecknades:"), ("nb", "NO", "Avtaledato:")]
)
def test_no_line_after_a_break_starts_with_a_space(dispatcher, language, country, line):
    from dispatch_letter.markup import html_to_typst

    pages, _, html = printed(dispatcher, "contract_confirmation", language, country)
    assert "<br>\n" in html  # the template breaks its lines after <br>
    markup = html_to_typst(html)
    assert '#linebreak()#" ' not in markup and "#linebreak()# " not in markup
    assert any(text.startswith(line) for text in pages[0].splitlines()), pages[0]


@pytest.mark.parametrize(
    "url",
    [
        "https://e.example/p/AB12",
        "https://energia.example.fi/dispatch/u/01JD4Q7Z8M9N0P1Q2R3S4T5V6W.kT3xQ9vR2mLp8sYw",
        "https://energi.example.no/dispatch/p/" + "x" * 120,
    ],
)
def test_the_qr_code_typst_draws_reads_back_as_the_link(url):
    """The SVG handed to Typst, drawn module by module, is read back by zxing-cpp's reader (ISO/IEC 18004)."""
    import zxingcpp

    from dispatch_letter.qr import qr_svg

    svg = qr_svg(url)
    size, scale = int(re.search(r'width="(\d+)"', svg).group(1)), 4
    pixels = bytearray([255]) * (size * scale) ** 2
    modules = re.findall(r"M(\d+) (\d+)h(\d+)v(\d+)h-\d+Z", svg)
    for x, y, w, h in (tuple(map(int, m)) for m in modules):
        for row in range(y * scale, (y + h) * scale):
            pixels[row * size * scale + x * scale : row * size * scale + (x + w) * scale] = bytes(w * scale)
    assert modules and not any(int(x) < 4 or int(y) < 4 for x, y, _, _ in modules)  # the 4-module quiet zone
    [found] = zxingcpp.read_barcodes(memoryview(pixels).cast("B", (size * scale, size * scale)))
    assert found.text == url and found.format == zxingcpp.BarcodeFormat.QRCode and found.ec_level == "M"
