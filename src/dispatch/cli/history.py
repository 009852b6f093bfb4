"""``dispatch history``: a person's messages and reasons, exports, retention purges."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from ..clock import now_utc
from ..errors import InputError
from ..history import export_history, find_recipients, person_history, purge
from ..recipients import parse_moment
from . import cli
from .base import console, pass_cli


class _DefaultToShow(click.Group):
    """``dispatch history ID`` shows a person; ``export`` and ``purge`` are subcommands."""

    def resolve_command(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["show", *args]
        return super().resolve_command(ctx, args)


@cli.group(cls=_DefaultToShow)
def history() -> None:
    """Show (dispatch history ID), export or purge contact history."""


@history.command("show")
@click.argument("who")
@click.option("--content", is_flag=True, help="Also print what was sent.")
@pass_cli
def show(cli_ctx, who: str, content: bool) -> None:
    """Every decision for WHO — a recipient id, a message id, an email address or a phone number:
    sent or suppressed, why, legal basis, delivery attempts, and each state change with its cause."""
    d = cli_ctx.dispatcher()
    recipients = find_recipients(d.store, who)
    if not recipients:
        if "@" in who or who.lstrip("+").replace(" ", "").isdigit():  # an address or number is not echoed
            raise InputError("no history for that email address or phone number")
        raise InputError(f"no history for recipient {who!r}")
    for recipient_id in recipients:
        _show(d, recipient_id, content)


def _show(d, recipient_id: str, content: bool) -> None:
    data = person_history(d.store, recipient_id)
    if not data["messages"] and not data["consents"]:
        raise InputError(f"no history for recipient {recipient_id!r}")
    person = data["recipient"]
    if person:
        console.print(
            f"[bold]{recipient_id}[/bold] · {person['country']} · {person['status'] or 'status unknown'}"
            f" · last seen {person['last_seen_at']:%Y-%m-%d}",
            highlight=False,
        )
    table = Table(title=f"Messages for {recipient_id}")
    for column in ("decided", "id", "type", "channel", "lang", "template", "status", "reasons / basis", "attempts"):
        table.add_column(column)
    for m in data["messages"]:
        why = ", ".join(m["reasons"]) if m["reasons"] else (m["legal_basis"] or "")
        if m.get("fallback_of"):
            why += f" (fallback for {m['fallback_of']})"
        tries = "; ".join(
            f"#{a['attempt']} {a['outcome']}"
            + (f" {a['provider_id']}" if a["provider_id"] else "")
            + (f" ({a['error']})" if a["error"] else "")
            for a in m["attempts"]
        )
        status = m["status"] + (" (possible duplicate)" if m["possible_duplicate"] else "")
        table.add_row(
            f"{m['decided_at']:%Y-%m-%d %H:%M}",
            m["id"],
            m["message_type"],
            m["channel"] or "-",
            m["language"],
            m.get("template_version") or "-",
            status,
            why,
            tries or "-",
        )
    console.print(table)
    for m in data["messages"]:
        for change in m["transitions"]:
            console.print(
                f"  {m['id']} {change['at']:%Y-%m-%d %H:%M:%S} {change['source'] or 'new'} → {change['target']}"
                f" ({change['cause']})",
                highlight=False,
                markup=False,
            )
        approval = m.get("template_approval")
        if approval:
            console.print(
                f"  {m['id']} template {m['template_version']} approved by {approval['by']}"
                f" {approval['at']:%Y-%m-%d %H:%M}",
                highlight=False,
                markup=False,
            )
        for code, note in (m["notes"] or {}).items():
            console.print(f"  {m['id']} {code}: {note}", highlight=False, markup=False)
        if content and m["parts"]:
            for part, text in m["parts"].items():
                console.rule(f"{m['id']} · {part}")
                console.print(text, markup=False, highlight=False)
    for offer in data.get("offers", ()):  # written offers (SPEC §13): every state reached, with its evidence
        for row in offer["states"]:
            how = ", ".join(f"{k} {row[k]}" for k in ("source", "channel", "wording_version") if row.get(k))
            console.print(
                f"  offer {offer['id']} (message {offer['message_id'] or '-'}) {row['at']:%Y-%m-%d %H:%M:%S}"
                f" {row['state']} ({how})",
                highlight=False,
                markup=False,
            )
        if offer["contract_message_id"]:
            console.print(
                f"  offer {offer['id']} contract confirmation {offer['contract_message_id']}", highlight=False
            )
    if data["consents"]:
        console.print(
            f"{len(data['consents'])} consent ledger entries: dispatch consents show {recipient_id}", highlight=False
        )


@history.command("export")
@click.argument("recipient_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here (default: standard output).")
@click.option(
    "--national-id", "national_id", is_flag=True, help="Include the national id unmasked (SPEC §3: only when asked)."
)
@pass_cli
def export(cli_ctx, recipient_id: str, output: str | None, national_id: bool) -> None:
    """Everything stored about RECIPIENT_ID as JSON (for a data subject access request)."""
    d = cli_ctx.dispatcher()
    data = export_history(d.store, recipient_id, national_id=national_id)
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if output:
        Path(output).write_text(text + "\n", encoding="utf-8")
        console.print(
            f"wrote {len(data['messages'])} messages and {len(data['consents'])} consent entries to {output}",
            highlight=False,
        )
    else:
        click.echo(text)


@history.command("purge")
@click.option("--dry-run", is_flag=True, help="Only count what would be removed.")
@click.option("--now", "now_text", help="Purge as of this date (default: now).")
@pass_cli
def purge_(cli_ctx, dry_run: bool, now_text: str | None) -> None:
    """Remove history past retention (prospects 6 months, former customers 24 months after the last
    invoice); statutory records stay for their legal period, objections stay."""
    d = cli_ctx.dispatcher()
    now = parse_moment(now_text) if now_text else now_utc()
    result = purge(d.store, d.config.policy, now, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    console.print(
        f"{verb}: {result.messages} messages, {result.attempts} delivery attempts, {result.consents} "
        f"consent grants of {result.recipients} recipients; kept {result.kept_statutory} statutory "
        "messages within their legal period",
        highlight=False,
    )
