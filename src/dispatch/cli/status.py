"""``dispatch status``: queues and lag, dead letters, the suppression list, registers, scheduled campaigns."""

from __future__ import annotations

import click
from rich.table import Table

from . import cli
from .base import console, pass_cli, print_json


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@pass_cli
def status(cli_ctx, as_json: bool) -> None:
    """One screen for the operator: each queue's messages (due, held for later, being sent) and lag,
    dead letters, the suppression list's size, whether each do-not-contact register is fresh,
    scheduled campaigns, and whether the broker answers."""
    from ..operator_snapshot import snapshot

    report = snapshot(cli_ctx.dispatcher())
    if as_json:
        print_json(report)
        return
    broker = report["broker"]
    state = "[green]reachable[/green]" if broker["reachable"] else f"[red]unreachable[/red] ({broker['error']})"
    console.print(f"broker {broker['url']}: {state}")
    queues = Table(title="Queues")
    for column in ("queue", "due", "held for later", "sending", "lag"):
        queues.add_column(column, justify="left" if column == "queue" else "right")
    for item in report["queues"]:
        queues.add_row(
            item["queue"],
            str(item["due"]),
            str(item["held"]),
            str(item["sending"]),
            _duration(item["lag_seconds"]) if item["due"] else "-",
        )
    console.print(queues)
    dead = report["dead_letters"]
    console.print(
        f"dead letters: {dead}"
        + (" (`dispatch queue status` lists them, `dispatch queue retry-dead`)" if dead else ""),
        highlight=False,
    )
    size = report["suppression_list"]
    console.print(f"suppression list: {'n/a' if size is None else size}", highlight=False)
    registers = Table(title="Do-not-contact registers")
    for column in ("register", "country", "loaded", "age (days)", "state"):
        registers.add_column(column)
    for item in report["registers"]:
        if item["loaded_at"] is None:
            fresh = "[red]never loaded[/red]"
        elif item["stale"]:
            fresh = f"[red]STALE[/red] (refresh every {item['refresh_days']} d)"
        else:
            fresh = "[green]fresh[/green]"
        registers.add_row(
            item["name"],
            item["country"],
            f"{item['loaded_at']:%Y-%m-%d}" if item["loaded_at"] else "-",
            "-" if item["age_days"] is None else str(item["age_days"]),
            fresh,
        )
    console.print(registers)
    scheduled = report["scheduled_campaigns"]
    line = f"scheduled campaigns: {scheduled['count']}"
    if scheduled["next_release_at"] is not None:
        line += f", next at {scheduled['next_release_at']:%Y-%m-%d %H:%M} UTC (`dispatch campaign list`)"
    console.print(line, highlight=False)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
