"""Webhook delivery: events per second from the outbox to a local receiver, against a bare POST loop.

    .venv/bin/python benchmarks/bench_webhooks.py [--events 10000] [--concurrency 64]

The receiver is an aiohttp web server in another process on 127.0.0.1 that checks
every request's Standard Webhooks signature with its own few lines of ``hmac`` and
answers 204. Two measurements in the same run, against that same receiver:

- **baseline**: a bare ``aiohttp`` loop POSTing the same number of bodies with the
  same concurrency over kept-alive connections, each signed just before it goes
  (the floor: no store, no retries);
- **dispatch**: the events emitted on a :class:`~dispatch.Dispatcher`'s event bus
  (SQLite store), written to the ``webhook_deliveries`` outbox in batches, claimed,
  signed, POSTed by the sender thread and recorded ``delivered`` — timed from the first
  emit until the store says every one was delivered. The time the emitting code itself
  spends per event (what a worker or campaign pays) is printed too.

Goal: ≥ 1,000 events/s; the ratio to the baseline is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import multiprocessing
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "plugins")]

from dispatch import Dispatcher  # noqa: E402
from dispatch.events import Event  # noqa: E402
from dispatch.webhooks import counts, generate_secret, sign  # noqa: E402

GOAL = 1000.0


def _receiver(secret: str, ready: Any, count: Any) -> None:
    """The receiving process: verify each webhook's signature, count the genuine ones, answer 204."""
    from aiohttp import web

    key = base64.b64decode(secret.split("_", 1)[1])

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        h = request.headers
        mac = hmac.new(key, f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + body, hashlib.sha256)
        expected = "v1," + base64.b64encode(mac.digest()).decode()
        if not any(hmac.compare_digest(s, expected) for s in h["webhook-signature"].split(" ")):
            return web.Response(status=401)
        with count.get_lock():
            count.value += 1
        return web.Response(status=204)

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        ready.put(site._server.sockets[0].getsockname()[1])  # the port the OS chose
        await asyncio.Event().wait()

    asyncio.run(main())


def rate(label: str, count: int, seconds: float) -> float:
    per_second = count / seconds
    print(f"  {label:<44} {count:>6} events in {seconds:6.2f} s = {per_second:8.0f}/s")
    return per_second


def bench_baseline(url: str, secret: str, bodies: list[tuple[str, bytes]], concurrency: int) -> float:
    import aiohttp

    async def run() -> None:
        limit = asyncio.Semaphore(concurrency)
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def post(event_id: str, body: bytes) -> None:
                async with limit:
                    headers = {"content-type": "application/json", **sign(secret, event_id, body)}
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        if response.status != 204:
                            raise SystemExit(f"baseline: the receiver answered {response.status}")

            await asyncio.gather(*(post(i, b) for i, b in bodies))

    start = time.perf_counter()
    asyncio.run(run())
    return rate(f"baseline: bare aiohttp POST loop ({concurrency} at once)", len(bodies), time.perf_counter() - start)


def bench_dispatch(url: str, secret: str, events: list[Event], concurrency: int, folder: Path) -> float:
    overrides = {
        "store": {"url": f"sqlite:///{folder / 'dispatch.db'}"},
        "outbox": str(folder / "outbox"),
        "worker": {"journal": str(folder / "journal")},
        "webhooks": {"endpoints": [url], "secret": secret, "concurrency": concurrency, "poll_interval": 0.05},
    }
    with Dispatcher.from_config(overrides=overrides, autoload_plugins=True) as d:
        d.store  # opened and migrated before the clock starts  # noqa: B018
        d.runtime.start_webhooks()
        start = time.perf_counter()
        for offset in range(0, len(events), 500):  # in bursts, as a campaign's batches emit them
            d.events.emit(events[offset : offset + 500])
        recorded = time.perf_counter() - start
        while counts(d.store).get("delivered", 0) < len(events):
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        left = counts(d.store)
    if left != {"delivered": len(events)}:
        raise SystemExit(f"dispatch: outbox ended as {left}")
    print(f"  on the recording path (emit → outbox buffer): {recorded / len(events) * 1e6:.0f} µs per event")
    return rate(f"dispatch: outbox → sender → receiver ({concurrency} at once)", len(events), seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    secret = generate_secret()
    context = multiprocessing.get_context("spawn")
    ready, count = context.Queue(), context.Value("q", 0)
    receiver = context.Process(target=_receiver, args=(secret, ready, count), daemon=True)
    receiver.start()
    try:
        url = f"http://127.0.0.1:{ready.get(timeout=60)}/hook"
        now = datetime.now(UTC)
        make = [
            Event("message.sent", now, {"message_id": f"01JBENCH{i:018d}", "status": "sent", "channel": "email"})
            for i in range(args.events)
        ]
        bodies = [(e.id, json.dumps(e.as_dict(), separators=(",", ":")).encode()) for e in make]
        print(f"webhooks: {args.events} events to a local aiohttp receiver that verifies every signature")
        bench_baseline(url, secret, bodies[: min(500, len(bodies))], args.concurrency)  # warm-up
        floor = bench_baseline(url, secret, bodies, args.concurrency)
        with tempfile.TemporaryDirectory() as folder:
            delivered = bench_dispatch(url, secret, make, args.concurrency, Path(folder))
        expected = 2 * args.events + min(500, args.events)
        if count.value != expected:
            raise SystemExit(f"the receiver verified {count.value} webhooks, not {expected}")
    finally:
        receiver.terminate()
        receiver.join(10)
    print(f"  dispatch / bare POST loop: {delivered / floor:.2f}x")
    ok = delivered >= GOAL
    print(f"goal ≥ {GOAL:.0f} events/s: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
