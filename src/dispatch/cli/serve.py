"""``dispatch serve``: unsubscribe pages, one-click unsubscribe and Twilio webhooks."""

from __future__ import annotations

import click

from . import cli
from .base import console, pass_cli


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8025, show_default=True, type=click.IntRange(1, 65535))
@pass_cli
def serve(cli_ctx, host: str, port: int) -> None:
    """Serve the links messages carry (/u/TOKEN) and the Twilio callbacks (/twilio/status, /twilio/inbound).

    Put it behind a TLS reverse proxy at [links] base_url.
    """
    from ..web import serve as run

    d = cli_ctx.dispatcher()
    console.print(f"serving {d.config.links.base_url} on http://{host}:{port}")
    run(d, host, port)
