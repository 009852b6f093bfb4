"""Letters through a digital mailbox (a local Kivra) against paper PDFs only, in the same run.

    PYTHONPATH=src:plugins:tests python benchmarks/bench_digital.py [letters] [campaign letters] [people]

1. ``letters`` price-change letters (default 200) are dispatched and delivered twice on the
   embedded default: once with ``[channels.letter] digital_first = {SE = ["kivra"]}`` and a
   local Kivra (tests/peers/kivra.py, every person accepting), once on paper only. Prints the
   milliseconds per letter of each and their ratio. Both typeset the same PDF; the digital run
   sends it over HTTP instead of adding it to a print batch.
2. Eligibility look-ups of a campaign: ``campaign letters`` (default 100,000) letters to
   ``people`` people (default 20,000) ask whether their person has a mailbox, all at once as a
   worker's concurrent deliveries would. Prints the look-up calls made and the people looked up:
   at most one per person per TTL (the cache and the in-flight de-duplication), then the same
   campaign again within the TTL (no look-ups at all).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

from peers.kivra import KivraState, kivra_app
from web_helpers import LiveServer

from dispatch import Dispatcher
from dispatch.samples import sample_data


def person(i: int) -> dict:
    return {
        "id": f"C-{i}",
        "country": "SE",
        "language": "sv",
        "status": "active",
        "national_id": number(i),
        "address": {"name": f"Kund {i}", "street": f"Storgatan {i}", "postal_code": "11122", "city": "Stockholm"},
        "preferred_channels": {"default": "letter"},
    }


def number(i: int) -> str:
    """A valid personnummer for person ``i`` (Luhn check digit)."""
    from stdnum import luhn

    rest = i // 1000
    base = f"{50 + rest // 336:02d}{1 + (rest // 28) % 12:02d}{1 + rest % 28:02d}{i % 1000:03d}"
    return "19" + base + luhn.calc_check_digit(base)


def dispatcher(folder: Path, kivra: tuple[KivraState, str] | None) -> Dispatcher:
    folder.mkdir(parents=True, exist_ok=True)
    channels: dict = {}
    if kivra is not None:
        state, base = kivra
        channels = {
            "letter": {"digital_first": {"SE": ["kivra"]}},
            "kivra": {
                "base_url": base,
                "client_id": state.client_id,
                "client_secret": state.client_secret,
                "tenant_key": state.tenant_key,
            },
        }
    return Dispatcher.from_config(
        overrides={
            "store": {"url": f"sqlite:///{folder / 'dispatch.db'}"},
            "outbox": str(folder / "outbox"),
            "links": {"base_url": "https://energia.example.se/d", "secret": "bench"},
            "channels": channels,
        }
    )


def run(folder: Path, count: int, kivra: tuple[KivraState, str] | None) -> float:
    d = dispatcher(folder, kivra)
    data = sample_data("price_change", "SE")
    people = [person(i) for i in range(count)]
    d.dispatch("price_change", people[0], data)  # warm up: templates, fonts, connections
    assert d.join(timeout=600)
    start = time.perf_counter()
    for p in people[1:]:
        d.dispatch("price_change", p, data)
    assert d.join(timeout=3600)
    elapsed = time.perf_counter() - start
    d.close()
    return elapsed / max(1, count - 1) * 1000


def campaign(folder: Path, kivra: tuple[KivraState, str], letters: int, people: int) -> None:
    d = dispatcher(folder, kivra)
    router = d.digital_first
    state, _ = kivra
    numbers = [number(i) for i in range(people)]
    asks = [numbers[i % people] for i in range(letters)]

    async def ask_all() -> None:
        for start in range(0, len(asks), 5000):  # a worker's concurrent deliveries, in waves
            await asyncio.gather(*(router.eligible("kivra", "SE", n) for n in asks[start : start + 5000]))
        await d.channels["kivra"].aclose()

    for label in ("first run", "again within the TTL"):
        calls_before = state.usermatch_calls
        looked_before = router.people_looked_up["kivra"]
        start = time.perf_counter()
        asyncio.run(ask_all())
        elapsed = time.perf_counter() - start
        looked = router.people_looked_up["kivra"] - looked_before
        print(
            f"campaign, {label}: {letters} letters, {len(set(numbers))} people: "
            f"{state.usermatch_calls - calls_before} look-up calls, {looked} people looked up "
            f"({elapsed:.1f} s)"
        )
        assert looked <= len(set(numbers)), "more than one look-up per person per TTL"

    async def bulk() -> int:
        calls = await router.refresh("kivra", [("SE", n) for n in numbers], force=True)
        await d.channels["kivra"].aclose()
        return calls

    print(f"bulk refresh of all {people} people (Kivra usermatch): {asyncio.run(bulk())} look-up calls")
    d.close()


def main(count: int, letters: int, people: int) -> None:
    state = KivraState()
    server = LiveServer(kivra_app(state)).start()
    state.accepting = {number(i) for i in range(max(count, people))}
    folder = Path(tempfile.mkdtemp(prefix="bench-digital-"))
    try:
        digital = run(folder / "digital", count, (state, server.base))
        paper = run(folder / "paper", count, None)
        print(f"digital mailbox (local Kivra): {digital:.1f} ms per letter; {len(state.received)} received")
        print(f"paper PDF only:                {paper:.1f} ms per letter")
        print(f"ratio digital / paper: {digital / paper:.2f}")
        campaign(folder / "campaign", (state, server.base), letters, people)
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:4]]
    main(*(args + [200, 100_000, 20_000][len(args) :]))
