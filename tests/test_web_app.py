"""``dispatch serve`` as an application: health, metrics, plugin routes, services beside it, start and stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from servers import free_port
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from web_helpers import ROOT, LiveServer, request

from dispatch import hookimpl
from dispatch.cli import cli
from dispatch.errors import ConfigError, PluginError
from dispatch.web import create_app, require_signing_secret


def test_health_and_metrics(dispatcher):
    server = LiveServer(create_app(dispatcher)).start()
    try:
        status, body, headers = request(f"{server.base}/health")
        assert status == 200 and '"status":"ok"' in body
        request(f"{server.base}/preferences/forged")  # an error page, counted
        status, body, headers = request(f"{server.base}/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain")
        assert 'dispatch_web_error_pages_total{status="404"}' in body
        assert "process_cpu_seconds_total" in body or "python_info" in body
        assert request(f"{server.base}/health", {"x": "1"})[0] == 405
    finally:
        server.stop()
    dispatcher.store.engine.dispose()


class Echo:
    """A plugin adding a web route through the hook."""

    @hookimpl
    def dispatch_web_routes(self, register, dispatcher):
        def hello(request: Request) -> PlainTextResponse:  # a plain def runs in a thread
            return PlainTextResponse(f"hello {request.path_params['name']} from {len(dispatcher.channels)} channels")

        register("/hooks/echo/{name}", hello, methods=("GET",))


def test_a_plugin_adds_web_routes_through_the_hook(make_dispatcher):
    d = make_dispatcher(plugins=[Echo()])
    server = LiveServer(create_app(d)).start()
    try:
        status, body, _ = request(f"{server.base}/hooks/echo/world")
        assert (status, body) == (200, f"hello world from {len(d.channels)} channels")
        assert request(f"{server.base}/twilio/status", {"MessageSid": "SM1"})[0] == 403  # the SMS plugin's, mounted
    finally:
        server.stop()


def test_an_error_in_a_route_is_a_branded_500_page(make_dispatcher):
    class Broken:
        @hookimpl
        def dispatch_web_routes(self, register):
            def broken(request: Request) -> PlainTextResponse:
                raise RuntimeError("boom")

            register("/hooks/broken", broken, methods=("GET",))

    server = LiveServer(create_app(make_dispatcher(plugins=[Broken()]))).start()
    try:
        status, page, _ = request(f"{server.base}/hooks/broken", headers={"Accept-Language": "nb-NO,nb;q=0.9"})
        assert status == 500 and '<html lang="nb">' in page and "Noe gikk galt" in page and "boom" not in page
    finally:
        server.stop()


@pytest.mark.parametrize(
    "path", ["/preferences/{token}", "/health", "/u/x", "/metrics/extra", "/p", "/p/{x}", "relative"]
)
def test_a_plugin_may_not_take_dispatchs_own_paths(make_dispatcher, path):
    class Greedy:
        @hookimpl
        def dispatch_web_routes(self, register):
            register(path, lambda request: PlainTextResponse(""))

    with pytest.raises(PluginError):
        create_app(make_dispatcher(plugins=[Greedy()]))


def test_a_path_registered_twice_is_an_error(make_dispatcher):
    class Twice:
        @hookimpl
        def dispatch_web_routes(self, register):
            register("/twilio/status", lambda request: PlainTextResponse(""))

    with pytest.raises(PluginError, match="registered twice"):
        create_app(make_dispatcher(plugins=[Twice()]))


class Recorder:
    """A service that notes when it starts and stops (the SMTP listener's shape)."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    async def start(self) -> None:
        self.log.append(f"start {self.name}")

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")


def test_services_start_with_the_app_and_stop_in_reverse_order(dispatcher):
    log: list[str] = []
    server = LiveServer(create_app(dispatcher, services=[Recorder("smtp", log), Recorder("imap", log)])).start()
    assert log == ["start smtp", "start imap"]
    assert request(f"{server.base}/health")[0] == 200
    server.stop()
    assert log == ["start smtp", "start imap", "stop imap", "stop smtp"]


def test_services_with_plain_start_and_stop_methods_run_too(dispatcher):
    log: list[str] = []

    class Threaded:  # the shape of aiosmtpd's Controller: it runs its own thread
        def start(self) -> None:
            log.append("start")

        def stop(self) -> None:
            log.append("stop")

    server = LiveServer(create_app(dispatcher, services=[Threaded()])).start()
    server.stop()
    assert log == ["start", "stop"]


def test_links_in_pages_keep_the_path_the_proxy_serves_them_under(make_dispatcher):
    from dispatch.samples import sample_data, sample_recipient

    d = make_dispatcher({"links": {"base_url": "https://energia.example.fi/dispatch"}})
    server = LiveServer(create_app(d)).start()  # the proxy strips /dispatch before it gets here
    try:
        receipt = d.dispatch("marketing", sample_recipient("fi", "FI"), sample_data("marketing"))
        token = d.links.preferences_token(receipt.message_id)
        status, page, headers = request(f"{server.base}/preferences/{token}")
        assert status == 200 and f'action="/dispatch/preferences/{token}?lang=fi"' in page
        assert f'href="/dispatch/preferences/{token}?lang=sv"' in page
        assert "Path=/dispatch" in headers["set-cookie"] and "Secure" in headers["set-cookie"]
        status, page, _ = request(f"{server.base}/u/{d.links.unsubscribe_token(receipt.message_id)}")
        assert 'action="/dispatch/u/' in page and 'href="/dispatch/preferences/' in page
    finally:
        server.stop()


def test_serve_refuses_to_start_outside_the_embedded_default_without_a_secret(make_dispatcher, tmp_path):
    d = make_dispatcher({"links": {"secret": None}, "broker": {"url": "redis://127.0.0.1:1/0"}})
    with pytest.raises(ConfigError, match="signing secret"):
        require_signing_secret(d)
    require_signing_secret(make_dispatcher({"links": {"secret": "configured"}, "broker": {"url": "redis://x:1/0"}}))
    require_signing_secret(make_dispatcher({"links": {"secret": None}}))  # embedded: the store keeps one
    config = tmp_path / "dispatch.toml"
    config.write_text('[broker]\nurl = "redis://127.0.0.1:1/0"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(config), "serve", "--port", str(free_port())])
    assert result.exit_code == 2 and "DISPATCH_LINK_SECRET" in result.output


def test_dispatch_serve_runs_under_uvicorn_and_shuts_down_gracefully(tmp_path):
    port = free_port()
    config = tmp_path / "dispatch.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "d.db"}"\n[links]\nbase_url = "http://127.0.0.1:{port}"\n',
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("src", "plugins"))}
    command = ["-c", "from dispatch.cli import main; main()", "--config", str(config), "serve", "--port", str(port)]
    process = subprocess.Popen(
        [sys.executable, *command],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if request(f"http://127.0.0.1:{port}/health")[0] == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, process.stdout.read().decode()
            time.sleep(0.2)
        status, page, headers = request(f"http://127.0.0.1:{port}/nothing-here")
        assert status == 404 and "Page not found" in page and "server" not in {k.lower() for k in headers}
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0].decode()
        assert process.returncode == 0, output
        assert "Traceback" not in output
    finally:
        if process.poll() is None:
            process.kill()


def test_the_builtin_templates_have_every_web_text_in_every_language():
    names = {p.parent.parent.name: p for p in Path(ROOT / "templates").glob("*/_web/text.html")}
    assert set(names) == {"fi", "sv", "nb", "en"}
    keys = {lang: set(re_keys(p.read_text(encoding="utf-8"))) for lang, p in names.items()}
    assert all(k == keys["en"] for k in keys.values()), keys


def re_keys(text: str) -> list[str]:
    import re

    return re.findall(r"\{% set (\w+) =", text)
