"""``dispatch serve``: the customer's pages, provider callbacks, health and metrics, under uvicorn."""

from __future__ import annotations

import click

from ..host import PluginHost
from . import cli
from .base import console, pass_cli


@cli.command()
@click.option("--host", default=None, help="Address to listen on (default: [web] host, 127.0.0.1).")
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="Port (default: [web] port, 8025).")
@click.option(
    "--smtp-port",
    default=None,
    type=click.IntRange(1, 65535),
    help="Port of the listener for returned mail (default: [channels.email] inbound_port; needs return_path).",
)
@click.option("--smtp-host", default=None, help="Address of the returned-mail listener (default: inbound_host).")
@pass_cli
def serve(cli_ctx, host: str | None, port: int | None, smtp_port: int | None, smtp_host: str | None) -> None:
    """Serve the links messages carry and the callbacks providers make, until Ctrl-C or SIGTERM.

    Preference pages (/preferences/TOKEN, /p/CODE), unsubscribe (/u/TOKEN, RFC 8058
    one-click), plugin routes (Twilio: /twilio/status, /twilio/inbound), /health,
    /metrics and the operator view (/operator, with [web] operator_token). Put it behind
    a TLS reverse proxy at [links] base_url. Outside the embedded default it refuses to
    start without [links] secret (DISPATCH_LINK_SECRET).
    """
    from ..web import require_signing_secret
    from ..web import serve as run

    d = cli_ctx.dispatcher()
    require_signing_secret(d)
    web = d.config.web
    host = host or web.host
    port = port or web.port
    services = plugin_services(d, smtp_port=smtp_port, smtp_host=smtp_host)
    console.print(f"serving {d.config.links.base_url} on http://{host}:{port}")
    for service in services:
        console.print(f"  with {type(service).__name__}")
    run(d, host, port, services=[*services, _WebhookSender(d)], shutdown_timeout=web.shutdown_timeout)


def plugin_services(d, **options) -> list:
    """What plugins run beside the web application (the email plugin's returned-mail listener)."""
    services: list = []
    d.pm.hook.dispatch_serve_services(register=services.append, dispatcher=PluginHost.of(d), options=options)
    return services


class _WebhookSender:
    """Starts the webhook sender with the application (after the server took over SIGTERM/SIGINT);
    the dispatcher's close stops it. Events of this process and of others are POSTed from here too."""

    def __init__(self, d) -> None:
        self.d = d

    def start(self) -> None:
        self.d.runtime.start_webhooks()

    def stop(self) -> None:
        """Stopped with the dispatcher (``Runtime.close``), after the last request."""
