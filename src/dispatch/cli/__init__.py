"""The ``dispatch`` command line (SPEC §9).

Exit status 0 on success, 2 on bad input with a one-line reason — never a
traceback for a user's mistake.
"""

from __future__ import annotations

import logging
import sys

import click

from ..errors import DispatchError
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
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@click.version_option(package_name="dispatch")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """dispatch: consent-aware customer messages for Nordic electricity retailers."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = CliContext(config_path)
    ctx.call_on_close(ctx.obj.close)


def main() -> None:
    cli(prog_name="dispatch")


def _register_commands() -> None:
    from . import campaign, consents, demo, history, queue, registers, send, serve, templates, worker  # noqa: F401


_register_commands()

__all__ = ["cli", "main", "pass_cli"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
