"""``dispatch campaign``: a bulk send from a CSV or JSON-lines file, streamed; ``--at`` schedules it.

``dispatch campaign TYPE --recipients F --data F [--at MOMENT]`` sends (or schedules);
``dispatch campaign list`` and ``dispatch campaign cancel ID`` manage scheduled ones.
"""

from __future__ import annotations

import os
from datetime import UTC

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..errors import InputError
from ..recipient_files import inspect_recipients, read_recipients
from ..scheduled import STATES
from . import cli
from .base import console, pass_cli, print_json, read_json


class CampaignGroup(click.Group):
    """``campaign TYPE ...`` runs the ``send`` subcommand: only ``list`` and ``cancel`` are words of their own."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["send", *args]
        return super().parse_args(ctx, args)


@cli.group(cls=CampaignGroup)
def campaign() -> None:
    """Bulk sends: `dispatch campaign TYPE --recipients FILE --data FILE [--at MOMENT]`, `list`, `cancel ID`."""


@campaign.command("send")
@click.argument("message_type")
@click.option(
    "--recipients",
    "recipients_file",
    type=click.Path(dir_okay=False),
    required=True,
    help="Recipients: .csv as spreadsheets save it (comma, semicolon or tab; dotted headers nest: "
    "address.street) or .jsonl.",
)
@click.option("--data", "data_file", type=click.Path(dir_okay=False), required=True, help="Message data JSON.")
@click.option("--id", "campaign_id", help="Campaign id; run again with the same id to resume.")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--max-errors", type=int, help="Stop when more recipients than this are invalid.")
@click.option(
    "--processes",
    type=click.IntRange(0, 64),
    default=0,
    show_default=True,
    help="Intake processes; 0: one per CPU with PostgreSQL and a real broker, else 1.",
)
@click.option(
    "--at",
    "at_text",
    help="Schedule for this moment (ISO 8601, e.g. 2027-01-04T09:00; without an offset in [company] "
    "time_zone): recipients are stored now and decided when it comes.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_cli
def send(
    cli_ctx, message_type, recipients_file, data_file, campaign_id, batch_size, max_errors, processes, at_text, as_json
):
    """Send MESSAGE_TYPE with one data set to every recipient in a file.

    Streamed in batches (flat memory), resumable with --id, interrupted safely with Ctrl-C:
    what was recorded stays recorded and is delivered; a re-run skips it. The file is read
    once first: one that cannot be read to its end is refused before anything is recorded.
    A row with problems is reported (line and column, never the value) and skipped.

    With --at the campaign is scheduled: the recipients are checked and stored now, and at
    that moment a running `dispatch worker` (or the embedded default, if a dispatcher is open
    then or opened later) decides, records and queues them — consent withdrawn in between
    wins, and each message keeps its own windows (calling hours, no SMS at night).
    """
    data = read_json(data_file, "data")
    if at_text is not None:
        schedule(cli_ctx, message_type, recipients_file, data, at_text, campaign_id, batch_size, max_errors, as_json)
        return
    total = inspect_recipients(recipients_file).rows
    d = cli_ctx.dispatcher()
    d.message_type(message_type)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    progress = Progress(*columns, console=console, disable=as_json)
    task = progress.add_task(f"{message_type}", total=total)

    def advance(count: int) -> None:  # the bar appears with the first batch: a refusal before it prints one line
        if not progress.live.is_started:
            progress.start()
        progress.advance(task, count)

    options = dict(
        campaign_id=campaign_id,
        batch_size=batch_size,
        progress=advance,
        source=str(recipients_file),
        max_errors=max_errors,
    )
    scalable = not d.embedded and not d.config.store.url.startswith("sqlite")
    count = processes or (os.cpu_count() or 1 if scalable else 1)
    try:
        if count > 1:
            from ..campaign import run_campaign_parallel

            summary = run_campaign_parallel(
                d.intake, message_type, read_recipients(recipients_file), data, processes=count, **options
            )
        else:
            summary = d.campaign(message_type, read_recipients(recipients_file), data, **options)
    except InputError as exc:  # --max-errors: show which rows, one plain line each, then the reason
        rows = [problem for problem in exc.problems if problem.startswith("line ")]
        report_invalid(rows, len(rows))
        raise
    finally:
        if progress.live.is_started:
            progress.stop()
    if as_json:
        print_json(summary.as_dict())
        return
    table = Table(title=f"Campaign {summary.campaign_id}")
    table.add_column("what")
    table.add_column("messages", justify="right")
    for label, value in (
        ("recipients read", summary.total),
        ("queued", summary.queued),
        ("suppressed", summary.suppressed),
        ("already taken (resumed)", summary.duplicates),
        ("invalid", summary.invalid),
    ):
        table.add_row(label, str(value))
    for (channel, language), count in sorted(summary.by_channel_language.items()):
        table.add_row(f"  queued {channel} / {language}", str(count))
    for reason, count in summary.reasons.most_common():
        table.add_row(f"  suppressed: {reason}", str(count))
    console.print(table)
    console.print(f"{summary.total} recipients in {summary.seconds:.1f} s ({summary.rate:.0f}/s)", highlight=False)
    report_invalid(summary.errors, summary.invalid)


def report_invalid(errors: list[str], count: int, shown: int = 10) -> None:
    """Print the first invalid rows to standard error, one plain line each (line and column, never a value)."""
    for error in errors[:shown]:
        click.echo("invalid: " + " ".join(str(error).split()), err=True)
    if count > shown:
        click.echo(f"invalid: and {count - shown} more", err=True)


def schedule(cli_ctx, message_type, recipients_file, data, at_text, campaign_id, batch_size, max_errors, as_json):
    """``campaign TYPE --at MOMENT``: store the campaign for release then."""
    from ..scheduled import parse_at

    d = cli_ctx.dispatcher()
    at = parse_at(at_text, d.config.company.time_zone)
    d.message_type(message_type)
    inspect_recipients(recipients_file)
    summary = d.campaign(
        message_type,
        read_recipients(recipients_file),
        data,
        campaign_id=campaign_id,
        batch_size=batch_size,
        source=str(recipients_file),
        max_errors=max_errors,
        at=at,
    )
    if as_json:
        print_json(summary.as_dict())
    else:
        console.print(
            f"campaign {summary.campaign_id} scheduled for {at:%Y-%m-%d %H:%M %Z} "
            f"({at.astimezone(UTC):%Y-%m-%d %H:%M} UTC): {summary.scheduled} recipients stored, "
            f"{summary.invalid} invalid",
            highlight=False,
        )
        where = "the embedded worker of a dispatcher open then" if d.embedded else "a running `dispatch worker`"
        console.print(f"it is decided and queued by {where}; `dispatch campaign cancel {summary.campaign_id}` stops it")
    report_invalid(summary.errors, summary.invalid)


@campaign.command("list")
@click.option("--state", type=click.Choice(STATES), help="Only campaigns in this state.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="Print the campaigns as JSON.")
@pass_cli
def list_(cli_ctx, state, limit, as_json) -> None:
    """Campaigns, newest first: scheduled (with their moment), running, done, cancelled, failed."""
    from ..scheduled import list_campaigns

    items = list_campaigns(cli_ctx.dispatcher().intake, limit=limit, state=state)
    if as_json:
        print_json(items)
        return
    table = Table(title="Campaigns")
    for column in ("id", "type", "state", "release at (UTC)", "waiting", "messages"):
        table.add_column(column)
    for item in items:
        table.add_row(
            item["id"],
            item["message_type"],
            item["state"],
            f"{item['release_at']:%Y-%m-%d %H:%M}" if item["release_at"] else "-",
            str(item["waiting"]) if item["state"] == "scheduled" else "-",
            ", ".join(f"{k} {v}" for k, v in sorted(item["messages"].items())) or "-",
        )
    console.print(table)


@campaign.command("cancel")
@click.argument("campaign_id")
@pass_cli
def cancel(cli_ctx, campaign_id) -> None:
    """Cancel a scheduled campaign before its release; its stored recipients are deleted."""
    from ..scheduled import cancel_campaign

    removed = cancel_campaign(cli_ctx.dispatcher().intake, campaign_id)
    console.print(f"campaign {campaign_id} cancelled; {removed} stored recipients deleted", highlight=False)
