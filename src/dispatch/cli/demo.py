"""``dispatch demo``: the whole pipeline on generated customers, with no server."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..clock import now_utc
from ..lifecycle import HANDED_OVER, Status
from ..register_book import describe_unavailable
from . import cli
from .base import console, pass_cli


@cli.command()
@click.option(
    "--customers",
    default=3000,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="How many customers to generate.",
)
@click.option("--seed", default=7, show_default=True, help="Random seed for the generated customers.")
@pass_cli
def demo(cli_ctx, customers: int, seed: int) -> None:
    """Run a realistic bulk send on generated customers across FI/SE/NO in fi/sv/en.

    Uses the configured store, queue and channels — with no configuration, the
    embedded defaults: ./dispatch.db, an in-process queue, and files in ./outbox.
    A re-run starts clean: it removes the SQLite store and the outbox an earlier demo
    made here (and nothing else; what it keeps, it names).
    """
    from ..campaign import run_campaign
    from ..config import load_config
    from ..demo import demo_steps, generate_customers, mark_folder, prepare_folder, run_id

    folder = prepare_folder(load_config(cli_ctx.config_path))
    d = cli_ctx.dispatcher()
    now = now_utc()
    today = now.astimezone(d.policy.countries["FI"].tz).date()
    people = generate_customers(customers, today=today, seed=seed)
    steps = demo_steps(today)
    plan = [
        (step, [p for p in people if (step.country is None or p.get("country") == step.country) and step.select(p)])
        for step in steps
    ]
    total = sum(len(group) for _, group in plan)
    run = run_id(now)
    console.print(
        f"[bold]dispatch demo[/bold]: {customers} generated customers, {len(steps)} campaigns, "
        f"{total} messages to decide · store {d.config.store.url} · broker {d.config.broker.url}"
    )
    if folder.removed:
        console.print(
            f"Starting clean: removed what the previous demo made ({', '.join(folder.removed)}).",
            highlight=False,
            soft_wrap=True,
        )
    if folder.kept:
        console.print(
            f"Keeping {', '.join(folder.kept)} (not made by a demo): this run's messages are added to what is there.",
            highlight=False,
            soft_wrap=True,
        )
    summaries = []
    started = time.perf_counter()
    columns = (TextColumn("{task.description:<34}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        deciding = progress.add_task("Deciding, rendering, queuing", total=total)
        for step, group in plan:
            if not group:
                continue
            progress.update(deciding, description=step.title)
            summaries.append(
                run_campaign(
                    d.intake,
                    step.message_type,
                    group,
                    step.data,
                    now=now,
                    campaign_id=f"{run}-{step.message_type}-{step.country or 'all'}",
                    progress=lambda n: progress.advance(deciding, n),
                )
            )
        progress.update(deciding, description="Decided and queued")
        decided_in = time.perf_counter() - started
        queued = sum(s.queued for s in summaries)
        delivering = progress.add_task("Delivering", total=queued)
        while True:
            due, scheduled = d.store.pending_counts(now_utc())
            progress.update(delivering, completed=max(0, queued - due - scheduled))
            if due == 0:
                break
            time.sleep(0.2)
        progress.update(delivering, completed=queued - scheduled, description="Delivered")
    elapsed = time.perf_counter() - started
    batch = d.channels["letter"].finish_batch() if "letter" in d.channels else None
    mark_folder(d.config, run, folder)
    _report(d, run, summaries, (decided_in, elapsed), batch)


def _letters(d, run: str) -> None:
    """How many letters went to digital mailboxes, and what paper costs (``[channels.letter] postage``)."""
    from ..formatting import CURRENCY

    routes = d.store.letter_routes(run)
    if not routes:
        return
    paper = sum(n for (_, route), n in routes.items() if route == "paper")
    providers: Counter = Counter()
    for (_, route), n in routes.items():
        if route != "paper":
            providers[route] += n
    if d.digital_first is None:
        console.print(
            f"Letters: {paper} on paper (digital mailboxes are off: [channels.letter] digital_first).",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    else:
        went = ", ".join(f"{name} {n}" for name, n in providers.most_common()) or "none"
        console.print(
            f"Letters: {sum(providers.values())} to digital mailboxes ({went}), {paper} on paper.",
            highlight=False,
            soft_wrap=True,
        )
    postage = getattr(getattr(d.channels.get("letter"), "settings", None), "postage", None) or {}
    if not postage:
        console.print(
            "Set [channels.letter] postage = { FI = 1.95, SE = 22.0, NO = 25.0 } to see what paper costs.",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        return
    for country in sorted({c for c, _ in routes}):
        price = postage.get(country)
        if price is None:
            continue
        digital = sum(n for (c, route), n in routes.items() if c == country and route != "paper")
        printed = routes.get((country, "paper"), 0)
        currency = CURRENCY.get(country, "EUR")
        console.print(
            f"  {country}: {printed} paper letters cost {printed * price:.2f} {currency}; "
            f"the {digital} digital ones would have cost {digital * price:.2f} {currency} on paper.",
            highlight=False,
            soft_wrap=True,
        )


def _report(d, run: str, summaries, timing: tuple[float, float], batch) -> None:
    rows = d.store.summary(campaign_prefix=run)
    sent: Counter = Counter()
    held: Counter = Counter()
    failed: Counter = Counter()
    reasons: Counter = Counter()
    for row in rows:
        status = Status(row["status"])
        if status in HANDED_OVER:
            sent[(row["channel"], row["language"])] += row["count"]
        elif status.is_open:
            held[(row["channel"], row["language"])] += row["count"]
        elif status in (Status.FAILED, Status.DEAD):
            failed[(row["channel"], row["language"])] += row["count"]
        elif status == Status.SUPPRESSED:
            for reason in row["reasons"] or []:
                reasons[reason] += row["count"]
    table = Table(title="Sent per channel and language", show_footer=True)
    languages = sorted({lang for _, lang in sent | held | failed})
    table.add_column("channel", footer="total")
    for language in languages:
        table.add_column(
            language, justify="right", footer=str(sum(n for (_, lang), n in sent.items() if lang == language))
        )
    table.add_column("held for later", justify="right", footer=str(sum(held.values())))
    table.add_column("failed", justify="right", footer=str(sum(failed.values())))
    for channel in sorted({c for c, _ in sent | held | failed}):
        table.add_row(
            channel,
            *[str(sent.get((channel, lang), 0)) for lang in languages],
            str(sum(n for (c, _), n in held.items() if c == channel)),
            str(sum(n for (c, _), n in failed.items() if c == channel)),
        )
    console.print(table)
    _letters(d, run)
    why = Table(title="Suppressed, and why (a message can have several reasons)")
    why.add_column("reason")
    why.add_column("messages", justify="right")
    for reason, count in reasons.most_common():
        why.add_row(reason, str(count))
    console.print(why)
    if reasons.get("register_unavailable"):
        for line in describe_unavailable(d.registers.status()):
            console.print(f"[red]•[/red] {line}", highlight=False)
    invalid = [e for s in summaries for e in s.errors]
    if invalid:
        console.print(
            f"[yellow]{len(invalid)} recipient(s) rejected as invalid[/yellow], e.g.: {escape(invalid[0])}",
            highlight=False,
        )
    total = sum(s.total for s in summaries)
    decided_in, elapsed = timing
    delivered = sum(sent.values())
    console.print(
        f"{total} decisions in {decided_in:.1f} s ({total / decided_in:.0f}/s); "
        f"{delivered} messages sent, all done in {elapsed:.1f} s."
    )
    if sum(held.values()):
        console.print(
            f"{sum(held.values())} message(s) wait for calling hours or SMS quiet hours to end; "
            "they stay in the store and go out on a later run (or `dispatch worker`)."
        )
    outbox = Path(d.config.path(d.config.outbox)).resolve()
    console.print(f"\n[bold]Outbox:[/bold] {outbox}")
    for name, pattern in (("email", "*.eml"), ("letter", "*.pdf"), ("sms", "*.jsonl"), ("phone", "*.jsonl")):
        folder = outbox / name
        files = sorted(folder.glob(pattern)) if folder.is_dir() else []
        if files:
            count = len(files) if pattern != "*.jsonl" else sum(1 for f in files for _ in f.open(encoding="utf-8"))
            what = {
                "email": ".eml files",
                "letter": "letter PDFs",
                "sms": "SMS (JSON lines)",
                "phone": "call tasks (JSON lines)",
            }[name]
            console.print(f"  {folder}/  {count} {what}")
    if batch:
        console.print(
            f"  print batch for the print house: {batch['file']} ({batch['letters']} letters, {batch['pages']} pages)"
        )
    console.print(
        "Emails are named <type>-<language>-<message id>.eml; SMS and call tasks are JSON lines with"
        " the customer's id.\n"
        "See one customer's messages and the reasons: [bold]dispatch history FI-000001[/bold]"
    )
    base_url = d.config.links.base_url
    if not base_url.startswith("https://"):
        console.print(
            f"\nThe links in these messages point at {base_url} (`dispatch serve` on this machine), not https: "
            "so the emails carry a List-Unsubscribe link but no One-Click header (RFC 8058 allows one-click "
            "unsubscribe only over https). In production, set [links] base_url to your https address.",
            highlight=False,
            markup=False,
        )
