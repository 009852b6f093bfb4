"""The HTML subset of letter.html, as Typst markup: structure kept, text never read as code."""

from __future__ import annotations

import io
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from dispatch_letter.layout import LetterHead, render_letter
from dispatch_letter.markup import html_to_typst, string_literal

HEAD = LetterHead(
    title="M-1",
    language="fi",
    sender_lines=["Energia Oy"],
    return_line="Energia Oy, Sähkötie 1",
    recipient_lines=["Åsa Öberg", "Katu 1", "00100 Helsinki"],
    info_lines=["Helsinki, 1.5.2027"],
    footer="Energia Oy",
)


def typeset_text(html: str) -> str:
    pdf = render_letter(HEAD, html_to_typst(html)).pdf
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages).replace("\u200b", "")


def test_structure_becomes_typst_elements():
    markup = html_to_typst(
        "<h1>Otsikko</h1><h2>Väli</h2><h5>Pieni</h5><p>Teksti <b>lihava</b> <em>kursiivi</em><br>rivi</p>"
        "<ul><li>yksi</li><li>kaksi<ol><li>a</li></ol></li></ul><hr>"
    )
    assert '#heading(level: 1)[#"Otsikko"]' in markup
    assert '#heading(level: 2)[#"Väli"]' in markup and '#heading(level: 3)[#"Pieni"]' in markup
    assert '#"Teksti "#strong[#"lihava"]#" "#emph[#"kursiivi"]#linebreak()#"rivi"' in markup
    assert '#list([#"yksi"], [#"kaksi"\n\n#enum([#"a"])])' in markup
    assert "#line(length: 100%" in markup


def test_amount_columns_are_right_aligned_and_widths_kept():
    markup = html_to_typst(
        '<table><thead><tr><th width="60%">Maksu</th><th width="40%">Hinta</th></tr></thead>'
        "<tbody><tr><td>Energia</td><td>8,90 c/kWh</td></tr><tr><td>Perusmaksu</td><td>4,90 €/kk</td></tr>"
        "</tbody></table>"
    )
    assert "columns: (60fr, 40fr,)" in markup and "align: (left, right,)" in markup
    assert 'table.header([#"Maksu"], [#"Hinta"])' in markup
    words = html_to_typst("<table><tr><td>Tuote</td><td>Kiinteä</td></tr></table>")
    assert "align: (left, left,)" in words  # text columns stay left
    marked = html_to_typst('<table><tr><td>Yhteensä</td><td class="amount">n/a</td></tr></table>')
    assert "align: (left, right,)" in marked


def test_only_safe_links_and_no_scripts():
    markup = html_to_typst(
        '<p><a href="javascript:alert(1)">x</a> <a href="https://e.fi/a?b=1&amp;c=&quot;2&quot;">y</a></p>'
        "<script>#import</script><style>p{}</style>"
    )
    assert "javascript" not in markup and "#import" not in markup and "p{}" not in markup
    assert '#link("https://e.fi/a?b=1&c=\\"2\\"")[#"y"]' in markup


@pytest.mark.parametrize(
    "text",
    ['#import "@preview/x:0.1.0": *', "a\\", '\\"', "#{panic()}", "$ x $ *b* _i_ @ref <l> `r` ]) [", "// /* */"],
)
def test_text_is_one_string_literal(text):
    literal = string_literal(text)
    assert literal.startswith('"') and literal.endswith('"')
    inner = literal[1:-1]
    assert re.fullmatch(r'(?:[^"\\]|\\\\|\\")*', inner)  # every quote and backslash escaped
    assert html_to_typst(f"<p>{text.replace('<', '&lt;')}</p>").strip() == "#" + literal


@settings(max_examples=25, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60))
def test_any_text_compiles_and_reads_back(text):
    printable = " ".join(text.split())
    if not printable:
        return
    html = "<p>" + printable.replace("&", "&amp;").replace("<", "&lt;") + "</p>"
    read = typeset_text(html)
    # Letters outside the fonts may come back as other code points; the compile must never fail
    # and ASCII punctuation (Typst's syntax) must come back as written.
    ascii_part = re.sub(r"[^\x21-\x7e]", "", printable)
    assert ascii_part in re.sub(r"[^\x21-\x7e]", "", read)


def test_a_character_no_font_has_still_gives_a_letter():
    pdf = render_letter(HEAD, html_to_typst("<p>Nimi: \u05c8 \U0001f600 漢字</p>")).pdf  # PDF/A forbids blank boxes
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "Nimi:" in text and "Åsa Öberg" in text


def test_nordic_and_sami_letters_are_in_the_fonts():
    nordic = "Åsa Ärlig Öberg Æbelø Søren Müller 12,90 €"
    sami = "Áilu Čáhppes Đuoddar Ŋuvttat Šiellá Ŧuollu Žanná Ǯiǯǯ Ʒʒ Ǥǥ Ǧǧ Ǩǩ"
    names = f"{nordic} {sami}"
    html = f"<p>{names}</p><p><b>{names}</b></p><p><i>{names}</i></p>"
    pdf = render_letter(HEAD, html_to_typst(html)).pdf
    assert b"pdfaid:part" in pdf  # PDF/A held: no character fell back to a missing glyph
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert " ".join(text.split()).count(names) == 3


@pytest.mark.parametrize("standard", ["a-1b", "a-2b", "a-2a", "a-3b", "a-3u", "a-3a", "a-4", None])
def test_every_offered_pdf_standard_compiles(standard):
    pdf = render_letter(HEAD, html_to_typst("<p>Hei</p>"), standard=standard).pdf
    assert (b"pdfaid:part" in pdf) == (standard is not None)
