"""``dispatch evidence``: the evidence pack of a campaign, or of a message type over a period (SPEC §14)."""

from __future__ import annotations

import click

from ..errors import InputError
from . import cli
from .base import console, pass_cli


@cli.command()
@click.argument("campaign_id", required=False)
@click.option("--type", "message_type", help="A message type (with --from and --to) instead of a campaign.")
@click.option("--from", "start", help="First day (YYYY-MM-DD, UTC) the messages were decided.")
@click.option("--to", "end", help="Last day (inclusive).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The pack to write (a .zip).")
@pass_cli
def evidence(
    cli_ctx, campaign_id: str | None, message_type: str | None, start: str | None, end: str | None, output: str
) -> None:
    """Write an evidence pack: manifest (CSV and JSON), rendered content, summary, SHA-256 of every file.

    dispatch evidence CAMPAIGN_ID -o pack.zip, or dispatch evidence --type T --from D --to D -o pack.zip
    """
    from ..evidence import period, write_pack

    if bool(campaign_id) == bool(message_type):
        raise InputError("give a campaign id, or --type with --from and --to")
    since = until = None
    if message_type:
        if not (start and end):
            raise InputError("--type needs --from and --to")
        since, until = period(start, end)
    elif start or end:
        raise InputError("--from and --to go with --type, not with a campaign id")
    d = cli_ctx.dispatcher()
    if message_type:
        message_type = d.message_type(message_type).name
    store = d.runtime.existing_store()
    if store is None:
        raise InputError("there is no store yet: nothing was sent")
    if campaign_id and store.campaign(campaign_id) is None:
        raise InputError(f"no campaign {campaign_id!r}")
    selection = (
        {"campaign_id": campaign_id} if campaign_id else {"message_type": message_type, "from": start, "to": end}
    )
    summary = write_pack(
        store,
        output,
        campaign_id=campaign_id,
        message_type=message_type,
        since=since,
        until=until,
        selection=selection,
    )
    console.print(
        f"wrote {output}: {summary.messages} messages, {summary.variants} rendered variants, "
        f"{len(summary.files) + 1} files with their SHA-256",
        highlight=False,
        markup=False,
    )
