"""``dispatch letters returned FILE``: paper letters the print house could not deliver (SPEC §6)."""

from __future__ import annotations

from pathlib import Path

import click

from ..clock import now_utc
from ..returned_mail import BatchManifests, apply_returns, read_returns
from . import cli
from .base import console, pass_cli, print_json


@cli.group()
def letters() -> None:
    """Paper letters after printing: returned mail."""


@letters.command("returned")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, exists=True),
    help="The print batch's manifest (JSON or CSV) for rows that give a sequence number but no batch.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_cli
def returned(cli_ctx, file: str, manifest: str | None, as_json: bool) -> None:
    """Mark the letters in FILE (the print house's CSV of undeliverable letters) as bounced.

    Each row names a letter by message_id, or by batch and sequence (its place in the
    batch's manifest), with a reason. The postal address is suppressed until it changes;
    a statutory letter goes on to the type's next channel; each bounce is an event and a webhook.
    """
    d = cli_ctx.dispatcher()
    rows = read_returns(file)
    channel = d.channels.get("letter")
    outbox = getattr(channel, "outbox", None)
    manifests = BatchManifests(Path(outbox) / "batches" if outbox else None, Path(manifest) if manifest else None)
    summary = apply_returns(rows, d.handle_feedback, manifests, now_utc())
    if as_json:
        print_json(summary.as_dict())
        return
    console.print(f"{len(summary.bounced)} letters marked bounced", highlight=False)
    if summary.unknown:
        console.print(f"no such letter on lines {_lines(summary.unknown)}", highlight=False)
    if summary.not_letters:
        console.print(f"not a letter (left alone) on lines {_lines(summary.not_letters)}", highlight=False)
    for line, problem in summary.invalid:
        console.print(f"line {line}: {problem}", highlight=False)


def _lines(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:20])
    return shown + (f" and {len(numbers) - 20} more" if len(numbers) > 20 else "")


@letters.command("receipts")
@click.option("--limit", default=1000, show_default=True, help="Most letters to ask about per provider.")
@pass_cli
def receipts(cli_ctx, limit: int) -> None:
    """Ask the digital mailboxes about letters they took but have not confirmed (Digipost's document status)."""
    import asyncio

    d = cli_ctx.dispatcher()
    if d.digital_first is None:
        console.print("no digital mailboxes configured ([channels.letter] digital_first)", highlight=False)
        return

    async def ask() -> int:
        try:
            return await d.digital_first.receipts(d.handle_feedback, limit)
        finally:
            for channel in d.channels.values():
                if channel.route_of == "letter":
                    await channel.aclose()

    console.print(f"{asyncio.run(ask())} letters confirmed delivered", highlight=False)


@letters.command("mailboxes")
@click.option(
    "--recipients",
    "recipients_file",
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help="The customers to look up (CSV or JSON lines, as for campaigns).",
)
@click.option("--force", is_flag=True, help="Look up everyone, even those with a fresh answer in the cache.")
@pass_cli
def mailboxes(cli_ctx, recipients_file: str, force: bool) -> None:
    """Refresh the digital-mailbox cache for RECIPIENTS in bulk, before a campaign of letters.

    Uses each provider's list look-up where it has one (Kivra: thousands of people per call);
    people whose cached answer is still fresh are skipped unless --force.
    """
    import asyncio

    from ..errors import DispatchError
    from ..recipient_files import inspect_recipients, read_recipients

    d = cli_ctx.dispatcher()
    router = d.digital_first
    if router is None:
        console.print("no digital mailboxes configured ([channels.letter] digital_first)", highlight=False)
        return
    inspect_recipients(recipients_file)
    wanted: dict[str, set[tuple[str, str]]] = {}
    skipped = 0
    for _line, mapping in read_recipients(recipients_file):
        try:
            person = d.parse_recipient(mapping) if "__error__" not in mapping else None
        except DispatchError:
            person = None
        if person is None or not person.national_id:
            skipped += 1
            continue
        for provider in router.order.get(person.country, ()):
            if getattr(d.channels[provider], "configured", False):
                wanted.setdefault(provider, set()).add((person.country, person.national_id))

    async def refresh() -> dict[str, int]:
        try:
            return {name: await router.refresh(name, sorted(people), force=force) for name, people in wanted.items()}
        finally:
            for name in wanted:
                await d.channels[name].aclose()

    calls = asyncio.run(refresh())
    for name, people in sorted(wanted.items()):
        console.print(f"{name}: {len(people)} people, {calls[name]} look-up calls", highlight=False)
    if skipped:
        console.print(f"{skipped} rows without a usable national_id skipped", highlight=False)
