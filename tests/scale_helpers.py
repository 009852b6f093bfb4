"""Running real `dispatch worker` processes against real servers, for the scale-out tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent / "dispatch"


def write_config(
    path: Path, *, store: str, broker: str, outbox: Path, extra: str = "", stuck_after: int | None = 5
) -> Path:
    """A dispatch.toml for worker processes; ``stuck_after=None`` keeps the default relay horizon."""
    path.write_text(
        f'outbox = "{outbox}"\n'
        f'[store]\nurl = "{store}"\n'
        f'[broker]\nurl = "{broker}"\nmin_backoff_ms = 100\nmax_backoff_ms = 1000\nmax_retries = 30\n'
        + (f"stuck_after = {stuck_after}\n" if stuck_after is not None else "")
        + '[links]\nsecret = "test"\nbase_url = "https://energia.example.fi/d"\n'
        + extra,
        encoding="utf-8",
    )
    return path


def start_worker(
    config: Path,
    *,
    processes: int = 1,
    threads: int = 4,
    relay_interval: float | None = 1.0,
    log: Path | None = None,
) -> subprocess.Popen:
    """A ``dispatch worker`` in its own session; ``relay_interval=None`` keeps the configured one."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    relay = ["--relay-interval", str(relay_interval)] if relay_interval is not None else []
    return subprocess.Popen(
        [str(BIN), "--config", str(config), "worker", "--processes", str(processes), "--threads", str(threads), *relay],
        stdout=out,
        stderr=out,
        start_new_session=True,
    )


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def wait_until(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
