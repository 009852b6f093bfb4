"""``dispatch webhooks status|retry|secret``: the webhook outbox for operators (docs/webhooks.md)."""

from __future__ import annotations

import click
from rich.table import Table

from ..clock import now_utc
from . import cli
from .base import console, pass_cli


@cli.group()
def webhooks() -> None:
    """Signed webhooks: what waits, what was given up, a new secret."""


@webhooks.command("status")
@pass_cli
def status(cli_ctx) -> None:
    """Deliveries per state and the newest ones given up."""
    from ..store.webhook_deliveries import dead
    from ..webhooks import counts

    d = cli_ctx.dispatcher()
    found = counts(d.store)
    table = Table(title="Webhook deliveries by state")
    table.add_column("state")
    table.add_column("deliveries", justify="right")
    for state in ("pending", "delivered", "dead"):
        table.add_row(state, str(found.get(state, 0)))
    console.print(table)
    given_up = dead(d.store)
    if given_up:
        rows = Table(title="Given up (newest 20)")
        for column in ("event", "type", "endpoint", "attempts", "last answer"):
            rows.add_column(column)
        for row in given_up:
            rows.add_row(
                row["event_id"],
                row["event_type"],
                _host(row["endpoint"]),
                str(row["attempts"]),
                row["last_error"] or "-",
            )
        console.print(rows)


@webhooks.command("retry")
@click.option("--event", "event_ids", multiple=True, help="Only this event id (repeatable; default: every dead one).")
@pass_cli
def retry(cli_ctx, event_ids: tuple[str, ...]) -> None:
    """Send the deliveries that were given up again, from now (a sender must be running: a worker or serve)."""
    from ..store.webhook_deliveries import retry_dead

    d = cli_ctx.dispatcher()
    count = retry_dead(d.store, now_utc(), event_ids)
    console.print(f"{count} webhook delivery(ies) will be sent again")


@webhooks.command("secret")
def secret() -> None:
    """Print a new secret for [webhooks] secret (whsec_ + base64 of 32 random bytes)."""
    from ..webhooks import generate_secret

    click.echo(generate_secret())


def _host(endpoint: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
