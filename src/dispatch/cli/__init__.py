"""The ``dispatch`` command line (SPEC §9).

Exit status 0 on success, 2 on bad input with a one-line reason — never a
traceback for a user's mistake.
"""

from __future__ import annotations

import os
import sys

import click

from ..errors import DispatchError
from ..logs import LEVEL_ENV, LOG_FORMATS, configure_logging, level_for
from .base import CliContext, pass_cli


class DispatchGroup(click.Group):
    """Turns DispatchError into a one-line message and exit status 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DispatchError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=DispatchGroup)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="DISPATCH_CONFIG",
    help="dispatch.toml to use (default: ./dispatch.toml, else embedded defaults).",
)
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug); else DISPATCH_LOG_LEVEL.")
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS, case_sensitive=False),
    envvar="DISPATCH_LOG_FORMAT",
    help="Logs as human-readable lines or one JSON object per line (default: [logging] format, else human).",
)
@click.version_option(package_name="dispatch")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int, log_format: str | None) -> None:
    """dispatch: consent-aware customer messages for Nordic electricity retailers."""
    level = level_for(verbose) if verbose else os.environ.get(LEVEL_ENV) or None
    if log_format is None or level is None:
        from ..config import load_config

        settings = load_config(config_path).logging
        log_format, level = log_format or settings.format, level or settings.level
    ctx.call_on_close(configure_logging(level, log_format))
    ctx.obj = CliContext(config_path)
    ctx.call_on_close(ctx.obj.close)


def main() -> None:
    cli(prog_name="dispatch")


def _register_commands() -> None:
    from . import (  # noqa: F401
        campaign,
        consents,
        demo,
        history,
        offers,
        queue,
        registers,
        send,
        serve,
        status,
        suppressions,
        templates,
        webhooks,
        worker,
    )


_register_commands()

__all__ = ["cli", "main", "pass_cli"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
