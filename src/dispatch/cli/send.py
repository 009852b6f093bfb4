"""``dispatch send``: one message, with the decision printed."""

from __future__ import annotations

import click

from . import cli
from .base import pass_cli, print_json, read_json


@cli.command()
@click.argument("message_type")
@click.option(
    "--recipient", "recipient_file", type=click.Path(dir_okay=False), required=True, help="Recipient JSON (SPEC §3)."
)
@click.option("--data", "data_file", type=click.Path(dir_okay=False), help="Message data JSON.")
@click.option("--key", "idempotency_key", help="Idempotency key: the same key twice sends once.")
@click.option("--dry-run", is_flag=True, help="Only decide; record and send nothing.")
@pass_cli
def send(cli_ctx, message_type, recipient_file, data_file, idempotency_key, dry_run) -> None:
    """Send one message and print the decision (or only decide, with --dry-run)."""
    recipient = read_json(recipient_file, "recipient")
    data = read_json(data_file, "data") if data_file else {}
    d = cli_ctx.dispatcher()
    if dry_run:
        print_json(d.decide(message_type, recipient, data).as_dict())
        return
    receipt = d.dispatch(message_type, recipient, data, idempotency_key=idempotency_key)
    print_json(receipt.as_dict())
