"""Letters per second: typesetting one price-change letter at a time, and the print batch.

    PYTHONPATH=src:plugins python benchmarks/bench_letter.py [letters]

Prints wall-clock and CPU milliseconds per letter (single thread), then the same
letters on the channel's typesetting threads, then one batch PDF of them all.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import replace

from dispatch_letter.layout import LetterHead, render_batch, render_letter
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


def letters(count: int):
    for i in range(count):
        head = replace(HEAD, title=f"M-{i}", recipient_lines=[f"Asiakas {i}", f"Katu {i}", "00100 Helsinki"])
        yield head, BODY.format(name=f"Asiakas {i}")


def main(count: int) -> None:
    render_letter(HEAD, html_to_typst(BODY))  # fonts and template loaded once
    wall, cpu = time.perf_counter(), time.process_time()
    done = [render_letter(head, html_to_typst(body)) for head, body in letters(count)]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"one thread: {wall / count * 1000:.1f} ms per letter (CPU {cpu / count * 1000:.1f} ms)")

    async def threaded() -> None:
        pool = Typesetters(2)
        jobs = [pool.run(lambda h=head, b=body: render_letter(h, html_to_typst(b))) for head, body in letters(count)]
        await asyncio.gather(*jobs)
        pool.close()

    wall = time.perf_counter()
    asyncio.run(threaded())
    print(f"two threads: {(time.perf_counter() - wall) / count * 1000:.1f} ms per letter")
    wall = time.perf_counter()
    pdf = render_batch(done)
    print(f"batch PDF: {(time.perf_counter() - wall) / count * 1000:.1f} ms per letter, {len(pdf) // 1024} KB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
