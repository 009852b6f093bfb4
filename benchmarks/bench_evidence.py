"""Evidence pack benchmark (issue 21): how long a pack of N messages takes, and its memory.

    .venv/bin/python benchmarks/bench_evidence.py                       # 100,000 messages, SQLite
    .venv/bin/python benchmarks/bench_evidence.py --messages 1000000 --backend postgresql

It fills a store with one price-change campaign of N messages (rendered through the real
pipeline for a few recipients per language, then copied with fresh ids and per-person values:
the variant cache makes that exactly what a real campaign stores), then, each in its own
process so that peak RSS is the pack's own:

- ``dispatch.evidence.write_pack`` for the campaign (manifest CSV + JSON, variants, summary,
  SHA-256 of every file, zipped);
- the baseline: a plain ``SELECT`` of the same rows streamed to a CSV file (no content, no
  history, no hashes) — what a hand-written export would do.

It prints seconds, messages per second and peak RSS of both, and the ratio. Run it at two
sizes to see that the pack's memory does not grow with N.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

NOW = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)
CAMPAIGN = "bench-evidence"


def fill(url: str, messages: int, folder: Path) -> None:
    """A campaign of ``messages`` stored messages (queued), without delivering them."""
    from dispatch import Dispatcher
    from dispatch.ids import new_id
    from dispatch.pipeline import Inputs
    from dispatch.samples import sample_data, sample_recipient

    overrides = {"store": {"url": url}, "outbox": str(folder / "outbox"), "links": {"secret": "bench"}}
    with Dispatcher.from_config(overrides=overrides) as d:
        data = d.validate_data("price_change", sample_data("price_change", "FI"))
        mtype = d.types.get("price_change")
        d.store.save_campaign(
            {
                "id": CAMPAIGN,
                "message_type": "price_change",
                "data": {},
                "source": None,
                "created_at": NOW,
                "updated_at": NOW,
            }
        )
        templates = []
        for language, country in (("fi", "FI"), ("sv", "FI"), ("en", "FI")):
            person = d.parse_recipient({**sample_recipient(language, country), "language": language})
            inputs = Inputs(mtype, person, data, NOW)
            templates.append(d.pipeline.record(inputs, d.pipeline.decide(inputs), new_id(), keep_data=False))
        batch = []
        for i in range(messages):
            base = templates[i % len(templates)]
            content = dict(base.content or {})
            if "t" in content:  # this person's own values
                content["t"] = {k: f"{v}{i}" if "@" not in v else f"x{i}.{v}" for k, v in content["t"].items()}
            batch.append(
                replace(
                    base,
                    id=new_id(),
                    recipient_id=f"C-{i:07d}",
                    idempotency_key=f"{CAMPAIGN}:C-{i:07d}",
                    campaign_id=CAMPAIGN,
                    content=content,
                )
            )
            if len(batch) == 5000:
                d.store.insert_messages(batch, d.pipeline.variants.variants)
                batch = []
        if batch:
            d.store.insert_messages(batch, d.pipeline.variants.variants)
        d.runtime.store.close()


def pack(url: str, output: str) -> dict:
    from dispatch.evidence import write_pack
    from dispatch.render import Renderer
    from dispatch.render_cache import assemble
    from dispatch.store import Store

    store = Store(url, assemble=lambda r, v, t: assemble(r, v, t, Renderer.tidy))
    started = time.perf_counter()
    summary = write_pack(store, output, campaign_id=CAMPAIGN)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "messages": summary.messages, "bytes": Path(output).stat().st_size}


def baseline(url: str, output: str) -> dict:
    from sqlalchemy import select

    from dispatch import schema
    from dispatch.store import Store

    store = Store(url)
    t = schema.messages
    columns = [c for c in t.c if c.name not in ("content", "address")]
    started = time.perf_counter()
    count = 0
    with store.engine.connect() as conn, open(output, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([c.name for c in columns])
        result = conn.execution_options(stream_results=True, yield_per=5000).execute(
            select(*columns).where(t.c.campaign_id == CAMPAIGN).order_by(t.c.id)
        )
        for row in result:
            writer.writerow(row)
            count += 1
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "messages": count, "bytes": Path(output).stat().st_size}


def child(kind: str, url: str, output: str) -> None:
    result = (pack if kind == "pack" else baseline)(url, output)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def run(kind: str, url: str, output: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--url", url, "--output", str(output)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--child", choices=("pack", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url, args.output)
        return
    with tempfile.TemporaryDirectory(prefix="bench-evidence-") as tmp:
        folder = Path(tmp)
        server = None
        if args.backend == "postgresql":
            from servers import PostgresServer, free_port

            # its own folder under /tmp: the postgres user cannot enter this run's private folder
            server = PostgresServer(free_port(), Path(tempfile.mkdtemp(prefix="dispatch-bench-pg-")))
            server.start()
            url = server.new_database()
        else:
            url = f"sqlite:///{folder / 'dispatch.db'}"
        try:
            started = time.perf_counter()
            fill(url, args.messages, folder)
            print(f"filled {args.messages:,} messages ({args.backend}) in {time.perf_counter() - started:.1f} s")
            packed = run("pack", url, folder / "pack.zip")
            plain = run("baseline", url, folder / "plain.csv")
        finally:
            if server is not None:
                server.stop()
                shutil.rmtree(server.folder, ignore_errors=True)
    for name, r in (("evidence pack", packed), ("baseline SQL→CSV", plain)):
        rate = r["messages"] / r["seconds"] if r["seconds"] else 0
        print(
            f"{name:>18}: {r['messages']:,} messages in {r['seconds']:.2f} s ({rate:,.0f}/s), "
            f"{r['bytes'] / 1e6:.1f} MB, peak RSS {r['peak_rss_mb']:.0f} MB"
        )
    print(f"ratio: the evidence pack takes {packed['seconds'] / plain['seconds']:.1f}× the plain dump")


if __name__ == "__main__":
    main()
