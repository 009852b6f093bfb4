"""``dispatch worker``: delivery processes for the configured broker."""

from __future__ import annotations

import click

from . import cli
from .base import pass_cli


@cli.command()
@click.option("--processes", type=click.IntRange(1, 64), help="Worker processes (default: [worker] processes).")
@click.option("--threads", type=click.IntRange(1, 256), help="Threads per process (default: [worker] threads).")
@click.option("--queues", help="Comma-separated queues, e.g. email,email.bulk (default: all).")
@click.option("--relay-interval", type=float, help="Seconds between relay rounds (default: [worker] relay_interval).")
@pass_cli
def worker(cli_ctx, processes, threads, queues, relay_interval) -> None:
    """Consume the channel queues and deliver; re-enqueue what a crash left behind.

    Prints one start line (broker, store, queues, processes × threads, version). While the
    broker or the store is down it says so once, waits with back-off and carries on by itself
    when it is back. The first process also releases scheduled campaigns at their moment.
    SIGTERM or Ctrl-C: the sends in flight finish and are recorded, then it exits with 0.
    With [worker] metrics_port, each process serves Prometheus /metrics on port + its index.
    """
    from ..config import load_config
    from ..worker import run_worker

    config = load_config(cli_ctx.config_path)
    status = run_worker(
        cli_ctx.config_path,
        processes=processes or config.worker.processes,
        threads=threads or config.worker.threads,
        queues=[q.strip() for q in (queues or ",".join(config.worker.queues)).split(",") if q.strip()],
        relay_interval=relay_interval,
    )
    raise SystemExit(status)
