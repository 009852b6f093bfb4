"""The plugin system: hook specs, built-ins as plugins, entry points, the example plugin."""

from __future__ import annotations

import inspect
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from outbox_readers import json_lines

from dispatch import hookimpl, hookspecs
from dispatch.checks import check_templates
from dispatch.errors import PluginError
from dispatch.plugins import get_plugin_manager, plugin_info

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "dispatch_push"
HOOKS = sorted(name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("dispatch_"))
NOW = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)


def test_every_hook_is_documented_with_its_signature():
    docs = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    for name in HOOKS:
        signature = f"{name}{inspect.signature(getattr(hookspecs, name))}".replace("'", "")
        assert re.sub(r"\s+", "", signature) in re.sub(r"\s+", "", docs), f"{name} is not documented as {signature}"


def test_every_hook_has_a_docstring_and_a_test():
    sources = "".join(p.read_text(encoding="utf-8") for p in Path(__file__).parent.rglob("test_*.py"))
    sources += (EXAMPLE / "dispatch_push" / "__init__.py").read_text(encoding="utf-8")
    for name in HOOKS:
        assert (getattr(hookspecs, name).__doc__ or "").strip(), f"{name} has no docstring"
        assert f"def {name}(" in sources, f"no test implements {name}"


def test_builtins_are_registered_as_plugins_with_their_hooks():
    pm = get_plugin_manager()
    info = {p["name"]: p for p in plugin_info(pm)}
    assert {"builtin_types", "email", "sms", "letter", "phone", "registers"} <= set(info)
    assert info["email"]["hooks"] == ["dispatch_channels", "dispatch_serve_services"] and info["email"]["builtin"]
    assert info["registers"]["hooks"] == ["dispatch_registers"]


def test_a_misspelt_hook_is_an_error():
    class Typo:
        @hookimpl
        def dispatch_chanels(self, register):  # sic
            pass

    with pytest.raises(PluginError, match="dispatch_chanels"):
        get_plugin_manager([Typo()])


def test_a_channel_registered_twice_is_an_error(make_dispatcher):
    from dispatch_email import EmailChannel

    class Again:
        @hookimpl
        def dispatch_channels(self, register):
            register(EmailChannel)

    with pytest.raises(PluginError, match="channel 'email' is registered twice"):
        make_dispatcher(plugins=[Again()])


def test_template_filters_from_plugins_are_available_and_cannot_shadow_builtins(make_dispatcher, tmp_path):
    class Shout:
        @hookimpl
        def dispatch_template_filters(self, register):
            register("shout", lambda text: f"{text.upper()}!")

    folder = tmp_path / "tpl" / "fi" / "survey"
    folder.mkdir(parents=True)
    (folder / "sms.txt").write_text("{{ company.name | shout }} {{ survey_url }} {{ message.unsubscribe_url }}")
    d = make_dispatcher({"templates": {"paths": [str(tmp_path / "tpl")]}}, plugins=[Shout()])
    from dispatch.samples import sample_data, sample_recipient

    parts = d.preview("survey", sample_recipient("fi", "FI"), sample_data("survey"), channel="sms")
    assert parts["text"].startswith("POHJOLAN ENERGIA OY! https://")

    class Clash:
        @hookimpl
        def dispatch_template_filters(self, register):
            register("date", str)

    with pytest.raises(PluginError, match="template filter 'date' is registered twice"):
        make_dispatcher(plugins=[Clash()])


@pytest.fixture
def installed_example(tmp_path, monkeypatch):
    """Make the example plugin discoverable as an installed distribution with an entry point."""
    site = tmp_path / "site"
    dist = site / "dispatch_push-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: dispatch-push\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[dispatch]\npush = dispatch_push\n")
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.syspath_prepend(str(site))
    yield
    sys.modules.pop("dispatch_push", None)


def test_the_example_plugin_is_found_through_its_entry_point_and_delivers(installed_example, make_dispatcher, tmp_path):
    d = make_dispatcher()
    assert "push" in d.channels and "outage_notice" in d.types
    info = {p["name"]: p for p in plugin_info(d.pm)}
    assert info["push"]["version"] == "0.1.0" and not info["push"]["builtin"]
    receipt = d.dispatch(
        "outage_notice",
        {"id": "C-5", "country": "FI"},
        {"area": "Kallio", "outage_on": "2027-02-03", "hours": "9-12"},
        now=NOW,
    )
    assert (receipt.channel, receipt.status, receipt.category) == ("push", "queued", "service")
    assert d.join(30)
    [line] = json_lines(tmp_path / "outbox" / "push" / "push.jsonl")
    assert line["title"] == "Sähkökatko 3.2.2027"
    assert line["customer"] == "C-5" and "Kallio" in line["body"]
    report = check_templates(d, types=["outage_notice"])
    assert report.ok, [str(p) for p in report.problems]
    assert report.checked == 8  # push and sms × fi, sv, nb, en


def test_plugin_autoload_can_be_limited_or_switched_off(installed_example, make_dispatcher, monkeypatch):
    monkeypatch.setenv("DISPATCH_PLUGINS", "something-else")
    assert "push" not in make_dispatcher().channels
    monkeypatch.delenv("DISPATCH_PLUGINS")
    monkeypatch.setenv("DISPATCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    d = make_dispatcher()
    assert "push" not in d.channels and "email" in d.channels  # built-ins always load


def test_message_types_from_a_plugin_hook(make_dispatcher):
    from dispatch import FieldSpec, MessageType

    class Types:
        @hookimpl
        def dispatch_message_types(self, register):
            register(
                MessageType(
                    "meter_reading", "service", (FieldSpec("read_by", "date"),), ("email",), ("email",), "contract"
                )
            )

    d = make_dispatcher(plugins=[Types()])
    assert d.message_type("meter_reading").category == "service"


def test_registers_come_from_a_plugin_hook(make_dispatcher):
    from dispatch import Register

    class Local(Register):
        name = "local-robinson"
        country = "FI"
        channels = ("letter",)

    class Registers:
        @hookimpl
        def dispatch_registers(self, register):
            register(Local)

    d = make_dispatcher(plugins=[Registers()])
    assert "local-robinson" in {r["name"] for r in d.registers.status()}


def test_delivery_attempted_hook_errors_do_not_change_the_outcome(make_dispatcher, tmp_path):
    calls = []

    class Broken:
        @hookimpl
        def dispatch_delivery_attempted(self, message, result, error):
            calls.append(message.id)
            raise RuntimeError("observer bug")

    d = make_dispatcher(plugins=[Broken()])
    from dispatch.samples import sample_data, sample_recipient

    receipt = d.dispatch("survey", sample_recipient("fi", "FI"), sample_data("survey"), now=NOW)
    assert d.join(30)
    assert calls == [receipt.message_id]
    assert d.store.message(receipt.message_id)["status"] == "sent"


def test_template_roots_from_plugins_must_exist(make_dispatcher, tmp_path):
    class Missing:
        @hookimpl
        def dispatch_template_roots(self, register):
            register(tmp_path / "nope")

    with pytest.raises(PluginError, match="does not exist"):
        make_dispatcher(plugins=[Missing()])
