"""Returned mail: DSNs parsed per second, by the parser and through the SMTP listener.

    .venv/bin/python benchmarks/bench_inbound.py [--dsns 3000]

The DSNs are the test fixtures as Postfix, Exim, Exchange and Gmail write them
(and RFC 3464's multi-recipient example), each copy with its own message id.
Three measurements in the same run:

- **baselines**: bare ``email.message_from_bytes(raw)`` of the same DSNs with the
  ``compat32`` policy the parser uses (parsing only, nothing read from the result:
  the floor), and with ``policy.default`` (whose header registry the parser avoids);
- **parser**: :func:`dispatch_email.reports.parse_returned_mail` — the parse plus
  finding the delivery-status part, the original message, the VERP id, the events;
- **listener**: the same DSNs sent over SMTP from 2 other processes (stdlib
  ``smtplib``, one session each for many transactions, ``MAIL FROM:<>``), as MTAs would, to
  the inbound listener on 127.0.0.1, which parses each and hands its events to a
  collecting ``on_feedback``.

Goal: ≥ 500 DSNs/s for the parser and the listener; the ratio to the baseline is printed.
"""

from __future__ import annotations

import argparse
import email
import multiprocessing
import smtplib
import sys
import tempfile
import threading
import time
from email import policy
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "plugins")]

from ulid import ULID  # noqa: E402

from dispatch_email.inbound import start_listener  # noqa: E402
from dispatch_email.reports import parse_returned_mail  # noqa: E402
from dispatch_email.verp import ReturnPath  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "inbound"
KINDS = {
    "postfix_bounce.eml": "01JD8Z6Q3V4X5Y6Z7A8B9C0D1E",
    "postfix_delayed.eml": "01JD8Z9K2M3N4P5Q6R7S8T9V0W",
    "exim_dsn.eml": "01JD8ZB1C2D3E4F5G6H7J8K9M0",
    "exchange_ndr.eml": "01JD8ZD7E8F9G0H1J2K3M4N5P6",
    "gmail_dsn.eml": "01JD8ZE9F0G1H2J3K4M5N6P7Q8",
    "rfc3464_multi.eml": None,
}
BOUNCES = "bounces@example.fi"
GOAL = 500.0


def make_dsns(count: int) -> list[tuple[bytes, str, str]]:
    """``(raw, VERP recipient, message id)`` for ``count`` DSNs, the fixtures in turn."""
    templates = [((FIXTURES / name).read_bytes().replace(b"\n", b"\r\n"), old) for name, old in KINDS.items()]
    dsns = []
    for i in range(count):
        raw, old = templates[i % len(templates)]
        new = str(ULID())
        if old:
            raw = raw.replace(old.encode(), new.encode())
        dsns.append((raw, f"bounces+{new}@example.fi", new))
    return dsns


def rate(label: str, count: int, seconds: float) -> float:
    per_second = count / seconds
    print(f"  {label:<34} {count:>6} DSNs in {seconds:6.2f} s = {per_second:8.0f}/s")
    return per_second


def bench_baseline(dsns: list[tuple[bytes, str, str]], which: policy.Policy, label: str) -> float:
    start = time.perf_counter()
    for raw, _, _ in dsns:
        email.message_from_bytes(raw, policy=which)
    return rate(f"baseline: message_from_bytes, {label}", len(dsns), time.perf_counter() - start)


def bench_parser(dsns: list[tuple[bytes, str, str]]) -> float:
    return_path = ReturnPath.parse(BOUNCES)
    start = time.perf_counter()
    events = 0
    for raw, rcpt, message_id in dsns:
        parsed = parse_returned_mail(raw, return_path=return_path, envelope_recipients=[rcpt])
        events += len(parsed.events)
        if parsed.events[0].message_id != message_id:
            raise SystemExit(f"wrong message id: {parsed.events[0].message_id} != {message_id}")
    return rate("parser (parse_returned_mail)", len(dsns), time.perf_counter() - start)


def _send_share(port: int, share: list[tuple[bytes, str, str]], start: Any) -> None:
    """One MTA: one SMTP session (stdlib smtplib) sending its share of the DSNs, ``MAIL FROM:<>``."""
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        client.ehlo("mta.bench.test")
        start.wait(120)  # every sender connected: the clock starts now
        for raw, rcpt, _ in share:
            client.sendmail("", [rcpt], raw)


def bench_listener(dsns: list[tuple[bytes, str, str]], connections: int = 2) -> float:
    got: list[str] = []
    lock = threading.Lock()

    def on_feedback(event) -> None:
        with lock:
            got.append(event.message_id)

    with tempfile.TemporaryDirectory() as folder:
        listener = start_listener(BOUNCES, on_feedback, Path(folder) / "kept", port=0)
        try:
            context = multiprocessing.get_context("spawn")
            barrier = context.Barrier(connections + 1)
            senders = [
                context.Process(target=_send_share, args=(listener.port, dsns[i::connections], barrier))
                for i in range(connections)
            ]
            for process in senders:
                process.start()  # starting processes and connecting is not timed
            barrier.wait(120)
            start = time.perf_counter()
            for process in senders:
                process.join(300)
            seconds = time.perf_counter() - start
        finally:
            listener.stop()
        kept = listener.stats["kept_aside"]
    if any(p.exitcode != 0 for p in senders) or kept or len(set(got)) != len(dsns):
        raise SystemExit(f"listener: {len(set(got))} messages matched of {len(dsns)}, {kept} kept aside")
    return rate(f"listener over SMTP ({connections} connections)", len(dsns), seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsns", type=int, default=3000)
    args = parser.parse_args()
    dsns = make_dsns(args.dsns)
    print(f"returned mail: {args.dsns} DSNs ({', '.join(KINDS)})")
    bench_parser(dsns[: min(300, len(dsns))])  # warm-up: header registry, regexes
    floor = bench_baseline(dsns, policy.compat32, "compat32")
    modern = bench_baseline(dsns[:1000], policy.default, "policy.default")  # slow: a third is enough
    parsed = bench_parser(dsns)
    listened = bench_listener(dsns)
    print(
        f"  parser / bare compat32 parse: {parsed / floor:.2f}x   parser / bare policy.default parse: "
        f"{parsed / modern:.2f}x   listener / bare compat32 parse: {listened / floor:.2f}x"
    )
    ok = parsed >= GOAL and listened >= GOAL
    print(f"goal ≥ {GOAL:.0f} DSNs/s: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
