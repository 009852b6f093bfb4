"""``dispatch offers list|show|expire``: written offers after a phone sale (SPEC §13)."""

from __future__ import annotations

import click
from rich.table import Table

from ..clock import now_utc
from ..errors import InputError
from ..offers import STATES
from ..recipients import parse_moment
from . import cli
from .base import console, pass_cli, print_json


@cli.group()
def offers() -> None:
    """Written offers after a phone sale: list, show one with its evidence, lapse those past valid_until."""


@offers.command("list")
@click.option("--state", type=click.Choice(STATES), help="Only offers in this state.")
@click.option("--recipient", "recipient_id", help="Only this recipient's offers.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@pass_cli
def list_(cli_ctx, state: str | None, recipient_id: str | None, limit: int, as_json: bool) -> None:
    """The newest offers: state, recipient, channel, valid until, contract confirmation."""
    d = cli_ctx.dispatcher()
    rows = d.offers.book.listing(state=state, recipient_id=recipient_id, limit=limit)
    now = now_utc()
    if as_json:
        print_json([_summary(d, row, now) for row in rows])
        return
    table = Table(title="Offers")
    for column in ("created", "offer", "recipient", "state", "channel", "lapses at", "message", "contract"):
        table.add_column(column)
    for row in rows:
        item = _summary(d, row, now)
        table.add_row(
            f"{row['created_at']:%Y-%m-%d %H:%M}",
            row["id"],
            row["recipient_id"],
            item["state"],
            row["channel"] or "-",
            f"{row['valid_until']:%Y-%m-%d %H:%M} UTC",
            row["message_id"] or "-",
            row["contract_message_id"] or "-",
        )
    console.print(table)
    counts = d.offers.book.counts()
    console.print(", ".join(f"{counts.get(s, 0)} {s}" for s in STATES), highlight=False)


def _summary(d, row, now) -> dict:
    return {
        "id": row["id"],
        "recipient_id": row["recipient_id"],
        # An open offer past its moment is shown lapsed before the worker has recorded it.
        "state": d.offers.state_at(row, now),
        "channel": row["channel"],
        "message_id": row["message_id"],
        "valid_until": row["valid_until"],
        "content_hash": row["content_hash"],
        "contract_message_id": row["contract_message_id"],
        "created_at": row["created_at"],
    }


@offers.command("show")
@click.argument("offer_id")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@pass_cli
def show(cli_ctx, offer_id: str, as_json: bool) -> None:
    """One offer: its terms, and every state it reached with its evidence (append-only)."""
    d = cli_ctx.dispatcher()
    offer = d.offers.get(offer_id)
    states = d.offers.book.states(offer_id)
    if as_json:
        print_json({**_summary(d, offer, now_utc()), "terms": offer["terms"], "states": states})
        return
    item = _summary(d, offer, now_utc())
    console.print(
        f"[bold]offer {offer['id']}[/bold] · {offer['recipient_id']} · {item['state']} · by {offer['channel'] or '-'}"
        f" · message {offer['message_id'] or '-'}",
        highlight=False,
    )
    terms = offer["terms"]
    duration = terms["duration"]
    console.print(
        f"  {_text(terms['product'])}, "
        + (f"until {duration['until']}" if isinstance(duration, dict) else f"{duration} months")
        + f", valid until {terms['valid_until']} (lapses {offer['valid_until']:%Y-%m-%d %H:%M} UTC)",
        highlight=False,
        markup=False,
    )
    for element in terms["price_elements"]:
        console.print(f"  {_text(element['name'])}: {element['new']} {element['unit']}", highlight=False, markup=False)
    console.print(f"  content hash {offer['content_hash']}", highlight=False)
    if offer["contract_message_id"]:
        console.print(f"  contract confirmation {offer['contract_message_id']}", highlight=False)
    for row in states:
        extra = []
        for key in ("source", "channel", "wording_version", "content_hash"):
            if row.get(key):
                extra.append(f"{key} {row[key]}")
        console.print(
            f"  {row['at']:%Y-%m-%d %H:%M:%S} {row['state']} ({', '.join(extra)})", highlight=False, markup=False
        )


def _text(value) -> str:
    """A text or a mapping of language to text, for the operator."""
    if isinstance(value, dict):
        return " / ".join(str(v) for v in value.values())
    return str(value)


@offers.command("expire")
@click.option("--now", "now_text", help="Lapse as of this moment (default: now).")
@pass_cli
def expire(cli_ctx, now_text: str | None) -> None:
    """Lapse every open offer whose valid_until day has ended (offer.lapsed); the worker does it too."""
    d = cli_ctx.dispatcher()
    try:
        now = parse_moment(now_text) if now_text else now_utc()
    except ValueError:
        raise InputError(f"--now {now_text!r} is not a moment such as 2027-01-26T00:00+02:00") from None
    lapsed = d.offers.expire_due(now, source="cli")
    console.print(f"{len(lapsed)} offer(s) lapsed", highlight=False)
    for offer_id in lapsed:
        console.print(f"  {offer_id}", highlight=False)
