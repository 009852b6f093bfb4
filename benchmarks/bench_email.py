"""Email throughput: EmailChannel vs a bare aiosmtplib loop vs apprise, into one local SMTP sink.

    .venv/bin/python benchmarks/bench_email.py [--messages 5000] [--pool 8]

An aiosmtpd sink runs in its own process (the machine's second core) and
answers every message with 250. The same rendered price-change notices (one per
customer, with the customer's name in it) are sent three ways, each timed from
the first byte to the last 250:

- **EmailChannel**: ``channel.deliver()`` exactly as a ``dispatch worker`` calls it
  — 8 worker threads hand each message to the shared delivery event loop — with a
  pool of 8 connections; per message it builds the MIME message, inlines the CSS
  and checks every header;
- **bare aiosmtplib** (the baseline): 8 connections opened once, 8 tasks sending
  ``EmailMessage`` objects built in the loop from the same parts, with the CSS
  already inlined before the clock starts (so the baseline does less work);
- **apprise**: ``Apprise.notify()`` per message from 8 threads, the way apprise is
  used (it opens an SMTP connection per notification).

It prints messages/s and the ratios. Goal: EmailChannel ≥ 0.75 × the bare loop.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

SENDER = "Pohjolan Energia Oy <asiakaspalvelu@example.fi>"
SENDER_ADDRESS = "asiakaspalvelu@example.fi"


# -- the sink (a separate process) -------------------------------------------------------


def run_sink(ready: Any, count: Any, stop: Any) -> None:
    """An aiosmtpd server on 127.0.0.1 that accepts and counts every message."""
    from aiosmtpd.smtp import SMTP

    class Sink:
        async def handle_DATA(self, server, session, envelope):  # aiosmtpd's hook name
            count.value += 1
            return "250 2.0.0 Ok: queued"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(Sink(), hostname="sink.test.invalid"), "127.0.0.1", 0)
        ready.send(server.sockets[0].getsockname()[1])
        await loop.run_in_executor(None, stop.wait)
        server.close()

    asyncio.run(main())


class SinkProcess:
    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.count = context.Value("q", 0, lock=False)
        self._stop = context.Event()
        parent, child = context.Pipe()
        self.process = context.Process(target=run_sink, args=(child, self.count, self._stop), daemon=True)
        self.process.start()
        if not parent.poll(30):
            raise SystemExit("the SMTP sink did not start")
        self.port: int = parent.recv()

    def wait_for(self, total: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.count.value < total and time.monotonic() < deadline:
            time.sleep(0.005)
        if self.count.value < total:
            raise SystemExit(f"the sink got {self.count.value} of {total} messages")

    def close(self) -> None:
        self._stop.set()
        self.process.join(10)


# -- the messages -----------------------------------------------------------------------


FIRST = ["Matti", "Anna", "Karin", "Ola", "Åsa", "Jörg", "Liisa", "Pekka", "Sofia", "Erik"]
LAST = ["Meikäläinen", "Lindqvist", "Andersson", "Nordmann", "Öberg", "Virtanen", "Ødegård", "Korhonen"]


def rendered_parts(dispatcher: Any) -> dict[str, str]:
    """One real price-change notice (templates, Babel, sample data), rendered by dispatch."""
    from dispatch.samples import sample_data, sample_recipient

    recipient = sample_recipient("en", "FI")
    recipient["address"]["name"] = "NAME_PLACEHOLDER"
    return dispatcher.preview("price_change", recipient, sample_data("price_change", "FI"), channel="email",
                              now=datetime(2027, 3, 1, 10, tzinfo=UTC))


def make_messages(parts: dict[str, str], n: int) -> list[Any]:
    from ulid import ULID

    from dispatch.models import OutgoingMessage

    out = []
    for i in range(n):
        name = f"{FIRST[i % len(FIRST)]} {LAST[i % len(LAST)]}"
        personal = {k: v.replace("NAME_PLACEHOLDER", name) for k, v in parts.items()}
        out.append(OutgoingMessage(
            id=str(ULID()), message_type="price_change", category="statutory", channel="email",
            language="en", locale="en_GB", country="FI", recipient_id=f"C-{100000 + i}",
            address=f"customer{i}@example.fi", parts=personal,
        ))
    return out


# -- the three ways to send ----------------------------------------------------------------


def bench_channel(port: int, messages: list[Any], pool: int, threads: int) -> float:
    """EmailChannel.deliver() from worker threads through the shared delivery loop."""
    from dispatch import Dispatcher

    with tempfile.TemporaryDirectory() as folder:
        dispatcher = Dispatcher.from_config(overrides={
            "store": {"url": f"sqlite:///{folder}/bench.db"},
            "outbox": str(Path(folder) / "outbox"),
            "channels": {"email": {"host": "127.0.0.1", "port": port, "sender": SENDER, "pool_size": pool,
                                   "local_hostname": "bench.test.invalid"}},
        })
        channel = dispatcher.channels["email"]
        runner = dispatcher.runner
        runner.run(channel.deliver(messages[0]))  # warm up: imports, first connection
        work = iter(messages[1:])
        lock = threading.Lock()

        def worker() -> None:
            while True:
                with lock:
                    message = next(work, None)
                if message is None:
                    return
                runner.run(channel.deliver(message), timeout=60)

        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as executor:
            for future in [executor.submit(worker) for _ in range(threads)]:
                future.result()
        elapsed = time.perf_counter() - started
        dispatcher.close()
    return (len(messages) - 1) / elapsed


def bench_bare(port: int, messages: list[Any], pool: int) -> float:
    """The baseline: 8 reused aiosmtplib connections, EmailMessage built per message (CSS pre-inlined)."""
    import aiosmtplib

    from dispatch_email.channel import inline_css

    prepared = [(m.address, m.parts["subject"], m.parts["text"], inline_css(m.parts["html"])) for m in messages]

    async def main() -> float:
        connections = []
        for _ in range(pool):
            smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False,
                                   local_hostname="bench.test.invalid")
            await smtp.connect()
            connections.append(smtp)
        queue: asyncio.Queue = asyncio.Queue()
        for item in prepared:
            queue.put_nowait(item)

        async def sender(smtp: aiosmtplib.SMTP) -> None:
            while not queue.empty():
                to, subject, text, html = queue.get_nowait()
                msg = EmailMessage()
                msg["From"] = SENDER
                msg["To"] = to
                msg["Subject"] = subject
                msg.set_content(text)
                msg.add_alternative(html, subtype="html")
                await smtp.send_message(msg)

        started = time.perf_counter()
        await asyncio.gather(*(sender(s) for s in connections))
        elapsed = time.perf_counter() - started
        for smtp in connections:
            await smtp.quit()
        return len(prepared) / elapsed

    return asyncio.run(main())


def bench_apprise(port: int, messages: list[Any], threads: int) -> float:
    """apprise: one Apprise.notify() per message (a new SMTP connection each), 8 threads."""
    import apprise

    def send(message: Any) -> None:
        url = (f"mailto://127.0.0.1:{port}?smtp=127.0.0.1&mode=insecure&from={SENDER_ADDRESS}"
               f"&to={message.address}&name=Pohjolan%20Energia%20Oy")
        notifier = apprise.Apprise()
        notifier.add(url)
        if not notifier.notify(body=message.parts["html"], title=message.parts["subject"],
                               body_format=apprise.NotifyFormat.HTML):
            raise SystemExit("apprise failed to send")

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as executor:
        list(executor.map(send, messages))
    return len(messages) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--pool", type=int, default=8)
    parser.add_argument("--threads", type=int, default=8, help="worker threads (dispatch worker's default is 8)")
    parser.add_argument("--apprise-messages", type=int, default=None,
                        help="messages for the apprise run (default: the same as --messages)")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))
    os.environ.pop("DISPATCH_SMTP_PASSWORD", None)

    from dispatch import Dispatcher

    with tempfile.TemporaryDirectory() as folder:
        with Dispatcher.from_config(overrides={"store": {"url": f"sqlite:///{folder}/r.db"}}) as renderer:
            parts = rendered_parts(renderer)
    messages = make_messages(parts, args.messages)
    apprise_messages = messages[: args.apprise_messages or args.messages]
    print(f"{args.messages} price-change emails (~{len(messages[0].parts['html']) // 1024} KB of HTML each), "
          f"pool of {args.pool}, {args.threads} worker threads, aiosmtpd sink in its own process; "
          f"{os.cpu_count()} CPUs")

    sink = SinkProcess()
    try:
        results: dict[str, float] = {}
        total = 0
        for name, run, count in (
            ("bare aiosmtplib (baseline)", lambda: bench_bare(sink.port, messages, args.pool), len(messages)),
            ("EmailChannel", lambda: bench_channel(sink.port, messages, args.pool, args.threads), len(messages)),
            ("apprise", lambda: bench_apprise(sink.port, apprise_messages, args.threads), len(apprise_messages)),
        ):
            results[name] = run()
            total += count
            sink.wait_for(total)
            print(f"  {name:<28} {results[name]:8.0f} messages/s")
    finally:
        sink.close()
    base = results["bare aiosmtplib (baseline)"]
    channel = results["EmailChannel"]
    print(f"EmailChannel / bare aiosmtplib: {channel / base:.2f}x   (goal >= 0.75x)")
    print(f"EmailChannel / apprise:         {channel / results['apprise']:.1f}x")
    print(f"sink received {sink.count.value} messages in all")


if __name__ == "__main__":
    main()
