"""Worker benchmark: 2 ``dispatch worker`` processes draining queued emails to a local SMTP sink,
then queued SMS to a local Twilio-compatible API.

    .venv/bin/python benchmarks/bench_workers.py [--messages 20000] [--sms 10000]
        [--processes 2] [--threads 8] [--pool-size 8]

Redis, PostgreSQL and an aiosmtpd sink (its own process) are started on free ports.
A price-change campaign is queued first; then the workers start. The rate compared with
the baseline runs from the first message the sink accepted until the store shows every
message sent — Redis → claim in PostgreSQL → rebuild the rendered content → SMTP → record
the outcome — as the baseline's clock starts with its connections open. The rate counting
the start of the worker processes (spawn, imports, connections) is printed beside it. In
the same run, the baseline: a bare aiosmtplib loop over as many reused connections as the
workers had between them (processes x pool size) sending the same pre-built bytes to the
same sink — the SMTP ceiling here: the single-process sink is what bounds it (8 or 16
connections make no difference to the bare loop on this machine).
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
from datetime import UTC, datetime
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
    parser.add_argument(
        "--pool-size", type=int, default=8, help="SMTP connections per worker process (the baseline gets them all)"
    )
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
            f'[channels.email]\nhost = "127.0.0.1"\nport = {sink.port}\npool_size = {args.pool_size}\n'
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
        began = time.monotonic()
        worker = _start_workers(config, args, work / "worker.log")
        while not sink.first.value and worker.poll() is None:
            time.sleep(0.01)
        cpu_before = _cpu_seconds(worker.pid, sink.process.pid)
        sink.wait_for(args.messages, timeout=900)
        with Dispatcher.from_config(config) as d:
            while d.store.status_counts().get("sent", 0) < args.messages:
                time.sleep(0.05)
        finished = time.monotonic()
        cpu_used = {
            part: seconds - cpu_before.get(part, 0.0)
            for part, seconds in _cpu_seconds(worker.pid, sink.process.pid).items()
        }
        elapsed = time.perf_counter() - started
        whole = args.messages / elapsed
        # Like the bare loop, whose clock starts with its connections open: from the first message
        # the sink accepted to the last one recorded as sent in the store.
        startup = sink.first.value - began
        running = finished - sink.first.value
        rate = args.messages / running
        print(
            f"workers: {args.messages:,} emails delivered in {elapsed:.1f} s = {whole:,.0f} messages/s counting the "
            f"start of {args.processes} worker processes ({startup:.1f} s to the first message accepted); "
            f"{rate:,.0f} messages/s from the first accepted to the last recorded as sent",
            flush=True,
        )
        print(
            "CPU per message once running: "
            + ", ".join(f"{part} {seconds / args.messages * 1e6:,.0f} us" for part, seconds in cpu_used.items())
            + f" (of {2 * running / args.messages * 1e6:,.0f} us the machine's 2 cores had per message)",
            flush=True,
        )
        before = sink.count.value

        async def send(smtp, email) -> None:
            await smtp.sendmail(email.sender, [email.recipient], email.data)

        connections = args.processes * args.pool_size  # as many as the workers had between them
        clock = asyncio.run(_bare_loop(sink.port, built, connections, send))
        sink.wait_for(before + len(built))
        bare = clock.rate
        print(f"baseline: bare aiosmtplib loop, {connections} connections, same bytes: {bare:,.0f} messages/s")
        print(
            f"RESULT workers: {rate:,.0f} messages/s (Redis -> claim -> SMTP -> recorded, once running) = "
            f"{rate / bare:.2f}x the bare SMTP loop; counting process start-up {whole:,.0f}/s = {whole / bare:.2f}x "
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


def _cpu_seconds(worker_session: int, sink_pid: int) -> dict[str, float]:
    """CPU seconds (user + system) used so far by the worker processes, PostgreSQL and the sink (Linux)."""
    import os

    tick = os.sysconf("SC_CLK_TCK")
    out = {"workers": 0.0, "postgres": 0.0, "sink": 0.0}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
                name, _, rest = f.read().rpartition(")")
        except OSError:
            continue
        fields = rest.split()
        seconds = (int(fields[11]) + int(fields[12])) / tick
        if int(pid) == sink_pid:
            out["sink"] += seconds
        elif int(fields[3]) == worker_session:  # the worker processes' session (start_new_session)
            out["workers"] += seconds
        elif name.endswith("(postgres"):
            out["postgres"] += seconds
    return out


def _start_workers(config: Path, args, log: Path) -> subprocess.Popen:
    """``dispatch worker --processes N --threads M`` in its own session, its log in ``log``."""
    command = [str(BIN), "--config", str(config), "worker", "--processes", str(args.processes)]
    return subprocess.Popen(
        [*command, "--threads", str(args.threads)],
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),
        start_new_session=True,
    )


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
        noon = datetime.now(UTC).replace(hour=10, minute=0)  # daytime in the Nordics: no SMS night rule
        with Dispatcher.from_config(config) as d:
            summary = d.campaign("price_change", texters, sample_data("price_change"), now=noon)
            assert summary.by_channel_language.get(("sms", "fi")) == args.sms, summary.as_dict()
        started = time.perf_counter()
        worker = _start_workers(config, args, work / "worker-sms.log")
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
