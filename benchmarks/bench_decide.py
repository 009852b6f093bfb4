"""How fast is the policy engine? ``decide()`` over 100,000 varied recipients.

Run it from the project root::

    .venv/bin/python benchmarks/bench_decide.py            # the full run (about half a minute)
    .venv/bin/python benchmarks/bench_decide.py --n 20000 --profile

It generates a realistic, seeded mix of recipients as mappings (countries, languages,
statuses, ages, consents and ledger entries, preferences, contact histories, register
matches) and of message types and data, validates them once with
``parse_recipient`` / ``validate_data`` (as a campaign does), and then times, on one
core:

* ``decide()`` over the pre-validated inputs (goal: at least 50,000 decisions/s);
* a trivial baseline measured in the same run: a bare function that only reads the
  recipient's fields, called the same way, so the ratio says how much work a
  decision costs beyond a loop that touches its input;
* ``parse_recipient()`` + ``decide()`` from the raw mappings, which is what a caller
  that starts from JSON or CSV rows pays (phone and email validation dominate it).

Each timing is the best of ``--repeat`` runs (the median is printed too; the baseline
gets at least 5 runs, the parse + decide loop at most 2). The machine's load average is
printed with the results: on a shared machine the absolute numbers move with it.
``--min-rate N`` makes the exit status 1 when the decide rate is below N.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from dispatch.config import LanguagesConfig, PolicyConfig
from dispatch.messages import BUILTIN_TYPES, MessageData, MessageType, validate_data
from dispatch.models import Consent, Recipient
from dispatch.policy import Contact, Facts, LanguageChains, PolicySettings, RegisterInfo, decide
from dispatch.recipients import parse_recipient
from dispatch.samples import sample_data
from dispatch_registers import BUILTIN_REGISTERS

GOAL = 50_000
TYPES = {t.name: t for t in BUILTIN_TYPES}
#: Share of each message type in the mix: a retailer sends mostly campaigns and notices.
TYPE_MIX = {
    "marketing": 40,
    "price_change": 15,
    "renewal_offer": 10,
    "newsletter": 10,
    "survey": 10,
    "terms_change": 8,
    "contract_confirmation": 7,
}
COUNTRY_MIX = {"FI": 50, "SE": 30, "NO": 20}
STATUS_MIX = {"active": 70, "former": 15, "prospect": 15}
#: Phone numbers: (prefix, digits after it).
MOBILE = {"FI": ("+35840", 7), "SE": ("+4670", 7), "NO": ("+4741", 6)}
LANDLINE = {"FI": ("+35892", 6), "SE": ("+468", 7), "NO": ("+4722", 6)}
POSTAL = {"FI": "{:05d}", "SE": "{:05d}", "NO": "{:04d}"}
CITY = {"FI": "Helsinki", "SE": "Stockholm", "NO": "Oslo"}
REGISTERS_BY_COUNTRY = {
    country: [cls.name for cls in BUILTIN_REGISTERS if cls.country == country] for country in COUNTRY_MIX
}
#: Decisions are asked for at moments spread over two years (calling and quiet hours vary).
FIRST_MOMENT = datetime(2026, 1, 1, tzinfo=UTC)


def pick(rng: random.Random, mix: dict[str, int]) -> str:
    return rng.choices(list(mix), weights=list(mix.values()))[0]


def _moment(rng: random.Random, start: datetime, days: int) -> datetime:
    return start + timedelta(seconds=rng.randrange(days * 86_400))


def make_recipient(rng: random.Random, index: int, now: datetime) -> dict[str, Any]:
    """One recipient mapping (SPEC §3) with a realistic spread of fields."""
    country = pick(rng, COUNTRY_MIX)
    status = pick(rng, STATUS_MIX)
    today = now.date()
    person: dict[str, Any] = {"id": f"R-{index:06d}", "country": country, "status": status}
    if rng.random() < 0.25:
        person["language"] = rng.choice(("fi", "sv", "en"))
    if rng.random() < 0.1:
        person["kind"] = "business"
    if rng.random() < 0.95:
        person["birth_date"] = (today - timedelta(days=rng.randrange(15 * 365, 90 * 365))).isoformat()
    if status == "former":
        person["last_invoice_paid_on"] = (today - timedelta(days=rng.randrange(10, 36 * 31))).isoformat()
    if status == "prospect" and rng.random() < 0.95:
        person["data_verified_on"] = (today - timedelta(days=rng.randrange(0, 366))).isoformat()
    if rng.random() < 0.85:
        person["email"] = f"person{index}@example.{country.lower()}"
    if rng.random() < 0.8:
        prefix, digits = (MOBILE if rng.random() < 0.75 else LANDLINE)[country]
        person["phone"] = f"{prefix}{rng.randrange(10 ** (digits - 1), 10**digits)}"
    if rng.random() < 0.9:
        person["address"] = {
            "name": f"Person {index}",
            "street": f"Street {rng.randrange(1, 200)}",
            "postal_code": POSTAL[country].format(rng.randrange(1000, 9999)),
            "city": CITY[country],
        }
    if rng.random() < 0.3:
        prefs = {"default": rng.choice(("email", "sms", "letter"))}
        if rng.random() < 0.4:
            prefs[rng.choice(("price_change", "marketing", "service"))] = rng.choice(("sms", "email", "phone"))
        person["preferred_channels"] = prefs
    consents = []
    for _ in range(rng.choice((0, 0, 1, 1, 2, 3, 4))):
        consents.append(
            {
                "purpose": rng.choice(("marketing", "marketing", "marketing", "newsletter", "survey")),
                "channel": rng.choice(("email", "sms", "all", "letter", "phone")),
                "granted": rng.random() < 0.7,
                "at": _moment(rng, now - timedelta(days=3 * 365), 3 * 365).isoformat(),
                "source": "import",
            }
        )
    if consents:
        person["consents"] = consents
    person["marketing_blocked"] = rng.random() < 0.03
    person["newsletter"] = rng.random() < 0.4
    return person


def make_facts(rng: random.Random, country: str, now: datetime) -> Facts:
    """History, ledger and register matches as the Dispatcher would read them from the store."""
    history = tuple(
        Contact(
            at=_moment(rng, now - timedelta(days=400), 400),
            message_type="marketing",
            channel=rng.choice(("email", "sms", "letter")),
            category=rng.choice(("marketing", "marketing", "service", "statutory")),
        )
        for _ in range(rng.choice((0, 0, 0, 1, 2, 3, 4, 6)))
    )
    ledger: tuple[Consent, ...] = ()
    if rng.random() < 0.2:
        ledger = (
            Consent(
                purpose=rng.choice(("marketing", "newsletter")),
                channel=rng.choice(("email", "sms", "all")),
                granted=rng.random() < 0.5,
                at=_moment(rng, now - timedelta(days=365), 365),
                source="preference_centre",
            ),
        )
    listed: frozenset[str] = frozenset()
    if rng.random() < 0.1:
        home = REGISTERS_BY_COUNTRY[country]
        other = [name for c, names in REGISTERS_BY_COUNTRY.items() if c != country for name in names]
        listed = frozenset({rng.choice(home if rng.random() < 0.8 else other)})
    if not (history or ledger or listed):
        return Facts()
    return Facts(history, ledger, listed)


def make_data(rng: random.Random) -> dict[tuple[str, str], list[MessageData]]:
    """A few validated data variants per (type, country): notices that meet the lead time and some that don't."""
    pool: dict[tuple[str, str], list[MessageData]] = {}
    for name, message_type in TYPES.items():
        for country in COUNTRY_MIX:
            variants = []
            for _ in range(4):
                data = dict(sample_data(name, country))
                if name in ("price_change", "terms_change"):
                    data["effective_on"] = (date(2026, 1, 1) + timedelta(days=rng.randrange(20, 800))).isoformat()
                if name == "contract_confirmation":
                    data["signed_on"] = (date(2026, 1, 1) + timedelta(days=rng.randrange(0, 720))).isoformat()
                if name == "renewal_offer" and rng.random() < 0.5:
                    data["current_product"] = "Spot"  # another product: marketing rules apply
                variants.append(validate_data(message_type, data))
            pool[(name, country)] = variants
    return pool


Case = tuple[MessageType, Any, MessageData, datetime, Facts]


def make_cases(n: int, seed: int) -> tuple[list[Case], list[dict[str, Any]]]:
    """``n`` cases as (type, recipient mapping, data, now, facts), and the mappings alone."""
    rng = random.Random(seed)
    data_pool = make_data(rng)
    cases: list[Case] = []
    mappings = []
    for i in range(n):
        now = _moment(rng, FIRST_MOMENT, 730)
        mapping = make_recipient(rng, i, now)
        name = pick(rng, TYPE_MIX)
        country = mapping["country"]
        cases.append((TYPES[name], mapping, rng.choice(data_pool[(name, country)]), now, make_facts(rng, country, now)))
        mappings.append(mapping)
    return cases, mappings


def address(channel: str, recipient: Recipient) -> Any:
    """The built-in channels' address rule (``ChannelPlugin.address``)."""
    if channel == "email":
        return recipient.email
    if channel == "sms":
        return recipient.phone if recipient.phone_is_mobile else None
    if channel == "phone":
        return recipient.phone
    if channel == "letter":
        return recipient.address
    return None


def has_parts(message_type: str, channel: str, language: str) -> bool:
    return True


def baseline(message_type: MessageType, recipient: Recipient, data: MessageData, now: datetime, facts: Facts) -> tuple:
    """The trivial baseline: read the fields a decision looks at, decide nothing."""
    return (
        message_type.name,
        recipient.country,
        recipient.language,
        recipient.status,
        recipient.birth_date,
        recipient.email,
        recipient.phone,
        recipient.address,
        recipient.preferred_channels,
        recipient.consents,
        recipient.marketing_blocked,
        facts.history,
    )


def time_loop(run: Callable[[], Any], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="recipients (default 100,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing; the best counts (default 3)")
    parser.add_argument("--seed", type=int, default=2027)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the decide loop")
    parser.add_argument("--min-rate", type=float, default=0, help="exit 1 if decisions/s is below this")
    args = parser.parse_args(argv)

    settings = PolicySettings.from_config(PolicyConfig())
    languages = LanguagesConfig()
    chains = LanguageChains(
        fallback={k: tuple(v) for k, v in languages.fallback.items()},
        statutory={k: tuple(v) for k, v in languages.statutory.items()},
    )
    registers = {cls.name: RegisterInfo(cls.name, cls.country, tuple(cls.channels)) for cls in BUILTIN_REGISTERS}

    print(f"generating {args.n:,} recipients (seed {args.seed}) ...", flush=True)
    raw_cases, mappings = make_cases(args.n, args.seed)
    start = time.perf_counter()
    people = [parse_recipient(m) for m in mappings]
    parse_seconds = time.perf_counter() - start
    cases = [(mt, who, data, now, facts) for (mt, _, data, now, facts), who in zip(raw_cases, people, strict=True)]

    def run_decide() -> list:
        return [
            decide(
                mt,
                person,
                data,
                now,
                settings=settings,
                chains=chains,
                address=address,
                has_parts=has_parts,
                facts=facts,
                registers=registers,
            )
            for mt, person, data, now, facts in cases
        ]

    def run_baseline() -> list:
        return [baseline(mt, person, data, now, facts) for mt, person, data, now, facts in cases]

    def run_parse_and_decide() -> list:
        return [
            decide(
                mt,
                parse_recipient(mapping),
                data,
                now,
                settings=settings,
                chains=chains,
                address=address,
                has_parts=has_parts,
                facts=facts,
                registers=registers,
            )
            for mt, mapping, data, now, facts in raw_cases
        ]

    decisions = run_decide()  # warm the calendar caches, as a long-running worker has them
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        run_decide()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)

    decide_times = time_loop(run_decide, args.repeat)
    baseline_times = time_loop(run_baseline, max(5, args.repeat))  # cheap: more runs steady it
    full_times = time_loop(run_parse_and_decide, min(2, args.repeat))

    n = args.n
    rate = n / min(decide_times)
    base_rate = n / min(baseline_times)
    full_rate = n / min(full_times)
    allowed = sum(d.allowed for d in decisions)
    reasons = Counter(code for d in decisions for code in d.reasons)
    types = Counter(d.message_type for d in decisions)
    channels = Counter(d.channel for d in decisions)

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"python {sys.version.split()[0]}, one core, {n:,} decisions per run, best of {args.repeat} "
        f"(machine load average {load} on {os.cpu_count()} cores)"
    )
    print(f"mix: {', '.join(f'{k} {v:,}' for k, v in types.most_common())}")
    print(f"channels: {', '.join(f'{k} {v:,}' for k, v in channels.most_common())}")
    print(
        f"allowed {allowed:,} ({allowed / n:.0%}); reasons: {', '.join(f'{k} {v:,}' for k, v in reasons.most_common())}"
    )
    print(
        f"send_after set on {sum(d.send_after is not None for d in decisions):,}, "
        f"deadline on {sum(d.deadline is not None for d in decisions):,}"
    )
    print()
    print(
        f"decide():                   {rate:>10,.0f} decisions/s   ({1e6 / rate:5.1f} µs each; "
        f"median run {n / statistics.median(decide_times):,.0f}/s)"
    )
    print(f"baseline (read fields):     {base_rate:>10,.0f} calls/s       ({1e6 / base_rate:5.2f} µs each)")
    print(f"ratio decide / baseline:    {base_rate / rate:>10.1f}x the baseline's time")
    print(f"parse_recipient alone:      {n / parse_seconds:>10,.0f} recipients/s")
    print(f"parse_recipient + decide(): {full_rate:>10,.0f} decisions/s   ({1e6 / full_rate:5.1f} µs each)")
    verdict = "meets" if rate >= GOAL else "MISSES"
    print(f"goal {GOAL:,} decisions/s: {verdict}")
    return 1 if rate < args.min_rate else 0


if __name__ == "__main__":
    raise SystemExit(main())
