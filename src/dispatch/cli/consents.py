"""``dispatch consents record|show``: the consent ledger from the command line."""

from __future__ import annotations

import click
from rich.table import Table

from ..ledger import PURPOSES, SOURCES
from . import cli
from .base import console, pass_cli


@cli.group()
def consents() -> None:
    """Record and show consents, withdrawals and objections (the consent ledger)."""


@consents.command("record")
@click.argument("recipient_id")
@click.argument("purpose", type=click.Choice(PURPOSES))
@click.argument("decision", type=click.Choice(["grant", "withdraw"]))
@click.option("--channel", default="all", show_default=True, help="email, sms, letter, phone or all.")
@click.option("--source", type=click.Choice(SOURCES), default="customer_service", show_default=True)
@click.option("--at", help="When it was given (ISO date or time; default: now).")
@click.option("--wording", "wording_version", help="Version of the consent text the person saw.")
@click.option("--evidence", help="Free text: form id, call id, ticket number.")
@pass_cli
def record(cli_ctx, recipient_id, purpose, decision, channel, source, at, wording_version, evidence) -> None:
    """Append a consent (grant) or a withdrawal/objection (withdraw) for RECIPIENT_ID."""
    d = cli_ctx.dispatcher()
    row = d.consents.record(
        recipient_id,
        purpose,
        decision == "grant",
        channel=channel,
        at=at,
        source=source,
        wording_version=wording_version,
        evidence=evidence,
    )
    verb = "granted" if row["granted"] else "withdrawn"
    console.print(
        f"recorded: {recipient_id} {purpose} on {channel} {verb} at {row['at'].isoformat()} ({source})", highlight=False
    )


@consents.command("show")
@click.argument("recipient_id")
@pass_cli
def show(cli_ctx, recipient_id) -> None:
    """Show every ledger entry for RECIPIENT_ID, oldest first."""
    d = cli_ctx.dispatcher()
    entries = d.consents.history(recipient_id)
    if not entries:
        console.print(f"no ledger entries for {recipient_id}", highlight=False)
        return
    table = Table(title=f"Consent ledger: {recipient_id}")
    for column in ("at", "purpose", "channel", "decision", "source", "wording", "evidence", "recorded"):
        table.add_column(column)
    for e in entries:
        table.add_row(
            e["at"].isoformat(timespec="seconds"),
            e["purpose"],
            e["channel"],
            "granted" if e["granted"] else "withdrawn",
            e["source"],
            e["wording_version"] or "",
            e["evidence"] or "",
            e["recorded_at"].isoformat(timespec="seconds"),
        )
    console.print(table)
