"""Letters per second: each letter's PDF and the print batch, against a plain Typst loop.

    PYTHONPATH=src:plugins python benchmarks/bench_letter.py [letters] [threads]

Both sides start from the same letters — a price-change letter with a table, its
markup and window address already made — and end with every letter's PDF (PDF/A-2u,
tagged) written to a file and one print-batch PDF of them all:

- baseline, what one would write without dispatch: ``typst.Compiler.compile`` of each
  letter's document in a plain loop, then one compile of all letters for the print
  batch (in parts of 100, joined with pypdf, as memory asks);
- dispatch: the letters handed to the channel's typesetting threads at once, as the
  worker hands over a delivery batch (``Typesetters.run_together`` and
  ``render_letters``: letters waiting together set in one compile and each letter's PDF
  cut out of it), the print batch joined from those compiles (``join_pieces``).

Prints wall-clock letters/s, CPU ms per letter and the ratio, with the load average
(the machine may be shared: a busy neighbour lowers both sides).
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import typst

from dispatch_letter.layout import BATCH_PART, FONTS, LetterHead, document, join_pieces, render_batch, render_letters
from dispatch_letter.markup import html_to_typst
from dispatch_letter.threads import Typesetters

BODY = (
    "<h1>Sähkösopimuksesi hinnat muuttuvat</h1><p>Hei {name},</p>"
    "<p>Sähkösopimuksesi hinnat muuttuvat <b>1.5.2027</b> alkaen, koska sähkön hankintakustannukset ovat nousseet.</p>"
    "<table width='100%'><thead><tr><th width='40%'>Maksu</th><th width='30%'>Nykyinen hinta</th>"
    "<th width='30%'>Uusi hinta</th></tr></thead><tbody>"
    "<tr><td>Energia</td><td>7,49 c/kWh</td><td><b>8,90 c/kWh</b></td></tr>"
    "<tr><td>Perusmaksu</td><td>3,95 €/kk</td><td><b>4,90 €/kk</b></td></tr></tbody></table>"
    "<p><b>Voit irtisanoa sopimuksesi maksutta.</b> Jos et hyväksy uusia hintoja, voit irtisanoa "
    "sähkösopimuksesi ilman irtisanomismaksua ennen kuin muutos tulee voimaan.</p>"
    "<p>Ystävällisin terveisin<br>Pohjolan Energia Oy</p>"
)
HEAD = LetterHead(
    title="",
    language="fi",
    sender_lines=["Pohjolan Energia Oy", "Sähkötie 1", "00100 Helsinki"],
    return_line="Pohjolan Energia Oy, Sähkötie 1, 00100 Helsinki",
    recipient_lines=[],
    info_lines=["Helsinki, 1.5.2027", "Asiakasnumero: C-1001"],
    footer="Pohjolan Energia Oy · 1234567-8 · 010 123 4567 · asiakaspalvelu@pohjolan.example.fi",
)
STANDARD = "a-2u"


def letters(count: int, start: int = 0) -> list[tuple[LetterHead, str]]:
    """Distinct letters (Typst remembers what it set: the same letter twice would flatter both sides)."""
    made = []
    for i in range(start, start + count):
        head = replace(
            HEAD,
            title=f"M-{i}",
            recipient_lines=[f"Asiakas {i}", f"Katu {i}", "00100 Helsinki"],
            info_lines=["Helsinki, 1.5.2027", f"Asiakasnumero: C-{i}"],
        )
        made.append((head, html_to_typst(BODY.format(name=f"Asiakas {i}"), keep_last=True)))
    return made


def documents(batch: list[tuple[LetterHead, str]]) -> tuple[list[tuple[bytes, dict[str, str]]], list]:
    """Each letter's Typst document (source and inputs) and the print batch's parts, made before timing."""
    parts = [batch[i : i + BATCH_PART] for i in range(0, len(batch), BATCH_PART)]
    return [document([(h, b, 1)]) for h, b in batch], [document([(h, b, 1) for h, b in part]) for part in parts]


def baseline(batch: list[tuple[LetterHead, str]], folder: Path) -> None:
    """A plain loop: one ``typst`` compile per letter, then the print batch."""
    from pypdf import PdfWriter

    one, parts = documents(batch)
    fonts = typst.Fonts(include_system_fonts=False, include_embedded_fonts=True, font_paths=[FONTS])
    compiler = typst.Compiler(font_paths=fonts, ignore_system_fonts=True)
    started = time.perf_counter(), time.process_time()
    for (head, _), (source, inputs) in zip(batch, one, strict=True):
        pdf = compiler.compile(source, sys_inputs=inputs, pdf_standards=[STANDARD], pdf_tags=True)
        (folder / f"{head.title}.pdf").write_bytes(pdf)
    writer = PdfWriter()
    for source, inputs in parts:
        writer.append(io.BytesIO(compiler.compile(source, sys_inputs=inputs, pdf_standards=[STANDARD], pdf_tags=False)))
    with open(folder / "batch.pdf", "wb") as handle:
        writer.write(handle)
    return report("baseline (typst.compile per letter, then the batch)", len(batch), started)


def with_dispatch(batch: list[tuple[LetterHead, str]], folder: Path, threads: int) -> tuple[float, float]:
    """The channel's way: letters handed to the typesetting threads at once, set together, cut out."""

    def setter(items):
        return render_letters(items, standard=STANDARD, tagged=True)

    done: list = []

    async def run() -> None:  # returns nothing: asyncio.run would repr a returned list at its end
        pool = Typesetters(threads)
        try:
            done.extend(await asyncio.gather(*(pool.run_together(lambda item=item: item, setter) for item in batch)))
        finally:
            pool.close()

    started = time.perf_counter(), time.process_time()
    asyncio.run(run())
    for typeset in done:
        (folder / f"{typeset.head.title}.pdf").write_bytes(typeset.pdf)
    alone = [t for t in done if t.part is None]  # a letter set alone is set again for the batch (longer ones)
    pieces = [(t.part, t.first_page, t.pages) for t in done if t.part is not None]
    if alone:
        pieces.append((render_batch(alone, standard=STANDARD), 0, sum(t.pages for t in alone)))
    join_pieces(pieces, folder / "batch.pdf")
    return report(f"dispatch ({threads} typesetting threads, letters set together)", len(batch), started)


def report(label: str, count: int, started: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = time.perf_counter() - started[0], time.process_time() - started[1]
    print(f"{label}: {count / wall:,.0f} letters/s, {wall / count * 1000:.2f} ms wall, CPU {cpu / count * 1000:.2f} ms")
    return count / wall, cpu / count


def main(count: int, threads: int) -> None:
    print(f"{count} letters, load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    warm = letters(20, start=10_000_000)  # fonts read, template parsed, code paths warm on both sides
    with tempfile.TemporaryDirectory() as tmp:
        baseline(warm, Path(tmp))
        with_dispatch(warm, Path(tmp), threads)
    rates = []
    for name, run in (("baseline", baseline), ("dispatch", with_dispatch)):
        batch = letters(count, start=len(rates) * count)
        with tempfile.TemporaryDirectory() as tmp:
            args = (batch, Path(tmp)) if name == "baseline" else (batch, Path(tmp), threads)
            rates.append(run(*args))
            assert len(list(Path(tmp).glob("M-*.pdf"))) == count and (Path(tmp) / "batch.pdf").stat().st_size > 0
    (base_rate, base_cpu), (rate, cpu) = rates
    print(
        f"dispatch / baseline: {rate / base_rate:.2f}× letters/s, {base_cpu / cpu:.2f}× less CPU per letter; "
        f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 600, int(sys.argv[2]) if len(sys.argv) > 2 else 2)
