"""Intake benchmark: a price-change campaign from a recipients file into the queue (issue 5).

    .venv/bin/python benchmarks/bench_intake.py                 # 1,000,000 lines, Redis + PostgreSQL
    .venv/bin/python benchmarks/bench_intake.py --lines 100000 --backends embedded,redis-postgres

For each backend it writes the recipients CSV once, runs ``dispatch campaign price_change`` as a
separate process (the command an operator runs), and reports messages per second and the
process's peak RSS. In the same run it measures two baselines, on a sample of the same file and
the same broker, and prints the ratio against each:

- **hand-written loop** (issue 25's baseline, the figure to read): what an application developer
  writes without dispatch — for each recipient, render a price-change email of similar size from a
  short Jinja template with Babel's date and number filters (no sandbox, no cache, no policy, no
  store), then ``actor.send()`` to a Dramatiq broker (Redis where the backend has it);
- **renderer loop** (kept beside it, labelled): dispatch's own templates rendered in full through
  its sandboxed renderer (no variant cache), then ``actor.send()`` per message.

Redis and PostgreSQL are started on free ports in temporary folders (the test suite's fixtures),
so nothing else is needed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from servers import PostgresServer, RedisServer, free_port  # noqa: E402

BIN = Path(sys.executable).parent / "dispatch"
FIRST = ["Matti", "Anna", "Juha", "Laura", "Mikko", "Sanna", "Aino", "Ville", "Tiina", "Pekka"]
LAST = ["Virtanen", "Korhonen", "Mäkinen", "Nieminen", "Mäkelä", "Hämäläinen", "Laine", "Koskinen"]
STREETS = [
    ("Mannerheimintie", "00100", "Helsinki"),
    ("Hämeenkatu", "33100", "Tampere"),
    ("Aurakatu", "20100", "Turku"),
    ("Isokatu", "90100", "Oulu"),
]


def write_recipients(path: Path, lines: int) -> None:
    """Finnish household customers; one in ten prefers SMS, one in twenty has no email (letter)."""
    rng = random.Random(5)
    columns = [
        "id",
        "country",
        "language",
        "status",
        "email",
        "phone",
        "preferred_channels.price_change",
        "address.name",
        "address.street",
        "address.postal_code",
        "address.city",
    ]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for n in range(lines):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            street, postal, city = rng.choice(STREETS)
            language = "sv" if n % 9 == 0 else ("en" if n % 31 == 0 else "fi")
            email = "" if n % 20 == 0 else f"asiakas{n}@example.fi"
            phone = f"04{rng.choice('0456')} {rng.randint(100, 999)} {rng.randint(1000, 9999)}"
            writer.writerow(
                [
                    f"C-{n:07d}",
                    "FI",
                    language,
                    "active",
                    email,
                    phone,
                    "sms" if n % 10 == 0 else "",
                    f"{first} {last}",
                    f"{street} {n % 90 + 1}",
                    postal,
                    city,
                ]
            )


def data_file(path: Path) -> Path:
    from dispatch.samples import sample_data

    data = sample_data("price_change", "FI")
    data["effective_on"] = "2027-09-01"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def run_campaign(config: Path, recipients: Path, data: Path, workdir: Path) -> dict:
    """Run the CLI; peak RSS is sampled over the campaign process and its children."""
    import psutil

    started = time.perf_counter()
    out, err = workdir / "campaign.out", workdir / "campaign.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [
                str(BIN),
                "--config",
                str(config),
                "campaign",
                "price_change",
                "--recipients",
                str(recipients),
                "--data",
                str(data),
                "--id",
                f"bench-{int(time.time())}",
                "--json",
            ],
            stdout=stdout,
            stderr=stderr,
            cwd=workdir,
        )
        watched = psutil.Process(process.pid)
        peak = 0
        while process.poll() is None:
            try:
                rss = watched.memory_info().rss + sum(c.memory_info().rss for c in watched.children(recursive=True))
                peak = max(peak, rss)
            except psutil.Error:
                pass
            time.sleep(0.2)
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"campaign failed:\n{err.read_text()[-3000:]}")
    summary = json.loads(out.read_text())
    return {"summary": summary, "seconds": elapsed, "peak_rss_mb": peak / 2**20}


def naive_loop(config: Path, recipients: Path, data: Path, sample: int) -> float:
    """The naive way: render every message in full (no variant cache) and ``actor.send()`` each one."""
    import dramatiq

    from dispatch import Dispatcher
    from dispatch.models import Decision
    from dispatch.pipeline import Inputs
    from dispatch.recipient_files import read_recipients

    d = Dispatcher.from_config(config, overrides={"templates": {"render_cache": False}})
    actor = dramatiq.Actor(
        lambda mid, parts: None, broker=d.broker, actor_name="naive_send", queue_name="naive", priority=0, options={}
    )
    mtype = d.types.get("price_change")
    values = d.validate_data("price_change", json.loads(data.read_text(encoding="utf-8")))
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    count = 0
    for _, row in read_recipients(recipients):
        person = d.parse_recipient(row)
        channel = "email" if person.email else "letter"
        decision = Decision(True, "price_change", "statutory", channel, person.language, [], "legal_obligation")
        rendered = d.pipeline.render(Inputs(mtype, person, values, started_at), decision, row["id"])
        actor.send(row["id"], {k: len(v) for k, v in rendered.parts.items()})
        count += 1
        if count >= sample:
            break
    rate = count / (time.perf_counter() - started)
    d.close(timeout=0)
    return rate


#: The hand-written baseline's template: a price-change email (subject, text and HTML) as an
#: application developer would write it in one file, with Babel's filters.
HAND_TEMPLATE = """Hintamuutos {{ effective_on | date }} alkaen – {{ company }}
Hei {{ name }},

sähkösopimuksesi hinnat muuttuvat {{ effective_on | date }} alkaen, koska {{ reason }}.
{% for e in prices %}
{{ e.name }}: {{ e.old | number }} {{ e.unit }} -> {{ e.new | number }} {{ e.unit }} ({{ e.change | percent }})
{% endfor %}
Hinnat sisältävät arvonlisäveron {{ vat | number }} %. Voit irtisanoa sopimuksesi ennen muutosta.
Ystävällisin terveisin
{{ company }}
<!doctype html><html lang="fi"><head><meta charset="utf-8"><title>Hintamuutos</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { margin: 0; padding: 0; background: #f4f4f4; color: #1a1a1a; font-family: Arial, Helvetica, sans-serif; }
.wrapper { width: 100%; background: #f4f4f4; padding: 16px 0; }
.card { max-width: 600px; margin: 0 auto; background: #ffffff; border-radius: 4px; }
.header { padding: 20px 24px; background: #0b4f6c; color: #ffffff; font-size: 18px; font-weight: bold; }
.content { padding: 24px; font-size: 16px; line-height: 1.5; }
.content h1 { font-size: 22px; line-height: 1.3; margin: 0 0 16px 0; }
.prices { width: 100%; border-collapse: collapse; margin: 16px 0; }
.prices th { text-align: left; font-weight: bold; border-bottom: 2px solid #0b4f6c; padding: 6px 4px; }
.prices td { border-top: 1px solid #dddddd; padding: 6px 4px; }
.prices td.num, .prices th.num { text-align: right; }
.footer { padding: 16px 24px; font-size: 12px; color: #555555; line-height: 1.4; }
.footer a { color: #0b4f6c; }
@media (max-width: 480px) { .content { padding: 16px; } .prices td, .prices th { font-size: 14px; } }
</style></head>
<body style="font-family:Arial,sans-serif;margin:0;padding:0;background:#f4f4f4">
<table role="presentation" width="100%" style="max-width:600px;margin:0 auto;background:#ffffff">
<tr><td style="padding:24px"><h1 style="font-size:22px">Hintamuutos {{ effective_on | date }} alkaen</h1>
<p>Hei {{ name | e }},</p><p>sähkösopimuksesi hinnat muuttuvat {{ effective_on | date }} alkaen,
koska {{ reason | e }}.</p>
<table style="width:100%;border-collapse:collapse"><tr><th style="text-align:left">Hinta</th>
<th style="text-align:right">Nyt</th><th style="text-align:right">Uusi</th></tr>
{% for e in prices %}<tr><td style="padding:4px 0;border-top:1px solid #ddd">{{ e.name | e }}</td>
<td style="text-align:right;border-top:1px solid #ddd">{{ e.old | number }} {{ e.unit }}</td>
<td style="text-align:right;border-top:1px solid #ddd">{{ e.new | number }} {{ e.unit }}</td></tr>
{% endfor %}</table><p>Hinnat sisältävät arvonlisäveron {{ vat | number }} %. Voit irtisanoa sopimuksesi
ennen muutosta. Lisätietoja: <a href="{{ terms_url }}">{{ terms_url }}</a></p>
<p>Ystävällisin terveisin<br>{{ company | e }}</p></td></tr>
<tr><td class="footer">{{ company | e }} · Sähkötie 1, 00100 Helsinki · Y-tunnus 1234567-8 ·
asiakaspalvelu@example.fi · +358 9 4289 1000 (arkisin 8–16). Tämä on lakisääteinen ilmoitus
sopimuksesi hinnan muutoksesta, eikä sitä voi tilata pois. Voit valita, saatko ilmoitukset
sähköpostilla, tekstiviestillä vai kirjeellä: <a href="{{ terms_url }}/valinnat">viestintävalintasi</a>.
Sopimusehdot: <a href="{{ terms_url }}">{{ terms_url }}</a>.</td></tr></table></body></html>
"""


def handwritten_loop(broker_url: str, recipients: Path, data: Path, sample: int) -> tuple[float, int]:
    """The hand-written baseline: csv + Jinja + Babel + ``actor.send()``; (messages/s, bytes per message)."""
    from datetime import date
    from decimal import Decimal

    import dramatiq
    import jinja2
    from babel.dates import format_date
    from babel.numbers import format_decimal, format_percent
    from dramatiq.brokers.stub import StubBroker

    if broker_url.startswith("redis"):
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=broker_url)
    else:
        broker = StubBroker()
    actor = dramatiq.Actor(
        lambda *args: None, broker=broker, actor_name="hand_send", queue_name="hand", priority=0, options={}
    )
    env = jinja2.Environment(autoescape=False)
    env.filters["date"] = lambda value: format_date(value, format="short", locale="fi_FI")
    env.filters["number"] = lambda value: format_decimal(value, format="#,##0.00", locale="fi_FI")
    env.filters["percent"] = lambda value: format_percent(value, locale="fi_FI")
    template = env.from_string(HAND_TEMPLATE)
    notice = json.loads(data.read_text(encoding="utf-8"))
    reason = notice["reason"]["fi"] if isinstance(notice["reason"], dict) else notice["reason"]
    prices = []
    for element in notice["price_elements"]:
        name = element["name"]["fi"] if isinstance(element["name"], dict) else element["name"]
        old, new = Decimal(element["old"]), Decimal(element["new"])
        prices.append({"name": name, "unit": element["unit"], "old": old, "new": new, "change": (new - old) / old})
    effective_on = date.fromisoformat(notice["effective_on"])
    started = time.perf_counter()
    count = size = 0
    with recipients.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            text = template.render(
                name=row["address.name"],
                effective_on=effective_on,
                reason=reason,
                prices=prices,
                vat=Decimal("25.5"),
                company="Pohjolan Energia Oy",
                terms_url="https://energia.example.fi/sopimusehdot",
            )
            actor.send(row["id"], row["email"] or row["address.street"], text)
            size += len(text)
            count += 1
            if count >= sample:
                break
    rate = count / (time.perf_counter() - started)
    broker.close()
    return rate, size // max(count, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--backends", default="redis-postgres,sqlite-redis,embedded")
    parser.add_argument("--naive-sample", type=int, default=20_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dispatch-bench-"))
    recipients = work / "recipients.csv"
    print(f"writing {args.lines:,} recipients to {recipients} ...", flush=True)
    write_recipients(recipients, args.lines)
    data = data_file(work / "data.json")
    results = {}
    redis = postgres = None
    try:
        for backend in args.backends.split(","):
            folder = work / backend
            folder.mkdir()
            if backend == "embedded":
                store, broker_url = f"sqlite:///{folder / 'dispatch.db'}", "memory://"
            elif backend == "sqlite-redis":
                redis = redis or RedisServer(free_port(), work / "redis")
                (work / "redis").mkdir(exist_ok=True)
                if redis.process is None:
                    redis.start()
                store, broker_url = f"sqlite:///{folder / 'dispatch.db'}", redis.url
            else:
                redis = redis or RedisServer(free_port(), work / "redis")
                (work / "redis").mkdir(exist_ok=True)
                if redis.process is None:
                    redis.start()
                if postgres is None:
                    postgres = PostgresServer(free_port(), Path(tempfile.mkdtemp(prefix="dispatch-bench-pg-")))
                    postgres.start()
                store, broker_url = postgres.new_database(), redis.url
            config = folder / "dispatch.toml"
            config.write_text(
                f'outbox = "{folder / "outbox"}"\n[store]\nurl = "{store}"\n[broker]\n'
                f'url = "{broker_url}"\ndrain_timeout = 0\n[links]\nsecret = "bench"\n',
                encoding="utf-8",
            )
            print(f"[{backend}] dispatch campaign price_change --recipients ({args.lines:,} lines) ...", flush=True)
            outcome = run_campaign(config, recipients, data, folder)
            rate = outcome["summary"]["total"] / outcome["seconds"]
            print(
                f"[{backend}] {outcome['summary']['total']:,} messages in {outcome['seconds']:.1f} s = "
                f"{rate:,.0f} messages/s; peak RSS {outcome['peak_rss_mb']:.0f} MB; queued "
                f"{outcome['summary']['queued']:,}",
                flush=True,
            )
            print(
                f"[{backend}] naive loop (render + actor.send per message on the same broker, "
                f"{args.naive_sample:,} messages) ...",
                flush=True,
            )
            naive = naive_loop(config, recipients, data, args.naive_sample)
            print(f"[{backend}] renderer loop: {naive:,.0f} messages/s", flush=True)
            hand, size = handwritten_loop(broker_url, recipients, data, args.naive_sample)
            print(f"[{backend}] hand-written loop: {hand:,.0f} messages/s ({size:,} characters each)", flush=True)
            results[backend] = (rate, outcome, naive, hand)
        for backend, (rate, outcome, naive, hand) in results.items():
            print(
                f"RESULT {backend}: {rate:,.0f} messages/s = {rate / hand:.2f}x the hand-written Jinja + "
                f"actor.send() loop ({hand:,.0f}/s), {rate / naive:.2f}x the renderer loop ({naive:,.0f}/s); "
                f"peak RSS {outcome['peak_rss_mb']:.0f} MB (issue 25 goals: sqlite-redis >= 2x the hand-written "
                f"loop, redis-postgres >= 15,000 messages/s and <= 250 MB)"
            )
    finally:
        if redis is not None:
            redis.stop()
        if postgres is not None:
            postgres.stop()
        if os.environ.get("KEEP_BENCH") is None:
            import shutil

            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
