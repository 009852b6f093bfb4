"""How many preference pages per second does ``dispatch serve`` answer?

Run it from the project root::

    .venv/bin/python benchmarks/bench_web.py                 # 10 s of load after a short set-up
    .venv/bin/python benchmarks/bench_web.py --seconds 20 --connections 32 --min-rate 300

It sends a marketing email to ``--customers`` sample customers on the embedded
default (SQLite store, in a temporary folder), starts the real ``dispatch serve``
(uvicorn, one process) on a free port, and then requests their preference pages —
each request a different customer's signed link, so every page verifies a token,
reads the message and the consent ledger, and renders the form — from
``--connections`` keep-alive connections for ``--seconds`` seconds. The load
generator is ``wrk`` when it is installed, else a small asyncio client in this
process (which takes part of the CPU the server could have had, so the rate it
reports is a lower bound). Prints requests/s, the share of 200 answers, and the
machine's load average; ``--min-rate N`` makes the exit status 1 below N (goal: 300).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "plugins")]

from dispatch import Dispatcher  # noqa: E402
from dispatch.samples import sample_data, sample_recipient  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(folder: Path, port: int, customers: int) -> tuple[Path, list[str]]:
    config = folder / "dispatch.toml"
    config.write_text(
        f'outbox = "{folder / "outbox"}"\n[store]\nurl = "sqlite:///{folder / "dispatch.db"}"\n'
        f'[links]\nbase_url = "http://127.0.0.1:{port}"\nsecret = "bench-secret"\n',
        encoding="utf-8",
    )
    paths = []
    now = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)
    people = [("fi", "FI"), ("sv", "SE"), ("en", "NO"), ("en", "FI")]
    with Dispatcher.from_config(config) as d:
        for i in range(customers):
            language, country = people[i % len(people)]
            person = {**sample_recipient(language, country), "id": f"B-{i:05d}", "language": language}
            receipt = d.dispatch("marketing", person, sample_data("marketing", country), now=now)
            paths.append(d.links.preferences_url(receipt.message_id).split(str(port), 1)[1])
    return config, paths


def start_server(config: Path, port: int, folder: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "plugins")])}
    command = ["-c", "from dispatch.cli import main; main()", "--config", str(config), "serve", "--port", str(port)]
    process = subprocess.Popen([sys.executable, *command], cwd=folder, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("dispatch serve did not start")


async def _client(port: int, paths: list[str], stop_at: float, counts: dict[str, int], seed: int) -> None:
    rng = random.Random(seed)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() < stop_at:
            path = rng.choice(paths)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
            await reader.readexactly(length)
            counts["ok" if status == 200 else "other"] += 1
    finally:
        writer.close()


def load_with_asyncio(port: int, paths: list[str], seconds: float, connections: int) -> tuple[float, int, int]:
    counts = {"ok": 0, "other": 0}

    async def run() -> float:
        start = time.monotonic()
        stop_at = start + seconds
        await asyncio.gather(*(_client(port, paths, stop_at, counts, i) for i in range(connections)))
        return time.monotonic() - start

    elapsed = asyncio.run(run())
    return (counts["ok"] + counts["other"]) / elapsed, counts["ok"], counts["other"]


def load_with_wrk(
    port: int, paths: list[str], seconds: float, connections: int, folder: Path
) -> tuple[float, int, int]:
    script = folder / "paths.lua"
    quoted = ",".join(f'"{p}"' for p in paths)
    script.write_text(
        f"local paths = {{{quoted}}}\nlocal i = 0\n"
        "request = function() i = i + 1; return wrk.format('GET', paths[(i % #paths) + 1]) end\n"
        "done = function(summary, latency, requests)\n"
        "  io.write(string.format('COMPLETE %d %d\\n', summary.requests, summary.errors.status))\nend\n",
        encoding="utf-8",
    )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{int(seconds)}s", "-s", str(script), f"http://127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))
    total, bad = (int(x) for x in re.search(r"COMPLETE (\d+) (\d+)", out).groups())
    return rate, total - bad, bad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--client", choices=("auto", "wrk", "asyncio"), default="auto")
    parser.add_argument("--min-rate", type=float, default=0)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="dispatch-bench-web-"))
    port = free_port()
    started = time.monotonic()
    config, paths = prepare(folder, port, args.customers)
    print(f"set-up: {len(paths)} customers with a sent email in {time.monotonic() - started:.1f} s")
    server = start_server(config, port, folder)
    try:
        for path in paths[:20]:  # warm up: templates compiled, connections open
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10).read()
        use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk"))
        if use_wrk:
            rate, ok, other = load_with_wrk(port, paths, args.seconds, args.connections, folder)
        else:
            rate, ok, other = load_with_asyncio(port, paths, args.seconds, args.connections)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        shutil.rmtree(folder, ignore_errors=True)
    client = "wrk" if use_wrk else "asyncio client in-process"
    print(
        f"preference page: {rate:,.0f} requests/s over {args.seconds:.0f} s, {args.connections} connections "
        f"({client}); {ok:,} × 200, {other:,} other"
    )
    print("load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores")
    if other or rate < args.min_rate:
        print(f"below the goal of {args.min_rate:,.0f} requests/s, or errors" if rate < args.min_rate else "errors")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
