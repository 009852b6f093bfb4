"""Worker benchmark: 2 ``dispatch worker`` processes draining queued emails to a local SMTP sink,
then queued SMS to a local Twilio-compatible API.

    .venv/bin/python benchmarks/bench_workers.py [--messages 20000] [--sms 10000] [--processes 2] [--threads 8]

Redis, PostgreSQL and an aiosmtpd sink (its own process) are started on free ports.
A price-change campaign is queued first; then the workers start and the clock runs
until the sink has accepted every message and the store shows each one delivered —
messages per second end to end: Redis → claim in PostgreSQL → render lookup → SMTP →
record the attempt. In the same run, the baseline: a bare aiosmtplib loop with 8 reused
connections sending the same pre-built bytes to the same sink (the SMTP ceiling here).
For SMS the same workers drain a queue of SMS price notices to a local server answering like
Twilio's Messages API (bench_sms.py's), against a bare ``requests`` loop from 8 threads.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_email import SinkProcess, _bare_loop  # noqa: E402
from bench_sms import ACCOUNT, SENDER, TOKEN, ServerProcess, bench_requests  # noqa: E402
from servers import PostgresServer, RedisServer, free_port  # noqa: E402

BIN = Path(sys.executable).parent / "dispatch"


def people(n: int) -> list[dict]:
    from dispatch.samples import sample_recipient

    base = sample_recipient("fi", "FI")
    return [{**base, "id": f"C-{i:07d}", "email": f"asiakas{i}@example.fi"} for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--sms", type=int, default=10_000, help="SMS messages (0: skip the SMS run)")
    args = parser.parse_args()

    import asyncio

    from dispatch import Dispatcher
    from dispatch.samples import sample_data

    work = Path(tempfile.mkdtemp(prefix="dispatch-bench-workers-"))
    redis = RedisServer(free_port(), work / "redis")
    (work / "redis").mkdir()
    postgres = PostgresServer(free_port(), Path(tempfile.mkdtemp(prefix="dispatch-bench-pg-")))
    sink = SinkProcess()
    worker = None
    try:
        redis.start()
        postgres.start()
        config = work / "dispatch.toml"
        config.write_text(
            f'outbox = "{work / "outbox"}"\n[store]\nurl = "{postgres.new_database()}"\n'
            f'[broker]\nurl = "{redis.url}"\n[links]\nsecret = "bench"\n'
            f'[channels.email]\nhost = "127.0.0.1"\nport = {sink.port}\npool_size = 4\n'
            f'local_hostname = "bench.test.invalid"\n',
            encoding="utf-8",
        )
        print(f"queueing {args.messages:,} price-change emails ...", flush=True)
        with Dispatcher.from_config(config) as d:
            summary = d.campaign("price_change", people(args.messages), sample_data("price_change"))
            assert summary.queued == args.messages, summary.as_dict()
            sample_row = d.store.messages_for("C-0000000")[0]
            built = _prebuilt(d, args.messages)
        print(f"starting {args.processes} worker processes x {args.threads} threads ...", flush=True)
        started = time.perf_counter()
        worker = subprocess.Popen(
            [
                str(BIN),
                "--config",
                str(config),
                "worker",
                "--processes",
                str(args.processes),
                "--threads",
                str(args.threads),
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(work / "worker.log", "wb"),  # noqa: SIM115
            start_new_session=True,
        )
        sink.wait_for(args.messages, timeout=900)
        with Dispatcher.from_config(config) as d:
            while d.store.status_counts().get("sent", 0) < args.messages:
                time.sleep(0.05)
        elapsed = time.perf_counter() - started
        rate = args.messages / elapsed
        print(
            f"workers: {args.messages:,} emails delivered end to end in {elapsed:.1f} s = {rate:,.0f} messages/s "
            f"(includes worker start-up)",
            flush=True,
        )
        before = sink.count.value

        async def send(smtp, email) -> None:
            await smtp.sendmail(email.sender, [email.recipient], email.data)

        clock = asyncio.run(_bare_loop(sink.port, built, 8, send))
        sink.wait_for(before + len(built))
        bare = clock.rate
        print(f"baseline: bare aiosmtplib loop, 8 connections, same bytes: {bare:,.0f} messages/s")
        print(
            f"RESULT workers: {rate:,.0f} messages/s end to end = {rate / bare:.2f}x the bare SMTP loop "
            f"({json.dumps({'message_type': sample_row['message_type'], 'processes': args.processes})})"
        )
        if worker.poll() is None:
            import os

            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(60)
        worker = None
        if args.sms:
            sms_rate, bare_sms = _sms_run(args, work, postgres, redis)
            print(f"baseline: bare requests loop, 8 threads, same API: {bare_sms:,.0f} messages/s")
            print(
                f"RESULT workers sms: {sms_rate:,.0f} messages/s end to end = {sms_rate / bare_sms:.2f}x the bare "
                f"requests loop"
            )
    finally:
        if worker is not None and worker.poll() is None:
            import os

            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(60)
        sink.close()
        redis.stop()
        postgres.stop()


def _sms_run(args, work: Path, postgres, redis) -> tuple[float, float]:
    """The same workers draining queued SMS to the local Twilio-compatible API; and the bare baseline."""
    from dispatch import Dispatcher
    from dispatch.samples import sample_data

    api = ServerProcess()
    worker = None
    try:
        config = work / "dispatch-sms.toml"
        config.write_text(
            f'outbox = "{work / "outbox-sms"}"\n[store]\nurl = "{postgres.new_database()}"\n'
            f'[broker]\nurl = "{redis.url}"\n[links]\nsecret = "bench"\n'
            f'[channels.sms]\naccount_sid = "{ACCOUNT}"\nauth_token = "{TOKEN}"\nsender = "{SENDER}"\n'
            f'base_url = "{api.url}"\n',
            encoding="utf-8",
        )
        texters = [
            {**person, "phone": f"+35840{1000000 + i:07d}", "preferred_channels": {"price_change": "sms"}}
            for i, person in enumerate(people(args.sms))
        ]
        print(f"queueing {args.sms:,} price-change SMS ...", flush=True)
        noon = __import__("datetime").datetime.now(__import__("datetime").UTC).replace(hour=10, minute=0)
        with Dispatcher.from_config(config) as d:
            summary = d.campaign("price_change", texters, sample_data("price_change"), now=noon)
            assert summary.by_channel_language.get(("sms", "fi")) == args.sms, summary.as_dict()
        started = time.perf_counter()
        worker = subprocess.Popen(
            [
                str(BIN),
                "--config",
                str(config),
                "worker",
                "--processes",
                str(args.processes),
                "--threads",
                str(args.threads),
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(work / "worker-sms.log", "wb"),  # noqa: SIM115
            start_new_session=True,
        )
        with Dispatcher.from_config(config) as d:
            while d.store.status_counts().get("sent", 0) < args.sms:
                if worker.poll() is not None:
                    raise SystemExit(f"the SMS worker exited; see {work / 'worker-sms.log'}")
                time.sleep(0.05)
        rate = args.sms / (time.perf_counter() - started)
        print(f"workers: {args.sms:,} SMS sent end to end = {rate:,.0f} messages/s (includes start-up)", flush=True)
        import os

        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(60)
        worker = None
        return rate, bench_requests(api.url, min(args.sms, 5000), 8)
    finally:
        if worker is not None and worker.poll() is None:
            import os

            os.killpg(worker.pid, signal.SIGKILL)
        api.close()


def _prebuilt(d, count: int) -> list:
    """The bytes the email channel would send for the same rendered messages."""
    from dispatch.models import OutgoingMessage

    channel = d.channels["email"]
    out = []
    for index in range(count):
        row = d.store.messages_for(f"C-{index:07d}")[0]
        message = OutgoingMessage(
            id=row["id"],
            message_type=row["message_type"],
            category=row["category"],
            channel="email",
            language=row["language"],
            locale=row["locale"],
            country=row["country"],
            recipient_id=row["recipient_id"],
            address=row["address"],
            parts=row["content"]["parts"],
        )
        out.append(channel.build(message))
    return out


if __name__ == "__main__":
    main()
