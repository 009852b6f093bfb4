"""``dispatch registers import|status``: do-not-contact registers."""

from __future__ import annotations

import click
from rich.table import Table

from ..errors import InputError
from ..recipients import parse_moment
from ..register_book import describe_unavailable
from . import cli
from .base import console, pass_cli


@cli.group()
def registers() -> None:
    """Load and inspect do-not-contact registers (ASML, NIX, Reservasjonsregisteret)."""


@registers.command("import")
@click.argument("register")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--file-date", help="The date the register file was produced (default: now).")
@pass_cli
def import_(cli_ctx, register, file, file_date) -> None:
    """Replace REGISTER with the entries in FILE (CSV), atomically."""
    d = cli_ctx.dispatcher()
    when = None
    if file_date:
        try:
            when = parse_moment(file_date)
        except ValueError:
            raise InputError(f"--file-date {file_date!r} is not a date") from None
    result = d.registers.import_file(register, file, file_date=when)
    console.print(
        f"{register}: {result['entries']} entries loaded (generation {result['generation']})", highlight=False
    )


@registers.command("status")
@pass_cli
def status(cli_ctx) -> None:
    """Show each register's load date, size and whether it is older than its refresh period.

    A register never loaded or stale blocks the letter and phone marketing it covers
    (``register_unavailable``); each such register gets a plain sentence saying so.
    """
    d = cli_ctx.dispatcher()
    table = Table(title="Do-not-contact registers")
    for column in ("register", "country", "channels", "file date", "entries", "age (days)", "state"):
        table.add_column(column)
    items = d.registers.status()
    for item in items:
        state = "[red]STALE[/red]" if item["stale"] else "[green]fresh[/green]"
        if item["loaded_at"] is None:
            state = "[red]never loaded[/red]"
        table.add_row(
            item["name"],
            item["country"],
            ", ".join(item["channels"]),
            item["file_date"].date().isoformat() if item["file_date"] else "-",
            str(item["entries"]),
            "-" if item["age_days"] is None else str(item["age_days"]),
            f"{state} (refresh every {item['refresh_days']} d)",
        )
    console.print(table)
    for line in describe_unavailable(items):
        console.print(f"[red]•[/red] {line}", highlight=False)
