"""SMS throughput: SmsChannel (twilio client) vs a bare requests loop, against a fast local Twilio-compatible API.

    .venv/bin/python benchmarks/bench_sms.py [--messages 5000]

A minimal HTTP/1.1 server (keep-alive, asyncio) in its own process answers
``POST /2010-04-01/Accounts/{sid}/Messages.json`` with 201 and a Twilio message
resource. The same texts go to the same numbers two ways:

- **SmsChannel**: ``channel.deliver()`` exactly as a ``dispatch worker`` calls it —
  8 worker threads hand each message to the shared delivery event loop, where
  the channel's one twilio ``Client`` (aiohttp session, kept-alive connections)
  sends it; per message it also counts GSM-7/UCS-2 segments and checks the number;
- **bare requests** (the baseline): a ``requests.Session`` posting the same form
  (To, From, Body) with the same basic auth in a plain loop, and the same loop
  from 8 threads.

Goal: SmsChannel ≥ 500 messages/s; the ratios to the baselines are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ACCOUNT = "AC" + "0123456789abcdef" * 2
TOKEN = "bench-token"
SENDER = "+358401111111"
TEXTS = [
    "Pohjolan Energia: sähkön hinta muuttuu 1.5.2027. Energia 7,49 -> 8,90 c/kWh. Kysyttävää? 09 4289 1000",
    "Pohjola Energi: ditt elpris ändras 1.5.2027. Energi 79,00 -> 89,50 öre/kWh. Frågor? 08 123 456 00",
    "Pohjola Energi: your electricity price changes on 1 May 2027: 69.90 -> 79.90 øre/kWh. Questions? 22 12 34 56",
]


# -- the server (a separate process) -------------------------------------------------------


def run_server(ready: Any, count: Any, stop: Any) -> None:
    """A small keep-alive HTTP/1.1 server answering like Twilio's Messages API."""

    class Twilio(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while True:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buffer[:end].decode("latin-1")
                length = 0
                for line in head.split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                if len(self.buffer) < end + 4 + length:
                    return
                self.buffer = self.buffer[end + 4 + length :]
                count.value += 1
                sid = f"SM{count.value:032x}"
                body = json.dumps(
                    {
                        "sid": sid,
                        "account_sid": ACCOUNT,
                        "status": "queued",
                        "num_segments": "1",
                        "direction": "outbound-api",
                        "api_version": "2010-04-01",
                    }
                ).encode()
                self.transport.write(
                    b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Twilio, "127.0.0.1", 0, backlog=256)
        ready.send(server.sockets[0].getsockname()[1])
        await loop.run_in_executor(None, stop.wait)
        server.close()

    asyncio.run(main())


class ServerProcess:
    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.count = context.Value("q", 0, lock=False)
        self._stop = context.Event()
        parent, child = context.Pipe()
        self.process = context.Process(target=run_server, args=(child, self.count, self._stop), daemon=True)
        self.process.start()
        if not parent.poll(30):
            raise SystemExit("the Twilio-compatible server did not start")
        self.url = f"http://127.0.0.1:{parent.recv()}"

    def close(self) -> None:
        self._stop.set()
        self.process.join(10)


# -- the two ways to send ------------------------------------------------------------------


def numbers(n: int) -> list[str]:
    return [f"+35840{1000000 + i:07d}" for i in range(n)]


def bench_channel(url: str, n: int, threads: int) -> float:
    """SmsChannel.deliver() from worker threads through the shared delivery loop."""
    from ulid import ULID

    from dispatch import Dispatcher
    from dispatch.models import OutgoingMessage

    messages = [
        OutgoingMessage(
            id=str(ULID()),
            message_type="price_change",
            category="statutory",
            channel="sms",
            language="fi",
            locale="fi_FI",
            country="FI",
            recipient_id=f"C-{i}",
            address=to,
            parts={"text": TEXTS[i % len(TEXTS)]},
        )
        for i, to in enumerate(numbers(n + 1))
    ]
    with tempfile.TemporaryDirectory() as folder:
        dispatcher = Dispatcher.from_config(
            overrides={
                "store": {"url": f"sqlite:///{folder}/bench.db"},
                "outbox": str(Path(folder) / "outbox"),
                "channels": {"sms": {"account_sid": ACCOUNT, "auth_token": TOKEN, "sender": SENDER, "base_url": url}},
            }
        )
        channel, runner = dispatcher.channels["sms"], dispatcher.runtime.runner
        runner.run(channel.deliver(messages[0]))  # warm up: imports, the client, the first connection
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
    return n / elapsed


def bench_requests(url: str, n: int, threads: int) -> float:
    """The baseline: requests.Session posting the same form, in a loop (per thread)."""
    import requests

    endpoint = f"{url}/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    forms = [{"To": to, "From": SENDER, "Body": TEXTS[i % len(TEXTS)]} for i, to in enumerate(numbers(n))]
    local = threading.local()

    def post(form: dict[str, str]) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.auth = (ACCOUNT, TOKEN)
        response = session.post(endpoint, data=form, timeout=15)
        if response.status_code != 201:
            raise SystemExit(f"baseline got {response.status_code}")
        response.json()

    started = time.perf_counter()
    if threads == 1:
        for form in forms:
            post(form)
    else:
        with ThreadPoolExecutor(threads) as executor:
            list(executor.map(post, forms))
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=8, help="worker threads (dispatch worker's default is 8)")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))
    os.environ.pop("TWILIO_AUTH_TOKEN", None)
    print(
        f"{args.messages} SMS, {args.threads} worker threads, local Twilio-compatible server in its own "
        f"process; {os.cpu_count()} CPUs"
    )
    server = ServerProcess()
    try:
        base = bench_requests(server.url, args.messages, 1)
        print(f"  {'bare requests loop (baseline)':<34} {base:8.0f} messages/s")
        threaded = bench_requests(server.url, args.messages, args.threads)
        print(f"  {f'bare requests, {args.threads} threads':<34} {threaded:8.0f} messages/s")
        channel = bench_channel(server.url, args.messages, args.threads)
        print(f"  {'SmsChannel':<34} {channel:8.0f} messages/s")
        expected = 2 * args.messages + args.messages + 1
        if server.count.value != expected:
            raise SystemExit(f"the server answered {server.count.value} requests, expected {expected}")
    finally:
        server.close()
    print(
        f"SmsChannel / bare requests loop: {channel / base:.2f}x   (goal: >= 500 messages/s: "
        f"{'met' if channel >= 500 else 'NOT met'})"
    )
    print(f"SmsChannel / bare requests, {args.threads} threads: {channel / threaded:.2f}x")


if __name__ == "__main__":
    main()
