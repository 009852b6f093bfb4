"""``dispatch templates check`` and ``dispatch preview``: the translators' tools."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from ..errors import InputError
from ..models import LANGUAGES
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
@click.option("--channel", "channels", multiple=True, help="Only these channels (default: every channel of the type).")
@click.option("--lang", "languages", multiple=True, help="Only these languages: fi, sv, nb, en (default: all).")
@click.option("--all-languages", is_flag=True, help="Every language side by side (the default without --lang).")
@click.option(
    "--country",
    default=None,
    help="Country of the sample recipient: FI, SE, NO (default: where each language is used).",
)
@click.option(
    "--recipient", "recipient_file", type=click.Path(dir_okay=False), help="Recipient JSON (default: a sample)."
)
@click.option("--data", "data_file", type=click.Path(dir_okay=False), help="Data JSON (default: sample data).")
@click.option(
    "--variant",
    "variants",
    multiple=True,
    help="A variant that changes the legal text: business, northern-norway, other-product, no-name (repeatable).",
)
@click.option("--out", "out_file", type=click.Path(dir_okay=False), help="Write the page here (an .html file).")
@click.option("--open", "open_page", is_flag=True, help="Open the page in the browser (written to a temporary file).")
@pass_cli
def preview(
    cli_ctx,
    message_type: str,
    channels: tuple[str, ...],
    languages: tuple[str, ...],
    all_languages: bool,
    country: str | None,
    recipient_file: str | None,
    data_file: str | None,
    variants: tuple[str, ...],
    out_file: str | None,
    open_page: bool,
) -> None:
    """Show a message as the customer sees it, every language side by side.

    With --out or --open: one self-contained HTML page (email, SMS with its segment
    count, the letter's pages as images, the call script). Without: the rendered
    parts as text in the terminal.
    """
    from ..preview_page import build_preview, render_page

    if all_languages and languages:
        raise InputError("give --lang or --all-languages, not both")
    d = cli_ctx.dispatcher()
    recipient = read_json(recipient_file, "recipient") if recipient_file else None
    data = read_json(data_file, "data") if data_file else None
    page = build_preview(
        d,
        message_type,
        channels=channels,
        languages=languages,
        country=country.upper() if country else None,
        recipient=recipient,
        data=data,
        data_source=f"data from {Path(data_file).name}" if data_file else None,
        variants=variants,
    )
    if not (out_file or open_page):
        _print_text(page)
        return
    html = render_page(d, page)
    if out_file:
        path = Path(out_file)
        try:
            path.write_text(html, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot write {out_file!r}: {exc.strerror}") from None
    else:
        handle, name = tempfile.mkstemp(prefix=f"dispatch-preview-{page.message_type}-", suffix=".html")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(html)
        path = Path(name)
    url = path.resolve().as_uri()
    if open_page and _open(url):
        console.print(f"opened {path}", highlight=False)
    else:
        console.print(f"preview written to {path}", highlight=False)


def _open(url: str) -> bool:
    """Open ``url`` in a browser; False when there is none (a server, a container)."""
    import webbrowser

    try:
        return webbrowser.open(url)
    except webbrowser.Error:
        return False


def _print_text(page) -> None:
    for column in page.columns:
        for channel in page.channels:
            cell = page.cell(channel, column.language)
            title = f"{column.language}/{page.message_type} · {channel} · {column.country}"
            if cell.error:
                console.rule(title)
                console.print(f"[red]does not render:[/red] {escape(cell.error)}", highlight=False)
                continue
            for warning in cell.warnings:
                console.print(f"[yellow]![/yellow] {escape(warning)}", highlight=False)
            for part, text in cell.parts.items():
                console.rule(f"{title} · {part}")
                console.print(text, markup=False, highlight=False)
            if cell.sms:
                sms = cell.sms
                console.print(
                    f"{sms['characters']} characters, {sms['encoding']}, {sms['segments']} segment(s)", highlight=False
                )
