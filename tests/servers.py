"""Real Redis and PostgreSQL servers for tests, on 127.0.0.1, free ports, temporary folders.

Locally a missing server binary skips the test with a loud reason; in CI (CI=true) it fails,
because ``scripts/test`` installs them there.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(what: str) -> None:
    """Skip loudly, or fail in CI."""
    message = f"{what} is not installed: run scripts/test (it installs it) — this test needs the real server"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@dataclass
class RedisServer:
    port: int
    folder: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            missing("redis-server")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--protected-mode",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


def _postgres_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


@dataclass
class PostgresServer:
    port: int
    folder: Path
    process_started: bool = False

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://dispatch@127.0.0.1:{self.port}/dispatch"

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        command = list(args)
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)

    def new_database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        import psycopg

        name = f"t{int(time.time() * 1000) % 10**10}{os.getpid() % 1000}{free_port() % 1000}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=dispatch dbname=dispatch", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://dispatch@127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
        if initdb is None or pg_ctl is None:
            missing("PostgreSQL (initdb, pg_ctl)")
        data = self.folder / "data"
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        self._run(initdb, "-D", str(data), "-U", "dispatch", "--auth=trust", "-E", "UTF8", "--no-sync")
        self._start_server()
        self._run(
            _postgres_bin("createdb") or "createdb",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "dispatch",
            "dispatch",
        )

    def _start_server(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        pg_ctl = _postgres_bin("pg_ctl") or "pg_ctl"
        self._run(pg_ctl, "-D", str(self.folder / "data"), "-o", options, "-l", str(self.folder / "log"), "-w", "start")
        self.process_started = True

    def stop(self) -> None:
        if self.process_started:
            self._run(_postgres_bin("pg_ctl") or "pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "stop")
            self.process_started = False

    def pause(self) -> None:
        """Stop the server (``pg_ctl stop -m fast``: connections are cut), keeping its data and port."""
        self.stop()

    def resume(self) -> None:
        """Start the paused server again on the same data folder and port."""
        if not self.process_started:
            self._start_server()

    @contextmanager
    def outage(self) -> Iterator[None]:
        """The server is down inside the block, and up again after it (even if the block fails)."""
        self.pause()
        try:
            yield
        finally:
            self.resume()


@dataclass
class RabbitServer:
    """A private RabbitMQ node (its own ports, folder and epmd) run as the rabbitmq user."""

    port: int
    folder: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def _env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.folder),
            "RABBITMQ_NODENAME": f"dispatch{self.port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.folder / "pid"),
        }

    def start(self) -> None:
        binary = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
        if not binary.exists():
            missing("rabbitmq-server")
        self.epmd_port = free_port()
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "enabled_plugins").write_text("[].\n")
        command = ["env", *(f"{k}={v}" for k, v in self._env().items()), str(binary)]
        if os.geteuid() == 0:
            user = pwd.getpwnam("rabbitmq")
            for path in (self.folder, self.folder / "enabled_plugins"):
                os.chown(path, user.pw_uid, user.pw_gid)
            command = ["runuser", "-u", "rabbitmq", "--", *command]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, cwd=self.folder
        )
        wait_for_port(self.port, timeout=60)

    def stop(self) -> None:
        if self.process is not None:
            import signal

            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process = None
        subprocess.run(["pkill", "-f", f"epmd.*{self.epmd_port}"], check=False, capture_output=True)
