"""Shared fixtures: every test runs in its own folder with the embedded defaults."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import PostgresServer, RabbitServer, RedisServer, free_port

from dispatch import Dispatcher

#: No email address or phone number in dispatch's logs, in any test (see tests/log_privacy.py).
pytest_plugins = ["log_privacy"]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_ENV = (
    "DISPATCH_CONFIG",
    "DISPATCH_STORE_URL",
    "DISPATCH_BROKER_URL",
    "DISPATCH_LINK_SECRET",
    "DISPATCH_SMTP_PASSWORD",
    "TWILIO_AUTH_TOKEN",
    "DISPATCH_PLUGINS",
    "DISPATCH_DISABLE_PLUGIN_AUTOLOAD",
    "DISPATCH_LOG_FORMAT",
    "DISPATCH_LOG_LEVEL",
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Run in a fresh folder, with no dispatch settings leaking in from the environment."""
    monkeypatch.chdir(tmp_path)
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def make_dispatcher(tmp_path: Path) -> Iterator[Callable[..., Dispatcher]]:
    """Build dispatchers on the embedded defaults in ``tmp_path``; all are closed afterwards."""
    made: list[Dispatcher] = []

    def make(overrides: dict[str, Any] | None = None, **kwargs: Any) -> Dispatcher:
        base: dict[str, Any] = {
            "store": {"url": f"sqlite:///{tmp_path / 'dispatch.db'}"},
            "outbox": str(tmp_path / "outbox"),
            "links": {"base_url": "https://energia.example.fi/dispatch", "secret": "test-secret"},
            "broker": {"min_backoff_ms": 50, "max_backoff_ms": 200, "max_retries": 2, "drain_timeout": 60},
        }
        for key, value in (overrides or {}).items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                base[key] = {**base[key], **value}
            else:
                base[key] = value
        d = Dispatcher.from_config(overrides=base, **kwargs)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


@pytest.fixture
def dispatcher(make_dispatcher) -> Dispatcher:
    return make_dispatcher()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    """A real redis-server on a free port (skipped loudly if not installed; fails in CI)."""
    server = RedisServer(free_port(), tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for this test."""
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()
    import redis

    redis.Redis.from_url(redis_server.url).flushall()
    return redis_server.url


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    """A real RabbitMQ node on free ports, in a temporary folder (it takes a few seconds to boot)."""
    folder = Path(tempfile.mkdtemp(prefix="dispatch-rabbit-"))
    os.chmod(folder, 0o755)
    server = RabbitServer(free_port(), folder)
    try:
        server.start()
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL cluster on a free port, in a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="dispatch-pg-"))
    server = PostgresServer(free_port(), folder)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty PostgreSQL database for this test."""
    return postgres_server.new_database()
