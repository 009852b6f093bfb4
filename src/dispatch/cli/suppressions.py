"""``dispatch suppressions list|add|remove``: the addresses dispatch no longer sends to (SPEC §10)."""

from __future__ import annotations

import click
from rich.table import Table

from ..clock import now_utc
from ..errors import InputError
from ..recipients import normalise_phone
from . import cli
from .base import console, pass_cli

CHANNELS = ("email", "sms", "phone")


def _address(channel: str, address: str) -> str:
    """The address as the list holds it; a phone number in any form phonenumbers reads (+358..., 040...)."""
    address = address.strip()
    if not address:
        raise InputError("the address is empty")
    if channel == "email":
        if "@" not in address or any(c in address for c in "\r\n "):
            raise InputError("the email address is not valid")
        return address.lower()
    try:
        return normalise_phone(address, None if address.startswith("+") else "FI")
    except ValueError as exc:
        raise InputError(str(exc)) from None


@cli.group()
def suppressions() -> None:
    """The suppression list: addresses that bounced, were reported invalid, or complained."""


@suppressions.command("list")
@click.option("--all", "include_removed", is_flag=True, help="Also show entries removed earlier (the history).")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 100_000))
@pass_cli
def list_(cli_ctx, include_removed: bool, limit: int) -> None:
    """Show the list, newest first: channel, address, cause, the message that caused it."""
    d = cli_ctx.dispatcher()
    rows = d.store.suppression_list(include_removed=include_removed, limit=limit)
    table = Table(title=f"Suppression list ({d.store.suppression_count()} active)")
    for column in ("since", "channel", "address", "cause", "code", "message", "removed"):
        table.add_column(column)
    for row in rows:
        removed = f"{row['removed_at']:%Y-%m-%d} {row['removed_reason'] or ''}" if row["removed_at"] else ""
        table.add_row(
            f"{row['created_at']:%Y-%m-%d %H:%M}",
            row["channel"],
            row["address"],
            row["cause"],
            row["code"] or "",
            row["message_id"] or "",
            removed,
        )
    console.print(table)


@suppressions.command("add")
@click.argument("channel", type=click.Choice(CHANNELS))
@click.argument("address")
@pass_cli
def add(cli_ctx, channel: str, address: str) -> None:
    """Put ADDRESS on the list for CHANNEL (cause: manual)."""
    d = cli_ctx.dispatcher()
    added = d.store.suppress(channel, _address(channel, address), "manual", now_utc())
    console.print("added" if added else "already on the list", highlight=False)


@suppressions.command("remove")
@click.argument("channel", type=click.Choice(CHANNELS))
@click.argument("address")
@click.option("--reason", required=True, help="Why, for the record (e.g. 'customer confirmed the address').")
@pass_cli
def remove(cli_ctx, channel: str, address: str, reason: str) -> None:
    """Take ADDRESS off the list (the customer gave a new address or asked); the entry's history stays."""
    d = cli_ctx.dispatcher()
    removed = d.store.unsuppress(channel, _address(channel, address), reason, now_utc())
    if not removed:
        raise InputError(f"that {channel} address is not on the suppression list")
    console.print("removed", highlight=False)
