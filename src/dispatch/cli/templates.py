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
@click.option("--strict", is_flag=True, help="Exit non-zero when a translation is stale (its source changed).")
@pass_cli
def check(cli_ctx, languages: tuple[str, ...], types: tuple[str, ...], segments: bool, strict: bool) -> None:
    """Check every type × channel × language: present, renders, complete, SMS length; list stale translations."""
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
    stale = _stale(d, types or [t.name for t in d.types], languages)
    for state in stale:
        console.print(f"[yellow]![/yellow] {escape(state.refusal())}", highlight=False)
    summary = f"{report.checked} type × channel × language combinations, {report.rendered} renders"
    if stale:
        summary += f", {len(stale)} stale translation(s)"
    if strict and stale and report.ok:
        console.print(f"[red]stale translations[/red] in {summary}")
        raise SystemExit(1)
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


def _stale(d, types, languages):
    """Translations whose source language changed since they were approved (SPEC §5)."""
    source = d.config.templates.source_language
    out = []
    for name in types:
        wanted = [lang for lang in (languages or d.renderer.languages()) if lang != source]
        out += [s for s in d.approvals.states(name, languages=wanted, types=d.types) if s.state == "stale"]
    return out


# -- four eyes (SPEC §5) ------------------------------------------------------------------


def _targets(d, message_type: str, language: str, channel: str | None) -> list[str]:
    """The channels meant: the one given, or every channel of the type with a template in ``language``."""
    mtype = d.message_type(message_type)
    if language not in d.renderer.languages():
        raise InputError(f"no templates in language {language!r}")
    if channel is not None:
        if channel not in mtype.channels or channel not in d.channels:
            raise InputError(f"{message_type} is not sent by {channel!r} (channels: {', '.join(mtype.channels)})")
        if not d.approvals.has_template(message_type, language, channel):
            raise InputError(f"there is no {channel} template for {message_type!r} in {language!r}")
        return [channel]
    found = [c for c in mtype.channels if c in d.channels and d.approvals.has_template(message_type, language, c)]
    if not found:
        raise InputError(f"there is no template for {message_type!r} in {language!r}")
    return found


def _comment(comment: str | None) -> str | None:
    if comment is not None and len(comment) > 2000:
        raise InputError("--comment is longer than 2000 characters")
    return comment or None


_governed = [
    click.argument("message_type"),
    click.option("--lang", "language", required=True, type=click.Choice(list(LANGUAGES)), help="The language."),
    click.option("--channel", default=None, help="Only this channel (default: every channel of the type)."),
    click.option("--by", "by", required=True, help="Your name (recorded with the version)."),
    click.option("--comment", default=None, help="What changed, or what you checked."),
]


def _with_governed(function):
    for decorator in reversed(_governed):
        function = decorator(function)
    return function


@templates.command("propose")
@_with_governed
@pass_cli
def propose(cli_ctx, message_type: str, language: str, channel: str | None, by: str, comment: str | None) -> None:
    """Propose the current version of TYPE in --lang for approval (you become its author)."""
    from ..clock import now_utc

    d = cli_ctx.dispatcher()
    channels = _targets(d, message_type, language, channel)
    comment = _comment(comment)
    for name in channels:
        state = d.approvals.propose(message_type, language, name, by=by, now=now_utc(), comment=comment)
        console.print(
            f"proposed {state.label} version {state.version} ({len(state.files)} files); "
            "a second person approves it: dispatch templates approve",
            highlight=False,
            markup=False,
        )


@templates.command("approve")
@_with_governed
@pass_cli
def approve(cli_ctx, message_type: str, language: str, channel: str | None, by: str, comment: str | None) -> None:
    """Approve the current version of TYPE in --lang (not your own proposal: four eyes)."""
    from ..clock import now_utc

    d = cli_ctx.dispatcher()
    channels = _targets(d, message_type, language, channel)
    comment = _comment(comment)
    for name in channels:  # every one is checked before any is recorded
        d.approvals.approvable(message_type, language, name, by=by)
    for name in channels:
        state = d.approvals.approve(message_type, language, name, by=by, now=now_utc(), comment=comment)
        made_from = f" (from {state.source_language} version {state.source_version})" if state.source_version else ""
        console.print(f"approved {state.label} version {state.version}{made_from}", highlight=False, markup=False)


@templates.command("status")
@click.argument("message_type", required=False)
@click.option("--lang", "languages", multiple=True, type=click.Choice(list(LANGUAGES)), help="Only these languages.")
@click.option("--channel", "channels", multiple=True, help="Only these channels.")
@click.option("--history", "show_history", is_flag=True, help="Also list every proposal and approval.")
@pass_cli
def status(
    cli_ctx, message_type: str | None, languages: tuple[str, ...], channels: tuple[str, ...], show_history: bool
) -> None:
    """Each template's current version: approved, stale, proposed or unapproved, by whom and when."""
    d = cli_ctx.dispatcher()
    names = [d.message_type(message_type).name] if message_type else [t.name for t in d.types]
    table = Table("type", "lang", "channel", "version", "state", "proposed", "approved", "source version")
    states = []
    for name in names:
        states += d.approvals.states(name, languages=languages or None, channels=channels or None, types=d.types)
    colour = {"approved": "green", "stale": "yellow", "proposed": "cyan", "unapproved": "red"}
    for s in states:
        table.add_row(
            s.message_type,
            s.language,
            s.channel,
            s.version,
            f"[{colour[s.state]}]{s.state}[/]",
            escape(f"{s.proposed_by} {s.proposed_at:%Y-%m-%d %H:%M}") if s.proposed_by else "-",
            escape(f"{s.approved_by} {s.approved_at:%Y-%m-%d %H:%M}") if s.approved_by else "-",
            (
                f"{s.source_version} (approved against {s.approved_source_version or '-'})"
                if s.state == "stale"
                else s.source_version or "-"
            ),
        )
    console.print(table)
    required = ", ".join(d.config.templates.require_approval) or "no category"
    console.print(f"approval required for: {required}; source language {d.approvals.source_language}", highlight=False)
    if show_history:
        for s in states:
            for row in s.history:
                made_from = f" from {row['source_language']} {row['source_version']}" if row["source_version"] else ""
                note = f" — {row['comment']}" if row["comment"] else ""
                console.print(
                    f"  {row['at']:%Y-%m-%d %H:%M:%S} {s.label} {row['version']} {row['action']} by {row['by']}"
                    f"{made_from}{note}",
                    highlight=False,
                    markup=False,
                )


@templates.command("versions")
@click.argument("message_type")
@pass_cli
def versions(cli_ctx, message_type: str) -> None:
    """The versions of TYPE that messages were rendered from: first used, last used, how many messages."""
    d = cli_ctx.dispatcher()
    name = d.message_type(message_type).name
    store = d.runtime.existing_store()
    rows = store.template_versions(name) if store is not None else []
    approvals = store.approvals_of_versions([r["version"] for r in rows]) if store is not None else {}
    current = {(s.language, s.channel): s.version for s in d.approvals.states(name, types=d.types)}
    table = Table("lang", "channel", "version", "first used", "last used", "messages", "approved", "now")
    for r in rows:
        approval = (approvals.get((name, r["language"], r["channel"], r["version"])) or [None])[0]  # the first
        table.add_row(
            r["language"],
            r["channel"] or "-",
            r["version"],
            f"{r['first_used']:%Y-%m-%d %H:%M}",
            f"{r['last_used']:%Y-%m-%d %H:%M}",
            str(r["messages"]),
            escape(f"{approval['by']} {approval['at']:%Y-%m-%d}") if approval else "-",
            "current" if current.get((r["language"], r["channel"])) == r["version"] else "",
        )
    console.print(table)
    if not rows:
        console.print(f"no message of {name} has been rendered yet", highlight=False)


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
