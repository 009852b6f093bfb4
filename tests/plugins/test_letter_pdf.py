"""Letters: text and positions read back from the PDF with pypdf, and the print batch."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date
from fpdf import FPDF
from pypdf import PdfReader

from dispatch_letter.layout import (
    ADDRESS_HEIGHT,
    ADDRESS_LEFT,
    ADDRESS_TOP,
    ADDRESS_WIDTH,
    BOTTOM_MARGIN,
    FONT_FILES,
    FONTS,
    FOOTER_TOP,
    PAGE_HEIGHT,
    RETURN_LINE_HEIGHT,
)

MM_PER_PT = 25.4 / 72
WINDOW_RIGHT = ADDRESS_LEFT + ADDRESS_WIDTH
WINDOW_BOTTOM = ADDRESS_TOP + ADDRESS_HEIGHT
ADDRESS = {
    "name": "Åsa Öberg-Ärlig",
    "street": "Mannerheimintie 12 B 7",
    "postal_code": "00100",
    "city": "Helsinki",
    "country": "FI",
}
BODY = "<h1>Sähkön hinta muuttuu</h1><p>Hyvä Åsa Öberg-Ärlig,</p><p>sähkösopimuksenne hinnat muuttuvat 1.5.2027.</p>"


def fragments(page) -> list[tuple[float, float, str, float]]:
    """(x mm from left, y mm from top of the baseline, text, font size pt) of every text piece on a page."""
    out = []

    def visit(text, cm, tm, font_dict, font_size):
        if text.strip():
            out.append((tm[4] * MM_PER_PT, PAGE_HEIGHT - tm[5] * MM_PER_PT, text.strip(), font_size))

    page.extract_text(visitor_text=visit)
    return out


def text_width(text: str, size: float) -> float:
    pdf = FPDF(unit="mm")
    pdf.add_font("dejavu", "", str(FONTS / FONT_FILES[""]))
    pdf.set_font("dejavu", "", size)
    return pdf.get_string_width(text)


def letter(outgoing, address=ADDRESS, body=BODY, **fields):
    return outgoing("letter", dict(address), {"html": body}, **fields)


def deliver_letter(d, run_delivery, message) -> tuple[PdfReader, object]:
    result = run_delivery(d, "letter", message)
    return PdfReader(result.provider_id), result


def today_in(tz: str) -> set:
    """Today's date where the recipient lives (both sides of midnight while the test runs)."""
    return {datetime.now(UTC).astimezone(ZoneInfo(tz)).date()}


def test_letter_has_address_date_body_and_page_number(make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher()
    dates = today_in("Europe/Helsinki")
    reader, result = deliver_letter(d, run_delivery, letter(outgoing))
    dates |= today_in("Europe/Helsinki")

    text = reader.pages[0].extract_text()
    assert len(reader.pages) == 1 and result.detail["pages"] == 1
    for line in ("Åsa Öberg-Ärlig", "Mannerheimintie 12 B 7", "00100 Helsinki"):
        assert line in text
    info = [p[2] for p in fragments(reader.pages[0]) if p[0] > WINDOW_RIGHT and p[1] < 100]
    assert info[0] in {f"Helsinki, {day.day}.{day.month}.{day.year}" for day in dates}
    assert "Asiakasnumero: C-1001" in text
    assert "Sähkön hinta muuttuu" in text and "sähkösopimuksenne hinnat muuttuvat 1.5.2027." in text
    assert "Pohjolan Energia Oy, Sähkötie 1, 00100 Helsinki" in text  # the return-address line
    assert "1/1" in text


def test_date_and_place_follow_the_letters_locale(make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher()
    dates = today_in("Europe/Stockholm")
    reader, _ = deliver_letter(
        d,
        run_delivery,
        letter(
            outgoing,
            address={**ADDRESS, "postal_code": "114 51", "city": "Stockholm", "country": "SE"},
            language="sv",
            locale="sv_SE",
            country="SE",
        ),
    )
    dates |= today_in("Europe/Stockholm")
    info = [p[2] for p in fragments(reader.pages[0]) if p[0] > WINDOW_RIGHT and p[1] < 100]
    assert info[0] in {f"Stockholm, {format_date(day, 'long', locale='sv_SE')}" for day in dates}
    assert info[1] == "Kundnummer: C-1001"


def test_address_block_sits_in_the_envelope_window(make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher()
    reader, _ = deliver_letter(d, run_delivery, letter(outgoing))
    pieces = fragments(reader.pages[0])

    name = next(p for p in pieces if p[2] == "Åsa Öberg-Ärlig")
    x, y, _, size = name
    assert ADDRESS_LEFT < x < WINDOW_RIGHT and ADDRESS_TOP + RETURN_LINE_HEIGHT < y < WINDOW_BOTTOM
    assert x + text_width(name[2], size) < WINDOW_RIGHT
    city = next(p for p in pieces if p[2] == "00100 Helsinki" and p[1] > ADDRESS_TOP)
    assert city[1] > y and city[1] < WINDOW_BOTTOM
    back = next(p for p in pieces if p[2].startswith("Pohjolan Energia Oy, "))
    assert ADDRESS_TOP < back[1] < y  # the return line: inside the window, above the recipient
    assert back[0] + text_width(back[2], back[3]) < WINDOW_RIGHT


def test_long_address_lines_shrink_to_fit_the_window(make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher()
    long_name = "Kiinteistö Oy Helsingin Mannerheimintien Sähköasunnot c/o Isännöintitoimisto Åkerlund"
    reader, _ = deliver_letter(d, run_delivery, letter(outgoing, address={**ADDRESS, "name": long_name}))
    pieces = [
        p
        for p in fragments(reader.pages[0])
        if ADDRESS_TOP + RETURN_LINE_HEIGHT < p[1] < WINDOW_BOTTOM and p[0] < WINDOW_RIGHT
    ]
    assert len(pieces) == 3
    for x, _, text, size in pieces:
        assert size < 10.5
        assert x > ADDRESS_LEFT and x + text_width(text, size) <= WINDOW_RIGHT - 4.9
    assert pieces[0][2] == long_name or pieces[0][2].endswith("…")


def test_letter_abroad_names_the_country_last(make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher()
    reader, _ = deliver_letter(
        d,
        run_delivery,
        letter(outgoing, address={**ADDRESS, "postal_code": "114 51", "city": "Stockholm", "country": "SE"}),
    )
    lines = [
        p[2]
        for p in fragments(reader.pages[0])
        if ADDRESS_TOP + RETURN_LINE_HEIGHT < p[1] < WINDOW_BOTTOM and p[0] < WINDOW_RIGHT
    ]
    assert lines == ["Åsa Öberg-Ärlig", "Mannerheimintie 12 B 7", "114 51 Stockholm", "RUOTSI"]


def test_long_letter_flows_onto_page_two_above_the_footer(make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher()
    paragraphs = "".join(
        f"<p>Kappale {i}: sähkön hinta muuttuu, ja tässä kerrotaan miksi ja mitä se "
        f"tarkoittaa teidän sopimuksellenne.</p>"
        for i in range(1, 31)
    )
    reader, result = deliver_letter(d, run_delivery, letter(outgoing, body="<h1>Hinnanmuutos</h1>" + paragraphs))

    assert len(reader.pages) == 2 and result.detail["pages"] == 2
    first, second = reader.pages[0].extract_text(), reader.pages[1].extract_text()
    assert "1/2" in first and "2/2" in second
    assert "Kappale 1:" in first and "Kappale 30:" in second
    body = "".join(p.extract_text() for p in reader.pages)
    assert all(f"Kappale {i}:" in body for i in range(1, 31))
    for page in reader.pages:
        pieces = fragments(page)
        footer = [p for p in pieces if p[1] >= FOOTER_TOP]
        above = [p for p in pieces if p[1] < FOOTER_TOP]
        assert any(p[2].endswith(f"/{len(reader.pages)}") for p in footer)
        assert max(p[1] for p in above) <= PAGE_HEIGHT - BOTTOM_MARGIN + 1  # the last body line ends above
        assert min(p[1] for p in footer) - max(p[1] for p in above) > 5


def test_print_batch_holds_every_pdf_and_a_manifest(make_dispatcher, outgoing, run_delivery, tmp_path):
    d = make_dispatcher()
    channel = d.channels["letter"]
    long_body = "".join(f"<p>Kappale {i}: sähkön hinta muuttuu, ja tässä kerrotaan miksi.</p>" for i in range(35))
    messages = [
        letter(outgoing, recipient_id="C-1001"),
        letter(
            outgoing,
            recipient_id="C-2001",
            country="SE",
            language="sv",
            locale="sv_SE",
            address={**ADDRESS, "postal_code": "114 51", "city": "Stockholm", "country": "SE"},
        ),
        letter(outgoing, recipient_id="C-3001", body=long_body),
    ]
    for message in messages:
        run_delivery(d, "letter", message)
    run_delivery(d, "letter", messages[0])  # a redelivery: one PDF, listed once

    summary = channel.finish_batch()

    assert summary["letters"] == 3 and summary["pages"] == 4
    with zipfile.ZipFile(summary["file"]) as archive:
        names = set(archive.namelist())
        assert names == {f"{m.id}.pdf" for m in messages} | {"manifest.csv", "manifest.json"}
        rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode("utf-8"))))
        listed = json.loads(archive.read("manifest.json"))
        for message in messages:
            pages = len(PdfReader(io.BytesIO(archive.read(f"{message.id}.pdf"))).pages)
            row = next(r for r in rows if r["message_id"] == message.id)
            assert row["recipient_id"] == message.recipient_id
            assert row["country"] == message.country
            assert int(row["pages"]) == pages
            assert row["file"] == f"{message.id}.pdf"
    assert [r["message_id"] for r in rows] == [m.id for m in messages]
    assert [e["message_id"] for e in listed["letters"]] == [m.id for m in messages]
    assert listed["batch"]["letters"] == 3
    assert {r["recipient_id"]: r["pages"] for r in rows} == {"C-1001": "1", "C-2001": "1", "C-3001": "2"}
    assert [r["postal_country"] for r in rows] == ["FI", "SE", "FI"]
    assert channel.finish_batch() is None  # the batch was handed over; nothing is listed twice


def test_a_run_without_letters_writes_no_batch(make_dispatcher, tmp_path):
    d = make_dispatcher()
    assert d.channels["letter"].finish_batch() is None
    assert not (Path(tmp_path) / "outbox" / "letter" / "batches").exists()


@pytest.mark.parametrize("batch_format", ["pdf"])
def test_merged_pdf_batch(make_dispatcher, outgoing, run_delivery, batch_format):
    d = make_dispatcher({"letter": {"batch_format": batch_format}})
    for _ in range(2):
        run_delivery(d, "letter", letter(outgoing))
    summary = d.channels["letter"].finish_batch()
    assert summary["file"].endswith(".pdf")
    assert len(PdfReader(summary["file"]).pages) == 2


def test_long_company_details_stay_in_the_window_and_clear_of_the_page_number(make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher(
        company={
            "name": "Pohjolan Energia ja Sähkönmyynti Oy – Norra Energi och Elhandel Ab",
            "address": ["Sähkötie 1 A, 3. kerros, toimistorakennus Voltti", "00100 Helsinki"],
            "website": "https://www.pohjolan-energia-ja-sahkonmyynti.example.fi/asiakaspalvelu/yhteystiedot",
            "countries": {},
        }
    )
    reader, _ = deliver_letter(d, run_delivery, letter(outgoing))
    pieces = fragments(reader.pages[0])
    back = next(p for p in pieces if ADDRESS_TOP < p[1] < ADDRESS_TOP + RETURN_LINE_HEIGHT)
    assert back[2].startswith("Pohjolan Energia ja Sähkönmyynti Oy")
    assert back[0] + text_width(back[2], back[3]) <= WINDOW_RIGHT
    footer = sorted((p for p in pieces if p[1] >= FOOTER_TOP), key=lambda p: p[0])
    company, number = footer[0], footer[-1]
    assert number[2] == "1/1"
    assert company[0] + text_width(company[2], company[3]) < number[0]


def test_fonts_parsed_once_give_the_same_pdf_text_for_later_letters():
    from dispatch_letter.layout import LetterHead, render_letter

    head = LetterHead(
        ["Energia Oy", "Sähkötie 1", "00100 Helsinki"],
        "Energia Oy, Sähkötie 1",
        ["Иван Петров", "Łódzka 3 Ŋ", "00100 Helsinki"],
        ["Helsinki, 1.5.2027", "C-1"],
        "Energia Oy",
    )
    texts = []
    for _ in range(3):  # the first letter parses the fonts, the others reuse the parsed metrics
        pdf, _pages = render_letter(head, "<p>Hinta 8,90 € <b>lihava</b> <i>kursiivi</i> – “lainaus”</p>")
        texts.append(PdfReader(io.BytesIO(pdf)).pages[0].extract_text())
    assert texts[0] == texts[1] == texts[2]
    for fragment in ("Иван Петров", "Łódzka 3 Ŋ", "8,90 €", "lihava", "kursiivi", "– “lainaus”"):
        assert fragment in texts[2]
