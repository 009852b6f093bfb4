"""Content governance (SPEC §5): template versions, four-eyes approval, translations that drift."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from dispatch.approvals import derive_state
from dispatch.cli import cli
from dispatch.errors import ApprovalRefused, ConfigError, TemplateNotApproved
from dispatch.render import builtin_template_dir
from dispatch.samples import sample_data, sample_recipient

NOW = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)


def person(language, country, **extra):
    return {**sample_recipient(language, country), "language": language, **extra}


@pytest.fixture
def templates(tmp_path) -> Path:
    """A copy of the built-in templates that a test may edit (it is searched first)."""
    root = tmp_path / "tpl"
    shutil.copytree(builtin_template_dir(), root)
    return root


@pytest.fixture
def governed(make_dispatcher, templates):
    """Dispatchers over the editable templates, with approval required for statutory messages."""

    def make(**templates_config):
        config = {"paths": [str(templates)], "require_approval": ["statutory"], **templates_config}
        return make_dispatcher({"templates": config})

    return make


def touch(path: Path) -> None:
    """A one-byte change."""
    path.write_bytes(path.read_bytes() + b" ")


def approve(d, message_type, language, channel="email", *, author="Aino Author", approver="Bo Approver"):
    d.approvals.propose(message_type, language, channel, by=author, now=NOW, comment="new wording")
    return d.approvals.approve(message_type, language, channel, by=approver, now=NOW)


# -- versions ---------------------------------------------------------------------------------


def test_a_version_covers_parts_partials_layout_shared_markup_and_the_channels_own_layout(dispatcher):
    parts = dispatcher.channels["email"].parts
    _, files = dispatcher.renderer.template_version_files("price_change", "email", parts, "fi")
    assert {"price_change/email.html", "price_change/email.txt", "price_change/email.subject.txt"} <= set(files)
    assert {"_partials/greeting.txt", "_layout/email.html", "email_base.html"} <= set(files)  # found in the AST
    _, letter = dispatcher.renderer.template_version_files(
        "price_change", "letter", dispatcher.channels["letter"].parts, "fi"
    )
    assert "_layout/letter_info.txt" in letter  # rendered by the letter plugin itself, found by the loader
    assert "_layout/letter_info.txt" not in files


def test_one_byte_in_a_shared_partial_changes_the_version_of_every_type_that_includes_it(make_dispatcher, templates):
    d = make_dispatcher({"templates": {"paths": [str(templates)]}})
    email = d.channels["email"].parts
    before = {t: d.renderer.template_version(t, "email", email, "fi") for t in ("price_change", "newsletter")}
    sv_before = d.renderer.template_version("price_change", "email", email, "sv")
    touch(templates / "fi" / "_partials" / "signature.txt")
    after = {t: d.renderer.template_version(t, "email", email, "fi", fresh=True) for t in before}
    assert all(before[t] != after[t] for t in before)
    assert d.renderer.template_version("price_change", "email", email, "sv", fresh=True) == sv_before


def test_each_message_records_its_version_and_its_events_and_history_carry_it(dispatcher, tmp_path):
    events = []
    dispatcher.events.subscribe(events.append)
    receipt = dispatcher.dispatch("price_change", person("fi", "FI"), sample_data("price_change", "FI"), now=NOW)
    assert dispatcher.join(60)
    version = dispatcher.renderer.template_version("price_change", "email", dispatcher.channels["email"].parts, "fi")
    assert dispatcher.store.message(receipt.message_id)["template_version"] == version
    mine = [e for e in events if e.data.get("message_id") == receipt.message_id]
    assert [e.type for e in mine] == ["message.queued", "message.sending", "message.sent"]
    assert {e.data["template_version"] for e in mine} == {version}
    result = CliRunner().invoke(cli, ["history", receipt.message_id], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert version in result.output
    listed = CliRunner().invoke(cli, ["templates", "versions", "price_change"], env={"COLUMNS": "250"})
    assert listed.exit_code == 0, listed.output
    line = next(line for line in listed.output.splitlines() if version in line)
    assert "fi" in line and "email" in line and " 1 " in line and "current" in line


def test_the_variant_cache_does_not_reuse_a_variant_rendered_from_other_files(make_dispatcher, templates):
    d = make_dispatcher({"templates": {"paths": [str(templates)]}})
    first = d.dispatch("price_change", person("fi", "FI"), sample_data("price_change", "FI"), now=NOW)
    path = templates / "fi" / "price_change" / "email.subject.txt"
    path.write_text(path.read_text(encoding="utf-8").rstrip() + " (muutettu)\n", encoding="utf-8")
    d.renderer.forget_versions()
    second = d.dispatch("price_change", person("fi", "FI", id="C-2"), sample_data("price_change", "FI"), now=NOW)
    assert d.join(60)
    one, two = d.store.message(first.message_id), d.store.message(second.message_id)
    assert one["template_version"] != two["template_version"]
    assert "(muutettu)" not in one["content"]["parts"]["subject"]
    assert "(muutettu)" in two["content"]["parts"]["subject"]


# -- four eyes --------------------------------------------------------------------------------


def test_the_proposer_cannot_approve_their_own_version(governed):
    d = governed()
    d.approvals.propose("price_change", "fi", "email", by="Aino Author", now=NOW)
    with pytest.raises(ApprovalRefused, match="four eyes"):
        d.approvals.approve("price_change", "fi", "email", by="  aino   AUTHOR ", now=NOW)
    assert d.approvals.state("price_change", "fi", "email").state == "proposed"
    with pytest.raises(ApprovalRefused, match="not proposed"):
        d.approvals.approve("price_change", "sv", "email", by="Bo Approver", now=NOW)
    assert d.approvals.approve("price_change", "fi", "email", by="Bo Approver", now=NOW).state == "approved"


def test_an_unapproved_statutory_version_is_refused_before_anything_is_written(governed):
    d = governed()
    data = sample_data("price_change", "FI")
    decision = d.decide("price_change", person("fi", "FI"), data, now=NOW)
    assert not decision.allowed and decision.reasons == ["template_unapproved"]
    with pytest.raises(TemplateNotApproved, match="price_change/fi/email"):
        d.dispatch("price_change", person("fi", "FI"), data, now=NOW, idempotency_key="k-1")
    assert d.store.find_by_key("k-1") is None
    assert d.store.messages_for(person("fi", "FI")["id"]) == []


def test_an_approved_version_is_sent_and_a_one_byte_change_is_unapproved_again(governed, templates):
    d = governed()
    data = sample_data("price_change", "FI")
    state = approve(d, "price_change", "fi")
    receipt = d.dispatch("price_change", person("fi", "FI"), data, now=NOW)
    assert receipt.status == "queued"
    assert d.join(60)
    assert d.store.message(receipt.message_id)["template_version"] == state.version
    touch(templates / "fi" / "price_change" / "email.txt")
    later = governed()  # a new process reads the files again
    assert later.decide("price_change", person("fi", "FI"), data, now=NOW).reasons == ["template_unapproved"]
    with pytest.raises(TemplateNotApproved):
        later.dispatch("price_change", person("fi", "FI", id="C-9"), data, now=NOW)
    assert later.store.messages_for("C-9") == []


def test_without_require_approval_nothing_needs_approving(make_dispatcher):
    d = make_dispatcher()
    assert d.config.templates.require_approval == []
    receipt = d.dispatch("price_change", person("fi", "FI"), sample_data("price_change", "FI"), now=NOW)
    assert receipt.status == "queued"


def test_require_approval_names_categories_and_unknown_ones_are_config_errors(make_dispatcher):
    with pytest.raises(ConfigError, match=r"templates\.require_approval.*'statuary'"):
        make_dispatcher({"templates": {"require_approval": ["statuary"]}})
    with pytest.raises(ConfigError, match=r"templates\.source_language"):
        make_dispatcher({"templates": {"source_language": "de"}})
    with pytest.raises(ConfigError, match=r"templates\.approvers"):
        make_dispatcher({"templates": {"approvers": ["x"]}})


def test_a_campaign_checks_once_before_its_first_recipient(governed):
    d = governed()
    people = [person("fi", "FI", id=f"C-{i}") for i in range(3)]
    with pytest.raises(TemplateNotApproved, match=r"and \d+ more"):
        d.campaign("price_change", people, sample_data("price_change", "FI"), campaign_id="may", now=NOW)
    assert d.store.campaign("may") is None
    assert d.store.status_counts() == {}


# -- translations that drift -------------------------------------------------------------------


def test_a_stale_translation_is_refused_for_a_price_notice_and_allowed_for_a_newsletter(governed, templates):
    d = governed()
    for message_type in ("price_change", "newsletter"):
        for language in ("fi", "sv"):
            approve(d, message_type, language)
    sv = d.approvals.state("price_change", "sv", "email")
    assert sv.state == "approved" and sv.approved_source_version == sv.source_version
    touch(templates / "fi" / "_partials" / "signature.txt")  # shared by both types
    d = governed()
    assert d.approvals.state("price_change", "sv", "email").state == "stale"
    assert d.approvals.state("newsletter", "sv", "email").state == "stale"
    assert d.approvals.state("price_change", "fi", "email").state == "unapproved"
    swede = person("sv", "FI", id="C-sv")
    with pytest.raises(TemplateNotApproved, match="stale translation"):
        d.dispatch("price_change", swede, sample_data("price_change", "FI"), now=NOW)
    newsletter = d.dispatch("newsletter", swede, sample_data("newsletter", "FI"), now=NOW)
    assert newsletter.status == "queued"  # only statutory requires approval
    # approving sv again against the new fi makes it current (fi itself still needs its approval)
    again = d.approvals.approve("price_change", "sv", "email", by="Cecilia Checker", now=NOW)
    assert again.state == "approved" and again.approved_source_version == again.source_version


def test_templates_check_lists_stale_translations_and_fails_with_strict(governed, templates, tmp_path):
    d = governed()
    approve(d, "newsletter", "fi")
    approve(d, "newsletter", "sv")
    d.close()
    touch(templates / "fi" / "newsletter" / "email.txt")
    config = tmp_path / "dispatch.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "dispatch.db"}"\n'
        f'[templates]\npaths = ["{templates}"]\nrequire_approval = ["statutory"]\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    args = ["--config", str(config), "templates", "check", "--type", "newsletter"]
    plain = runner.invoke(cli, args, env={"COLUMNS": "250"})
    assert "newsletter/sv/email" in plain.output and "stale" in plain.output
    assert plain.exit_code == 0, plain.output
    strict = runner.invoke(cli, [*args, "--strict"], env={"COLUMNS": "250"})
    assert strict.exit_code == 1 and "newsletter/sv/email" in strict.output


def test_the_command_line_proposes_approves_and_refuses_with_one_line(governed, tmp_path, templates):
    config = tmp_path / "dispatch.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "dispatch.db"}"\n'
        f'[templates]\npaths = ["{templates}"]\nrequire_approval = ["statutory"]\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    base = ["--config", str(config), "templates"]
    recipient = tmp_path / "r.json"
    recipient.write_text(__import__("json").dumps(person("fi", "FI")), encoding="utf-8")
    data = tmp_path / "d.json"
    data.write_text(__import__("json").dumps(sample_data("price_change", "FI"), default=str), encoding="utf-8")
    send = ["--config", str(config), "send", "price_change", "--recipient", str(recipient), "--data", str(data)]
    refused = runner.invoke(cli, send)
    assert refused.exit_code == 2
    assert refused.stderr.count("\n") == 1 and "not approved" in refused.stderr
    proposed = runner.invoke(cli, [*base, "propose", "price_change", "--lang", "fi", "--by", "Aino", "--comment", "x"])
    assert proposed.exit_code == 0, proposed.output
    assert proposed.output.count("proposed price_change/fi/") == 3  # email, sms, letter
    own = runner.invoke(cli, [*base, "approve", "price_change", "--lang", "fi", "--by", "aino"])
    assert own.exit_code == 2 and "four eyes" in own.stderr
    ok = runner.invoke(cli, [*base, "approve", "price_change", "--lang", "fi", "--by", "Bo"])
    assert ok.exit_code == 0, ok.output
    status = runner.invoke(cli, [*base, "status", "price_change", "--lang", "fi", "--history"], env={"COLUMNS": "250"})
    assert status.exit_code == 0, status.output
    assert status.output.count("approved") >= 3 and "proposed by Aino" in status.output
    sent = runner.invoke(cli, send)
    assert sent.exit_code == 0, sent.output
    shown = runner.invoke(cli, ["--config", str(config), "history", person("fi", "FI")["id"]], env={"COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    assert "approved by Bo" in shown.output


def test_the_state_follows_the_rows():
    rows = [
        {"action": "proposed", "version": "v1", "by": "A", "at": NOW, "comment": None, "source_version": None},
        {"action": "approved", "version": "v1", "by": "B", "at": NOW, "comment": None, "source_version": "s1"},
    ]
    state = derive_state("price_change", "sv", "email", "v1", (), rows, "fi", "s1")
    assert (state.state, state.proposed_by, state.approved_by) == ("approved", "A", "B")
    assert derive_state("price_change", "sv", "email", "v1", (), rows, "fi", "s2").state == "stale"
    assert derive_state("price_change", "sv", "email", "v2", (), rows, "fi", "s1").state == "unapproved"
    assert derive_state("price_change", "sv", "email", "v1", (), rows[:1], "fi", "s1").state == "proposed"
    # the source language itself never goes stale
    assert derive_state("price_change", "fi", "email", "v1", (), rows, "fi", None).state == "approved"


def test_the_preview_marks_a_stale_translation_and_an_unapproved_statutory_version(governed, templates):
    from dispatch.preview_page import build_preview

    d = governed()
    approve(d, "newsletter", "fi")
    approve(d, "newsletter", "sv")
    approve(d, "price_change", "fi")
    page = build_preview(d, "newsletter", channels=["email"], languages=["fi", "sv"], now=NOW)
    assert not any("stale" in w for w in page.cell("email", "sv").warnings)
    touch(templates / "fi" / "newsletter" / "email.txt")
    d = governed()
    page = build_preview(d, "newsletter", channels=["email"], languages=["fi", "sv"], now=NOW)
    assert any("stale translation" in w for w in page.cell("email", "sv").warnings)
    assert not any("approv" in w for w in page.cell("email", "fi").warnings)  # a newsletter needs no approval
    notice = build_preview(d, "price_change", channels=["email"], languages=["fi", "sv"], now=NOW)
    assert not any("approv" in w for w in notice.cell("email", "fi").warnings)
    assert any("not approved" in w for w in notice.cell("email", "sv").warnings)
