"""``dispatch queue status|relay|retry-dead``, ``dispatch db upgrade``, ``dispatch plugins``."""

from __future__ import annotations

import click
from rich.table import Table

from ..clock import now_utc
from ..lifecycle import Status
from . import cli
from .base import console, pass_cli


@cli.group()
def queue() -> None:
    """Inspect and repair the outbox queue."""


@queue.command("status")
@pass_cli
def status(cli_ctx) -> None:
    """Messages per state, what is held for later, and the dead letters."""
    d = cli_ctx.dispatcher()
    counts = d.store.status_counts()
    due, held = d.store.pending_counts(now_utc())
    table = Table(title="Messages by state")
    table.add_column("state")
    table.add_column("messages", justify="right")
    for state in Status:
        table.add_row(str(state), str(counts.get(str(state), 0)))
    console.print(table)
    console.print(f"due now: {due} · held until send_after: {held}")
    dead = d.store.dead_letters(limit=20)
    if dead:
        letters = Table(title="Dead letters and bounces (newest 20)")
        for column in ("id", "recipient", "type", "channel", "state", "attempts", "error"):
            letters.add_column(column)
        for row in dead:
            letters.add_row(
                row["id"],
                row["recipient_id"],
                row["message_type"],
                row["channel"] or "-",
                row["status"],
                str(row["attempts"]),
                (row["error"] or "")[:80],
            )
        console.print(letters)


@queue.command("relay")
@pass_cli
def relay(cli_ctx) -> None:
    """Re-enqueue messages that were stored but never enqueued, or are stuck."""
    d = cli_ctx.dispatcher()
    console.print(f"re-enqueued {d.relay()} message(s)")


@queue.command("retry-dead")
@click.option("--id", "message_ids", multiple=True, help="Only these messages (default: every dead letter).")
@pass_cli
def retry_dead(cli_ctx, message_ids) -> None:
    """Put dead letters (retries exhausted) back on the queue."""
    d = cli_ctx.dispatcher()
    moved = d.lifecycle.requeue_dead(d.store, list(message_ids) or None, now=now_utc())
    d.relay()
    console.print(f"requeued {len(moved)} dead letter(s)")


@cli.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@pass_cli
def upgrade(cli_ctx) -> None:
    """Bring the store's schema to the newest version."""
    from sqlalchemy.exc import OperationalError

    from ..config import load_config
    from ..errors import StoreError
    from ..migrate import current_revision, head_revision, upgrade_schema
    from ..store import make_engine

    config = load_config(cli_ctx.config_path)
    engine = make_engine(config.store.url)
    try:
        before = current_revision(engine)
        upgrade_schema(engine)
    except OperationalError as exc:  # the server is down or refuses us: one line, no traceback
        safe = engine.url.render_as_string(hide_password=True)
        raise StoreError(f"cannot open the store at {safe}: {' '.join(str(exc.orig).split())}") from None
    finally:
        engine.dispose()
    console.print(f"schema: {before or 'empty'} → {head_revision()}")


@cli.command()
@pass_cli
def plugins(cli_ctx) -> None:
    """List loaded plugins, their versions and hooks."""
    from ..plugins import plugin_info

    d = cli_ctx.dispatcher()
    table = Table(title="Plugins")
    for column in ("name", "version", "built-in", "hooks"):
        table.add_column(column)
    for info in plugin_info(d.pm):
        table.add_row(info["name"], info["version"] or "-", "yes" if info["builtin"] else "", ", ".join(info["hooks"]))
    console.print(table)
    console.print("channels: " + ", ".join(d.channels) + " · message types: " + ", ".join(d.types.names()))
