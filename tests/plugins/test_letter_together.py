"""Letters set together in one Typst compile: each letter's PDF cut out is the letter it would be alone."""

from __future__ import annotations

import asyncio
import io
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from peers.kivra import KivraState, kivra_app
from pypdf import PdfReader
from test_digital_mailboxes import NOW, SE_ID, _se
from test_letter_pdf import ADDRESS, BODY, PRICES, letter, lines_of, recipient_lines, text_of
from web_helpers import LiveServer

from dispatch.models import DeliveryResult
from dispatch.samples import sample_data
from dispatch_letter.layout import LetterHead, TypesetError, render_letter, render_letters
from dispatch_letter.markup import html_to_typst
from dispatch_letter.qr import qr_svg

HEAD = LetterHead(
    title="M-1",
    language="fi",
    sender_lines=["Pohjolan Energia Oy", "Sähkötie 1", "00100 Helsinki"],
    return_line="Pohjolan Energia Oy, Sähkötie 1, 00100 Helsinki",
    recipient_lines=["Åsa Öberg-Ärlig", "Mannerheimintie 12 B 7", "00100 Helsinki"],
    info_lines=["Helsinki, 1.5.2027", "Asiakasnumero: C-1001"],
    footer="Pohjolan Energia Oy · 1234567-8",
)
LONG = "".join(f"<p>Kappale {i}: sähkön hinta muuttuu, ja tässä kerrotaan miksi.</p>" for i in range(40))
TIME = datetime(2027, 5, 1, 9, 0, tzinfo=UTC)


def three_letters() -> list[tuple[LetterHead, str]]:
    url = "https://energia.example.fi/dispatch/u/abc"
    with_qr = replace(HEAD, title="M-3", qr_svg=qr_svg(url), qr_alt=url, qr_caption=["Peru viestit:", url])
    return [
        (HEAD, html_to_typst(BODY + PRICES, keep_last=True)),
        (
            replace(HEAD, title="M-2", language="sv", recipient_lines=["Sven Svensson", "Storgatan 1", "111 22 Lund"]),
            html_to_typst("<h1>Elpriset ändras</h1><p>Hej Sven,</p><p><a href='https://example.se'>Läs mer</a></p>"),
        ),
        (with_qr, html_to_typst("<h1>Hinta</h1><h2>Miksi</h2><p>Koska.</p><p>Terveisin</p>", keep_last=True)),
    ]


def xmp(reader: PdfReader) -> str:
    return reader.trailer["/Root"]["/Metadata"].get_data().decode("utf-8")


def structure_pages(reader: PdfReader) -> set[Any]:
    """Every page a structure element of the PDF points to."""
    pages, stack = set(), list(reader.trailer["/Root"]["/StructTreeRoot"]["/K"])
    while stack:
        element = stack.pop().get_object()
        if isinstance(element, dict):
            if "/Pg" in element:
                pages.add(element.raw_get("/Pg").idnum)
            kids = element.get("/K", [])
            stack.extend(kids if isinstance(kids, list) else [kids])
    return pages


def test_each_letter_cut_from_the_joint_pdf_reads_as_the_letter_set_alone():
    letters = three_letters()
    together = render_letters(letters, timestamp=TIME)
    parts = {id(t.part) for t in together}
    assert len(parts) == 1 and together[0].part is not None  # one compile for all three
    assert [t.first_page for t in together] == [0, 1, 2] and [t.pages for t in together] == [1, 1, 1]
    for (head, body), typeset in zip(letters, together, strict=True):
        alone = render_letter(head, body, timestamp=TIME)
        assert text_of(typeset.pdf) == text_of(alone.pdf)
        assert lines_of(typeset.pdf) == lines_of(alone.pdf)  # every line at the same place and size
        reader = PdfReader(io.BytesIO(typeset.pdf), strict=True)
        assert len(reader.pages) == 1 and reader.metadata.title == head.title
        meta = xmp(reader)
        assert "<pdfaid:part>2</pdfaid:part>" in meta and "<pdfaid:conformance>U</pdfaid:conformance>" in meta
        assert f'<rdf:li xml:lang="x-default">{head.title}</rdf:li>' in meta
        assert f"<rdf:li>{head.language}</rdf:li>" in meta and "<xmpTPg:NPages>1</" in meta
        root = reader.trailer["/Root"]
        assert root["/Lang"] == head.language and bool(root["/MarkInfo"]["/Marked"])
        assert structure_pages(reader) == {reader.pages[0].indirect_reference.idnum}  # only this letter's tags
        assert [o.title for o in reader.outline if not isinstance(o, list)] == [
            o.title for o in PdfReader(io.BytesIO(alone.pdf)).outline if not isinstance(o, list)
        ]
    figure = PdfReader(io.BytesIO(together[2].pdf)).trailer["/Root"]["/StructTreeRoot"]
    assert "/Alt" in str([k.get_object() for k in figure["/K"]]) or b"/Alt(" in together[2].pdf


def test_the_address_window_holds_in_a_letter_set_with_others():
    letters = three_letters()
    cut = render_letters(letters, timestamp=TIME)[1].pdf
    lines = [line.text for line in recipient_lines(cut)]
    assert lines == ["Sven Svensson", "Storgatan 1", "111 22 Lund"]


def test_untagged_letters_stay_untagged_when_set_together():
    together = render_letters(three_letters()[:2], tagged=False)
    for typeset in together:
        assert "/StructTreeRoot" not in PdfReader(io.BytesIO(typeset.pdf)).trailer["/Root"]


def test_longer_letters_among_others_are_numbered_on_their_own():
    letters = three_letters() + three_letters()
    for i in (1, 4):
        letters[i] = (replace(letters[i][0], title=f"L-{i}"), html_to_typst(LONG + LONG * (i == 4)))
    together = render_letters(letters)
    assert [t.pages for t in together] == [1, 2, 1, 1, 3, 1]
    for i, expected in ((1, ["1/2", "2/2"]), (4, ["1/3", "2/3", "3/3"]), (0, ["1/1"])):
        reader = PdfReader(io.BytesIO(together[i].pdf))
        assert [page.extract_text().split()[-1] for page in reader.pages] == expected
        assert reader.metadata.title == letters[i][0].title and "/PageLabels" not in reader.trailer["/Root"]
    long, short = {id(together[1].part), id(together[4].part)}, {id(together[i].part) for i in (0, 2, 3, 5)}
    assert len(long) == 1 and len(short) == 1 and long != short  # the longer ones set again, together


def test_a_character_no_font_has_costs_pdf_a_only_for_its_own_letter():
    letters = three_letters()
    letters[0] = (letters[0][0], html_to_typst("<p>Nimi: \u05c8 \U0001f600 漢字</p>"))
    together = render_letters(letters)
    assert b"pdfaid:part" not in together[0].pdf
    assert all(b"pdfaid:part" in t.pdf for t in together[1:])


def test_a_letter_typst_cannot_set_fails_alone():
    letters = three_letters()
    letters[1] = (letters[1][0], "#let broken = (")  # markup.py never writes this: a fault in the writer
    together = render_letters(letters)
    assert isinstance(together[1], TypesetError)
    assert [t.pages for t in (together[0], together[2])] == [1, 1]


class Mailbox:
    """Takes the letters of one recipient, as dispatch.mailboxes.DigitalFirst does (records the PDF)."""

    def __init__(self, recipient_id: str) -> None:
        self.recipient_id, self.received = recipient_id, {}

    async def deliver(self, message, pdf: bytes, company) -> tuple[DeliveryResult | None, list[str]]:
        if message.recipient_id != self.recipient_id:
            return None, ["kivra"]
        self.received[message.id] = pdf
        return DeliveryResult(provider_id=f"kivra:{message.id}", detail={"route": "kivra"}), ["kivra"]


def deliver_together(d, messages) -> list[Any]:
    channel = d.channels["letter"]

    async def all_of_them():
        return await asyncio.gather(*(channel.deliver(m) for m in messages))

    return d.runtime.runner.run(all_of_them(), timeout=120)


def test_letters_delivered_together_share_one_compile_and_the_batch_keeps_their_order(make_dispatcher, outgoing):
    d = make_dispatcher()
    channel = d.channels["letter"]
    mailbox = channel.digital = Mailbox("C-2")
    messages = [letter(outgoing, recipient_id=f"C-{i}", body=BODY + PRICES) for i in range(6)]
    results = deliver_together(d, messages)
    deliver_together(d, messages[:1])  # a redelivery: one PDF, listed once

    routed = messages[2]
    assert results[2].provider_id == f"kivra:{routed.id}"
    assert not (channel.outbox / f"{routed.id}.pdf").exists()
    assert text_of(mailbox.received[routed.id]).count("Asiakasnumero: C-2") == 1  # its own PDF, one letter
    fonts = set()
    for message in messages[1:]:
        if message is routed:
            continue
        pdf = (channel.outbox / f"{message.id}.pdf").read_bytes()
        reader = PdfReader(io.BytesIO(pdf))
        assert len(reader.pages) == 1 and reader.metadata.title == message.id
        assert f"Asiakasnumero: {message.recipient_id}" in text_of(pdf)
        fonts.add(frozenset(re.findall(rb"/BaseFont/([A-Z]{6})\+", pdf)))
    assert len(fonts) < 4  # letters set together carry the same font subsets

    summary = channel.finish_batch()
    batch = PdfReader(summary["file"])
    printed = [m.recipient_id for m in messages if m is not routed]
    assert summary["letters"] == 5 and len(batch.pages) == summary["pages"] == 5
    customers = [re.search(r"Asiakasnumero: (C-\d)", page.extract_text()).group(1) for page in batch.pages]
    assert customers == printed  # the manifest's order, the routed letter left out, the redelivery once


@pytest.mark.parametrize("batch_format", ["pdf", "zip"])
def test_a_batch_of_letters_set_together_lists_every_letter(make_dispatcher, outgoing, batch_format):
    d = make_dispatcher({"letter": {"batch_format": batch_format}})
    messages = [letter(outgoing, recipient_id=f"C-{i}", address=ADDRESS) for i in range(3)]
    deliver_together(d, messages)
    summary = d.channels["letter"].finish_batch()
    assert summary["letters"] == 3 and summary["pages"] == 3
    if batch_format == "pdf":
        batch = PdfReader(summary["file"], strict=True)
        assert len(batch.pages) == 3 and "<pdfaid:part>2</pdfaid:part>" in xmp(batch)
        assert "<xmpTPg:NPages>3</xmpTPg:NPages>" in xmp(batch)
        assert not {"/PageLabels", "/StructTreeRoot"} & set(batch.trailer["/Root"])  # no marks, no tags: paper


def test_jobs_waiting_together_are_set_in_one_call_and_fail_one_by_one():
    from dispatch_letter.threads import Typesetters

    calls: list[list[int]] = []

    def setter(items: list[int]) -> list[Any]:
        calls.append(items)
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]

    def prepare(i: int) -> int:
        if i == 4:
            raise KeyError("prepare")
        return i

    async def main():
        pool = Typesetters(2)
        try:
            jobs = [pool.run_together(lambda i=i: prepare(i), setter, limit=3) for i in range(7)]
            return await asyncio.gather(*jobs, return_exceptions=True)
        finally:
            pool.close()

    results = asyncio.run(main())
    assert [r if isinstance(r, int) else type(r).__name__ for r in results] == [
        0, "ValueError", 20, "ValueError", "KeyError", "ValueError", 60
    ]  # fmt: skip
    assert sorted(i for call in calls for i in call) == [0, 1, 2, 3, 5, 6]
    assert max(len(call) for call in calls) <= 3 and len(calls) >= 2  # never more than the limit at once


@pytest.fixture
def kivra():
    state = KivraState(accepting={SE_ID})
    server = LiveServer(kivra_app(state)).start()
    yield state, server.base
    server.stop()


def test_a_digital_mailbox_gets_its_letters_own_pdf_while_the_others_print(make_dispatcher, kivra, tmp_path):
    """With the Kivra peer: letters sent at once (set together as the worker hands them over), one to a
    mailbox: it gets that letter's own PDF — tagged, PDF/A, no page labels — and the rest print."""
    state, base = kivra
    peer = {"client_id": state.client_id, "client_secret": state.client_secret, "tenant_key": state.tenant_key}
    d = make_dispatcher(
        {"letter": {"digital_first": {"SE": ["kivra"]}}, "kivra": {"base_url": base, **peer}},
        links={"base_url": "https://energia.example.fi/dispatch", "secret": "test-secret"},
    )
    people = [_se("C-2001")] + [_se(f"C-20{i:02d}", national_id=None) for i in range(2, 5)]
    receipts = [d.dispatch("price_change", p, sample_data("price_change", "SE"), now=NOW) for p in people]
    assert all(r.status == "queued" for r in receipts)
    assert d.join(timeout=120)

    assert len(state.received) == 1 and state.received[0]["ssn"] == SE_ID
    sent = state.received[0]["pdf"]
    reader = PdfReader(io.BytesIO(sent), strict=True)
    assert reader.metadata.title == receipts[0].message_id and "/StructTreeRoot" in reader.trailer["/Root"]
    assert "<pdfaid:part>2</pdfaid:part>" in xmp(reader) and "/PageLabels" not in reader.trailer["/Root"]
    assert "Sven Svensson" in text_of(sent) and text_of(sent).count("Storgatan 1") == 1  # one letter only
    paper = sorted((tmp_path / "outbox" / "letter").glob("*.pdf"))
    assert [p.stem for p in paper] == sorted(r.message_id for r in receipts[1:])


def test_a_pdf_not_laid_out_as_typst_writes_it_is_refused_not_cut_wrongly():
    from pypdf import PdfWriter

    from dispatch_letter.split import ChunkPdf, SplitError

    other = io.BytesIO()
    writer = PdfWriter()
    writer.add_blank_page(100, 100)
    writer.write(other)
    pdf = render_letters(three_letters()[:2])[0].part
    for broken in (b"%PDF-1.7\nnot a pdf", other.getvalue(), pdf.replace(b"startxref\n", b"startxref\n9")):
        with pytest.raises(SplitError):
            ChunkPdf(broken).letter_pages()
    assert ChunkPdf(pdf).letter_pages() == [(0, 1), (1, 1)]
