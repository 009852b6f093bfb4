"""``dispatch templates check`` and ``dispatch preview``: the translators' tools."""

from __future__ import annotations

import click
from rich.markup import escape
from rich.table import Table

from ..errors import InputError
from ..models import LANGUAGES
from ..samples import sample_data, sample_recipient
from . import cli
from .base import console, pass_cli, read_json


@cli.group()
def templates() -> None:
    """Work with message templates."""


@templates.command("check")
@click.option(
    "--lang",
    "languages",
    multiple=True,
    type=click.Choice(list(LANGUAGES)),
    help="Only these languages (default: all).",
)
@click.option("--type", "types", multiple=True, help="Only these message types.")
@click.option("--segments", is_flag=True, help="Also list the SMS segment count of every SMS template.")
@pass_cli
def check(cli_ctx, languages: tuple[str, ...], types: tuple[str, ...], segments: bool) -> None:
    """Check every type × channel × language: present, renders, complete, SMS length."""
    from ..checks import LANGUAGES, check_templates

    d = cli_ctx.dispatcher()
    for name in types:
        d.message_type(name)
    report = check_templates(d, languages=languages or LANGUAGES, types=types or None)
    if segments and report.segments:
        table = Table("language", "type", "country", "segments", title="SMS segments with sample data")
        for (language, mtype, country), count in sorted(report.segments.items()):
            table.add_row(language, mtype, country, str(count))
        console.print(table)
    for problem in report.problems:
        console.print(f"[red]✗[/red] {escape(str(problem))}", highlight=False)
    summary = f"{report.checked} type × channel × language combinations, {report.rendered} renders"
    if report.ok:
        console.print(f"[green]✓[/green] templates OK: {summary}")
        return
    console.print(f"[red]{len(report.problems)} problem(s)[/red] in {summary}")
    raise SystemExit(1)


@cli.command()
@click.argument("message_type")
@click.option("--lang", "language", type=click.Choice(list(LANGUAGES)), required=True)
@click.option("--channel", required=True, help="email, sms, letter, phone...")
@click.option(
    "--country",
    type=click.Choice(["FI", "SE", "NO"]),
    default=None,
    help="Country of the sample recipient (default: where the language is most used).",
)
@click.option(
    "--recipient", "recipient_file", type=click.Path(dir_okay=False), help="Recipient JSON (default: a sample)."
)
@click.option("--data", "data_file", type=click.Path(dir_okay=False), help="Data JSON (default: sample data).")
@pass_cli
def preview(cli_ctx, message_type, language, channel, country, recipient_file, data_file) -> None:
    """Render one message type for a channel and language, with sample or given data."""
    d = cli_ctx.dispatcher()
    d.message_type(message_type)
    country = country or {"fi": "FI", "sv": "SE", "nb": "NO", "en": "NO"}.get(language, "FI")
    recipient = read_json(recipient_file, "recipient") if recipient_file else sample_recipient(language, country)
    if data_file:
        data = read_json(data_file, "data")
    else:
        try:
            data = sample_data(message_type, recipient.get("country", country))
        except KeyError:
            raise InputError(f"no sample data for {message_type!r}; pass --data FILE.json") from None
    parts = d.preview(message_type, recipient, data, channel=channel, language=language)
    for part, text in parts.items():
        console.rule(f"{language}/{message_type} · {channel} · {part}")
        console.print(text, markup=False, highlight=False)
