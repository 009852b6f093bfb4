"""Letters: text and positions read back from the PDF (pdfminer), and the print batch."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
import time
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date
from pdfminer.high_level import extract_pages
from pdfminer.layout import LTChar, LTCurve, LTTextContainer, LTTextLine
from pypdf import PdfReader

from dispatch_letter.layout import (
    ADDRESS_HEIGHT,
    ADDRESS_LEFT,
    ADDRESS_TOP,
    ADDRESS_WIDTH,
    BOTTOM_MARGIN,
    FOOTER_TOP,
    LEFT_MARGIN,
    PAGE_HEIGHT,
    PAGE_WIDTH,
    RECIPIENT_TOP,
    RIGHT_MARGIN,
)

MM_PER_PT = 25.4 / 72
WINDOW_RIGHT = ADDRESS_LEFT + ADDRESS_WIDTH
WINDOW_BOTTOM = ADDRESS_TOP + ADDRESS_HEIGHT
#: The higher Nordic C6/5 window ends this far from the top; the first five address lines fit above it.
NORDIC_WINDOW_BOTTOM = 74.0
ADDRESS = {
    "name": "Åsa Öberg-Ärlig",
    "street": "Mannerheimintie 12 B 7",
    "postal_code": "00100",
    "city": "Helsinki",
    "country": "FI",
}
BODY = "<h1>Sähkön hinta muuttuu</h1><p>Hyvä Åsa Öberg-Ärlig,</p><p>sähkösopimuksenne hinnat muuttuvat 1.5.2027.</p>"
PRICES = (
    "<table width='100%'><thead><tr><th width='40%'>Maksu</th><th width='30%'>Nyt</th><th width='30%'>Uusi</th></tr>"
    "</thead><tbody><tr><td>Perusmaksu</td><td>4,90 €/kk</td><td><b>5,90 €/kk</b></td></tr>"
    "<tr><td>Energia</td><td>8,90 c/kWh</td><td><b>9,90 c/kWh</b></td></tr></tbody></table>"
)


@dataclass(frozen=True)
class Line:
    """A line of text on a page, in millimetres from the page's top-left corner."""

    left: float
    right: float
    top: float
    bottom: float
    size: float
    text: str


def lines_of(pdf: str | bytes | Path, page: int = 0) -> list[Line]:
    source = io.BytesIO(pdf) if isinstance(pdf, bytes) else str(pdf)
    found = []
    for number, layout in enumerate(extract_pages(source)):
        if number != page:
            continue
        for element in layout:
            if not isinstance(element, LTTextContainer):
                continue
            for line in element:
                if isinstance(line, LTTextLine) and line.get_text().strip():
                    size = max((c.size for c in line if isinstance(c, LTChar)), default=0)
                    found.append(
                        Line(
                            line.x0 * MM_PER_PT,
                            line.x1 * MM_PER_PT,
                            PAGE_HEIGHT - line.y1 * MM_PER_PT,
                            PAGE_HEIGHT - line.y0 * MM_PER_PT,
                            round(size, 2),
                            line.get_text().strip(),
                        )
                    )
    return found


def text_of(pdf: str | bytes | Path) -> str:
    """Every page's text, without the zero-width break opportunities put into long words."""
    reader = PdfReader(io.BytesIO(pdf) if isinstance(pdf, bytes) else pdf)
    return "\n".join(page.extract_text() for page in reader.pages).replace("\u200b", "")


def in_window(line: Line) -> bool:
    """Inside the window's left, right and top edges (the bottom depends on the envelope: checked apart)."""
    return line.left >= ADDRESS_LEFT and line.right <= WINDOW_RIGHT and line.top >= ADDRESS_TOP


def letter(outgoing, address=ADDRESS, body=BODY, **fields):
    return outgoing("letter", dict(address), {"html": body}, **fields)


def deliver_letter(d, run_delivery, message):
    result = run_delivery(d, "letter", message)
    return Path(result.provider_id), result


def today_in(tz: str) -> set:
    """Today's date where the recipient lives (both sides of midnight while the test runs)."""
    return {datetime.now(UTC).astimezone(ZoneInfo(tz)).date()}


def recipient_lines(path: Path) -> list[Line]:
    return [line for line in lines_of(path) if line.right <= WINDOW_RIGHT and RECIPIENT_TOP - 1 <= line.top < 95]


def test_letter_has_address_date_body_and_page_number(make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher()
    dates = today_in("Europe/Helsinki")
    message = letter(outgoing, body=BODY + PRICES)
    path, result = deliver_letter(d, run_delivery, message)
    dates |= today_in("Europe/Helsinki")

    reader = PdfReader(path)
    text = text_of(path)
    assert len(reader.pages) == 1 and result.detail["pages"] == 1
    assert reader.metadata.title == message.id  # never the customer's name
    for line in ("Åsa Öberg-Ärlig", "Mannerheimintie 12 B 7", "00100 Helsinki"):
        assert line in text
    info = [line.text for line in lines_of(path) if line.left >= 120 and line.top < 90]
    assert info[0] in {f"Helsinki, {day.day}.{day.month}.{day.year}" for day in dates}
    assert info[1] == "Asiakasnumero: C-1001"
    assert "Sähkön hinta muuttuu" in text and "sähkösopimuksenne hinnat muuttuvat 1.5.2027." in text
    assert "Pohjolan Energia Oy, Sähkötie 1, 00100 Helsinki" in text  # the return-address line
    assert "1/1" in text


def test_amounts_are_right_aligned_at_the_text_margin(make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher()
    path, _ = deliver_letter(d, run_delivery, letter(outgoing, body=BODY + PRICES))
    lines = {line.text: line for line in lines_of(path)}
    text_right = PAGE_WIDTH - RIGHT_MARGIN
    for amount in ("5,90 €/kk", "9,90 c/kWh", "Uusi"):
        assert lines[amount].right == pytest.approx(text_right, abs=0.3)
    assert lines["4,90 €/kk"].right == pytest.approx(lines["8,90 c/kWh"].right, abs=0.3)  # one right edge
    for label in ("Maksu", "Perusmaksu", "Energia"):
        assert lines[label].left == pytest.approx(LEFT_MARGIN, abs=0.3)  # the table starts at the text margin


@pytest.mark.parametrize(
    ("language", "country", "address", "tz", "label", "body"),
    [
        (
            "sv",
            "SE",
            {"postal_code": "114 51", "city": "Stockholm", "country": "SE"},
            "Europe/Stockholm",
            "Kundnummer",
            "<h1>Elpriset ändras</h1><p>Hej Åsa,</p><p>priserna i ditt elavtal ändras den 1 maj 2027.</p>",
        ),
        (
            "en",
            "FI",
            {},
            "Europe/Helsinki",
            "Customer number",
            "<h1>Your electricity price changes</h1><p>Dear Åsa,</p><p>the prices of your contract change.</p>",
        ),
        (
            "nb",
            "NO",
            {"postal_code": "0150", "city": "Oslo", "country": "NO"},
            "Europe/Oslo",
            "Kundenummer",
            "<h1>Strømprisen endres</h1><p>Hei Åsa,</p><p>prisene i strømavtalen din endres 1. mai 2027.</p>",
        ),
    ],
)
def test_each_language_has_its_labels_and_date(
    make_dispatcher, outgoing, run_delivery, language, country, address, tz, label, body
):
    d = make_dispatcher()
    dates = today_in(tz)
    message = letter(outgoing, address={**ADDRESS, **address}, body=body, language=language, country=country)
    path, _ = deliver_letter(d, run_delivery, message)
    dates |= today_in(tz)

    city = {"SE": "Stockholm", "NO": "Oslo", "FI": "Helsinki"}[country]
    info = [line.text for line in lines_of(path) if line.left >= 120 and line.top < 90]
    locale = {"sv": "sv_SE", "en": "en_GB", "nb": "nb"}[language]
    assert info[0] in {f"{city}, {format_date(day, 'long', locale=locale)}" for day in dates}
    assert info[1] == f"{label}: C-1001"
    text = text_of(path)
    for sentence in re.findall(r">([^<]+)<", body):
        assert sentence in text


def test_address_block_sits_in_the_envelope_window(make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher()
    path, _ = deliver_letter(d, run_delivery, letter(outgoing))
    lines = lines_of(path)

    recipient = recipient_lines(path)
    assert [line.text for line in recipient] == ["Åsa Öberg-Ärlig", "Mannerheimintie 12 B 7", "00100 Helsinki"]
    for line in recipient:
        assert in_window(line) and line.bottom <= NORDIC_WINDOW_BOTTOM  # DIN 680 and Nordic C5, C6/5 windows
        assert line.left >= ADDRESS_LEFT + 4.9 and line.right <= WINDOW_RIGHT - 4.9  # room for the sheet to shift
    back = next(line for line in lines if line.text.startswith("Pohjolan Energia Oy, "))
    assert in_window(back) and back.bottom <= recipient[0].top  # the return line: in the window, above
    assert all(line.top >= WINDOW_BOTTOM for line in lines if line.text.startswith("Sähkön hinta"))


def test_long_address_lines_shrink_to_fit_the_window(make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher()
    long_name = "Kiinteistö Oy Helsingin Mannerheimintien Sähköasunnot c/o Isännöintitoimisto Åkerlund"
    path, _ = deliver_letter(d, run_delivery, letter(outgoing, address={**ADDRESS, "name": long_name}))
    lines = recipient_lines(path)
    assert len(lines) == 3
    for line in lines:
        assert line.size < 10.5
        assert in_window(line) and line.right <= WINDOW_RIGHT - 4.9 and line.bottom <= WINDOW_BOTTOM
    assert lines[0].text == long_name or lines[0].text.endswith("…")


def test_letter_abroad_names_the_country_last(make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher()
    address = {**ADDRESS, "postal_code": "114 51", "city": "Stockholm", "country": "SE"}
    path, _ = deliver_letter(d, run_delivery, letter(outgoing, address=address))
    assert [line.text for line in recipient_lines(path)] == [
        "Åsa Öberg-Ärlig",
        "Mannerheimintie 12 B 7",
        "114 51 Stockholm",
        "RUOTSI",
    ]


def test_long_letter_flows_onto_page_two_above_the_footer(make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher()
    paragraphs = "".join(
        f"<p>Kappale {i}: sähkön hinta muuttuu, ja tässä kerrotaan miksi ja mitä se "
        f"tarkoittaa teidän sopimuksellenne.</p>"
        for i in range(1, 31)
    )
    path, result = deliver_letter(d, run_delivery, letter(outgoing, body="<h1>Hinnanmuutos</h1>" + paragraphs))

    reader = PdfReader(path)
    assert len(reader.pages) == 2 and result.detail["pages"] == 2
    first, second = reader.pages[0].extract_text(), reader.pages[1].extract_text()
    assert "1/2" in first and "2/2" in second
    assert "Kappale 1:" in first and "Kappale 30:" in second
    assert all(f"Kappale {i}:" in text_of(path) for i in range(1, 31))
    for page in range(2):
        lines = lines_of(path, page)
        footer = [line for line in lines if line.top >= FOOTER_TOP - 1]
        above = [line for line in lines if line.top < FOOTER_TOP - 1]
        assert footer[-1].text == f"{page + 1}/2" and footer[-1].right == pytest.approx(
            PAGE_WIDTH - RIGHT_MARGIN, abs=0.3
        )
        assert max(line.bottom for line in above) <= PAGE_HEIGHT - BOTTOM_MARGIN + 0.5  # the body ends above
        assert min(line.top for line in footer) - max(line.bottom for line in above) > 3


HOSTILE = [
    '#import "@preview/evil:0.1.0": *',
    '#sys.inputs #eval("1") $x^2$ *bold* _under_ @label <label> `raw`',
    'back\\slash \\ \\\\ ] [ } { // not a comment /* nor this */ "quoted"',
    "= not a heading",
    "- not a list",
    "+ not an enum",
    "Ääretön" + "pitkäsanaehdottomasti" * 8,
]


def test_hostile_text_is_printed_literally(make_dispatcher, outgoing, run_delivery):
    from markupsafe import escape

    d = make_dispatcher()
    body = "<h1>#heading[x]</h1>" + "".join(f"<p>{escape(s)}</p>" for s in HOSTILE)
    body += f"<ul><li>{escape(HOSTILE[1])}</li></ul><table><tr><td>{escape(HOSTILE[2])}</td><td>1 €</td></tr></table>"
    address = {**ADDRESS, "name": '#import "x": * $a$ \\ ]', "street": "<b>*_@</b>"}
    message = letter(outgoing, address=address, body=body, recipient_id="=cmd|' /C calc'!A0")
    path, _ = deliver_letter(d, run_delivery, message)

    text = text_of(path)
    flat = re.sub(r"\s+", "", text)
    assert "#heading[x]" in text
    for hostile in HOSTILE:
        assert re.sub(r"\s+", "", hostile) in flat
    assert '#import "x": * $a$ \\ ]' in text and "<b>*_@</b>" in text
    assert "=cmd|' /C calc'!A0" in text  # the customer number, as given
    for line in lines_of(path):  # the very long word wraps inside the text area
        assert line.left >= LEFT_MARGIN - 1 and line.right <= PAGE_WIDTH - RIGHT_MARGIN + 0.5


def test_print_batch_is_one_pdf_with_a_manifest(make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher()
    channel = d.channels["letter"]
    long_body = "".join(f"<p>Kappale {i}: sähkön hinta muuttuu, ja tässä kerrotaan miksi.</p>" for i in range(40))
    messages = [
        letter(outgoing, recipient_id="C-1001"),
        letter(
            outgoing,
            recipient_id="C-2001",
            country="SE",
            language="sv",
            address={**ADDRESS, "postal_code": "114 51", "city": "Stockholm", "country": "SE"},
        ),
        letter(outgoing, recipient_id="C-3001", body=long_body),
    ]
    for message in messages:
        run_delivery(d, "letter", message)
    run_delivery(d, "letter", messages[0])  # a redelivery: one PDF, listed once

    summary = channel.finish_batch()

    pages = {m.id: len(PdfReader(channel.outbox / f"{m.id}.pdf").pages) for m in messages}
    assert summary["letters"] == 3 and summary["pages"] == sum(pages.values()) == 4
    assert summary["file"].endswith(".pdf")
    batch = PdfReader(summary["file"])
    assert len(batch.pages) == 4
    numbers = [page.extract_text().split()[-1] for page in batch.pages]
    assert numbers == ["1/1", "1/1", "1/2", "2/2"]  # every letter numbered on its own
    assert "Kundnummer: C-2001" in batch.pages[1].extract_text()
    with open(summary["manifest"], encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["message_id"] for r in rows] == [m.id for m in messages]
    assert {r["recipient_id"]: r["pages"] for r in rows} == {"C-1001": "1", "C-2001": "1", "C-3001": "2"}
    assert [r["postal_country"] for r in rows] == ["FI", "SE", "FI"]
    listed = json.loads(Path(summary["manifest"]).with_suffix(".json").read_text(encoding="utf-8"))
    assert [e["message_id"] for e in listed["letters"]] == [m.id for m in messages]
    assert listed["batch"]["letters"] == 3 and listed["batch"]["pages"] == 4
    assert channel.finish_batch() is None  # the batch was handed over; nothing is listed twice


def test_letters_and_batches_are_pdf_a(make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher()
    message = letter(outgoing)
    path, _ = deliver_letter(d, run_delivery, message)
    summary = d.channels["letter"].finish_batch()
    for pdf in (path, Path(summary["file"])):
        reader = PdfReader(pdf)
        xmp = reader.trailer["/Root"]["/Metadata"].get_data().decode("utf-8")
        assert "<pdfaid:part>2</pdfaid:part>" in xmp and "<pdfaid:conformance>U</pdfaid:conformance>" in xmp
        assert reader.metadata.title == message.id


def test_plain_pdf_when_pdf_a_is_turned_off(make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher({"letter": {"pdf_standard": ""}})
    path, _ = deliver_letter(d, run_delivery, letter(outgoing))
    assert b"pdfaid:part" not in path.read_bytes() and "Åsa Öberg-Ärlig" in text_of(path)


def test_zip_batch_holds_every_pdf_and_the_manifest(make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher({"letter": {"batch_format": "zip"}})
    messages = [letter(outgoing, recipient_id=f"C-{i}") for i in range(2)]
    for message in messages:
        run_delivery(d, "letter", message)
    summary = d.channels["letter"].finish_batch()
    with zipfile.ZipFile(summary["file"]) as archive:
        assert set(archive.namelist()) == {f"{m.id}.pdf" for m in messages} | {"manifest.csv", "manifest.json"}
        rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode("utf-8"))))
    assert [r["recipient_id"] for r in rows] == ["C-0", "C-1"]


def test_manifest_neutralises_formula_cells(make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher()
    hostile = ['=HYPERLINK("http://evil.example","x")', "+1+2", "-3", "@SUM(A1)", "\tTAB", "\rCR"]
    for recipient_id in [*hostile, "C-1"]:
        run_delivery(d, "letter", letter(outgoing, recipient_id=recipient_id))
    summary = d.channels["letter"].finish_batch()

    with open(summary["manifest"], encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["recipient_id"] for r in rows] == [*("'" + h for h in hostile), "C-1"]
    assert all(r["pages"] == "1" for r in rows)  # numbers stay numbers
    listed = json.loads(Path(summary["manifest"]).with_suffix(".json").read_text(encoding="utf-8"))
    assert [e["recipient_id"] for e in listed["letters"]] == [*hostile, "C-1"]  # JSON keeps the values


def test_a_run_without_letters_writes_no_batch(make_dispatcher, tmp_path):
    d = make_dispatcher()
    assert d.channels["letter"].finish_batch() is None
    assert not (Path(tmp_path) / "outbox" / "letter" / "batches").exists()


def qr_drawn(path: Path) -> bool:
    """True when the first page has a QR code below the window: many small dark modules at the left margin."""
    for layout in extract_pages(str(path), page_numbers=[0]):
        modules = [
            el
            for el in layout
            if isinstance(el, LTCurve)
            and el.width * MM_PER_PT < 15
            and LEFT_MARGIN - 1 <= el.x0 * MM_PER_PT < LEFT_MARGIN + 25
            and PAGE_HEIGHT - el.y1 * MM_PER_PT > WINDOW_BOTTOM
        ]
        return len(modules) > 40
    return False


def test_a_long_opt_out_link_is_a_qr_code_not_a_token(make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher(
        company={"name": "Pohjolan Energia Oy", "website": "www.pohjolan.example.fi", "phone": "010 123"}
    )
    url = "https://pohjolan.example.fi/u/01JD4Q7Z8M9N0P1Q2R3S4T5V6W.kT3xQ9vR2mLp8sYw"
    body = f"<h1>Tarjous</h1><p>Voit perua markkinoinnin osoitteessa {url} tai soittamalla.</p>"
    message = letter(outgoing, body=body, unsubscribe_url=url, message_type="marketing", category="marketing")
    path, _ = deliver_letter(d, run_delivery, message)

    text = re.sub(r"\s+", " ", text_of(path))
    assert url not in re.sub(r"\s+", "", text_of(path))  # never the long token on paper
    assert "osoitteessa (QR-koodi kirjeen lopussa) tai soittamalla" in text
    assert "Etkö halua enää markkinointia? Lue QR-koodi puhelimellasi" in text
    assert "www.pohjolan.example.fi" in text
    assert qr_drawn(path)


def test_a_short_preferences_link_is_printed_beside_its_qr_code(make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher()
    message = letter(outgoing, language="sv", country="SE", meta={"preferences_url": "https://e.example/p/AB12"})
    path, _ = deliver_letter(d, run_delivery, message)
    text = re.sub(r"\s+", " ", text_of(path))
    assert "skanna QR-koden med din telefon eller gå till https://e.example/p/AB12" in text
    assert qr_drawn(path)


def test_a_letter_without_a_link_has_no_qr_code(make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher()
    path, _ = deliver_letter(d, run_delivery, letter(outgoing))
    assert not qr_drawn(path) and "QR" not in text_of(path)


def test_letters_are_set_on_threads_of_the_worker_process(make_dispatcher, outgoing, run_delivery):
    import threading

    d = make_dispatcher()
    run_delivery(d, "letter", letter(outgoing))
    assert any(t.name.startswith("letter-typeset") for t in threading.enumerate())
    assert not __import__("multiprocessing").active_children()


SCRIPT = """
import dispatch

recipient = {
    "id": "C-1",
    "country": "FI",
    "language": "fi",
    "status": "active",
    "address": {"name": "Matti Meikäläinen", "street": "Mannerheimintie 12", "postal_code": "00100", "city": "Turku"},
    "preferred_channels": {"default": "letter"},
}
data = {
    "effective_on": "2099-05-01",
    "reason": "sähkön hankintakustannukset ovat nousseet",
    "price_elements": [{"name": "Energia", "unit": "c/kWh", "old": "7.49", "new": "8.90"}],
}
receipt = dispatch.dispatch("price_change", recipient, data, idempotency_key="no-main-guard")
print(receipt.status, receipt.channel)
"""


@pytest.mark.slow
def test_a_script_without_a_main_guard_sends_one_letter_and_exits(tmp_path):
    (tmp_path / "send.py").write_text(textwrap.dedent(SCRIPT), encoding="utf-8")
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")}
    env["PYTHONPATH"] = os.pathsep.join(str(root / p) for p in ("src", "plugins"))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "send.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["queued", "letter"]
    with sqlite3.connect(tmp_path / "dispatch.db") as db:
        rows = db.execute("SELECT channel, status FROM messages").fetchall()
    assert rows == [("letter", "sent")] or rows == [("letter", "delivered")], rows
    assert len(list((tmp_path / "outbox" / "letter").glob("*.pdf"))) == 1
    assert len(list((tmp_path / "outbox" / "letter" / "batches").glob("*.pdf"))) == 1  # the batch, closed at exit
    print(f"script ran in {time.monotonic() - started:.1f} s")


def test_a_large_batch_is_set_in_parts_and_joined_in_order(make_dispatcher, outgoing, run_delivery, monkeypatch):
    from dispatch_letter import layout

    monkeypatch.setattr(layout, "BATCH_PART", 2)  # parts start in the background every two letters
    d = make_dispatcher()
    two_pages = "".join(f"<p>Kappale {i}: sähkön hinta muuttuu, ja tässä kerrotaan miksi.</p>" for i in range(40))
    messages = [letter(outgoing, recipient_id=f"C-{i}", body=two_pages if i == 2 else BODY) for i in range(5)]
    for message in messages:
        run_delivery(d, "letter", message)
    run_delivery(d, "letter", messages[0])  # a redelivery after its part was set: still listed once

    summary = d.channels["letter"].finish_batch()
    batch = PdfReader(summary["file"])
    assert summary["letters"] == 5 and len(batch.pages) == summary["pages"] == 6
    numbers = [page.extract_text().split()[-1] for page in batch.pages]
    assert numbers == ["1/1", "1/1", "1/2", "2/2", "1/1", "1/1"]
    customers = [re.search(r"Asiakasnumero: (C-\d)", page.extract_text()) for page in batch.pages]
    assert [m.group(1) for m in customers if m] == [f"C-{i}" for i in range(5)]  # the manifest's order
    with open(summary["manifest"], encoding="utf-8", newline="") as handle:
        assert [r["recipient_id"] for r in csv.DictReader(handle)] == [f"C-{i}" for i in range(5)]


def test_only_the_batch_when_letter_files_are_off(make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher({"letter": {"letter_files": False}})
    messages = [letter(outgoing, recipient_id=f"C-{i}") for i in range(2)]
    results = [run_delivery(d, "letter", message) for message in messages]
    channel = d.channels["letter"]
    assert [r.detail["pages"] for r in results] == [1, 1]
    assert not list(channel.outbox.glob("*.pdf"))
    summary = channel.finish_batch()
    assert len(PdfReader(summary["file"]).pages) == 2


def test_settings_are_checked():
    from dispatch.errors import ConfigError
    from dispatch_letter import LetterChannel, LetterSettings

    class Context:
        outbox = Path("outbox")
        config = None

    for settings, problem in (
        (LetterSettings(batch_format="tar"), "batch_format"),
        (LetterSettings(batch_format="zip", letter_files=False), "letter_files"),
        (LetterSettings(pdf_standard="a-9"), "pdf_standard"),
        (LetterSettings(render_threads=-1), "render_threads"),
    ):
        with pytest.raises(ConfigError, match=problem):
            LetterChannel(settings, Context())
