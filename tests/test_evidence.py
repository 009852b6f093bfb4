"""Evidence packs (SPEC §14): a campaign with a delivery, a bounce and its fallback, read back from the zip."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from outbox_readers import email_parts, eml_path, read_eml

from dispatch.cli import cli
from dispatch.errors import InputError
from dispatch.evidence import content_hash, read_pack, rebuild, write_pack
from dispatch.feedback import FeedbackKind, ProviderEvent
from dispatch.samples import sample_data, sample_recipient
from dispatch.store import now_utc

NOW = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)
APPROVED_AT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # before the campaign, and before the real clock's fallback


def person(pid, **extra):
    return {**sample_recipient("fi", "FI"), "id": pid, "language": "fi", "national_id": "131052-308T", **extra}


@pytest.fixture(params=["sqlite", "postgresql"])
def campaign(request, make_dispatcher, tmp_path):
    """A price notice campaign under four eyes: one delivered, one bounced and re-sent by letter, one sent."""
    sqlite = f"sqlite:///{tmp_path / 'dispatch.db'}"
    url = sqlite if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    d = make_dispatcher({"templates": {"require_approval": ["statutory"]}, "store": {"url": url}})
    for language in d.renderer.languages():
        for channel in ("email", "sms", "letter"):
            if d.approvals.has_template("price_change", language, channel):
                d.approvals.propose("price_change", language, channel, by="Aino Author", now=APPROVED_AT)
                d.approvals.approve("price_change", language, channel, by="Bo Approver", now=APPROVED_AT)
    people = [person("C-1"), person("C-2"), person("=HYPERLINK(1)")]
    summary = d.campaign("price_change", people, sample_data("price_change", "FI"), campaign_id="may-2027", now=NOW)
    assert summary.queued == 3
    assert d.join(60)
    ids = {m["recipient_id"]: m["id"] for pid in ("C-1", "C-2") for m in d.store.messages_for(pid)}
    d.handle_feedback(ProviderEvent(FeedbackKind.DELIVERED, "email", now_utc(), message_id=ids["C-1"], source="dsn"))
    d.handle_feedback(
        ProviderEvent(FeedbackKind.BOUNCED, "email", now_utc(), message_id=ids["C-2"], permanent=True, source="dsn")
    )
    assert d.join(60)
    return d, ids


def test_the_pack_has_one_row_per_message_with_the_outcome_the_fallback_and_the_approval(campaign, tmp_path):
    d, ids = campaign
    summary = write_pack(d.store, tmp_path / "pack.zip", campaign_id="may-2027")
    pack = read_pack(tmp_path / "pack.zip")  # also checks every file against SHA256SUMS
    rows = {r["message_id"]: r for r in pack["manifest"]["messages"]}
    assert summary.messages == len(rows) == len(pack["csv"]) == 4  # three recipients, one fallback letter
    delivered, bounced = rows[ids["C-1"]], rows[ids["C-2"]]
    assert (delivered["status"], delivered["channel"], delivered["decision"]) == ("delivered", "email", "allowed")
    assert delivered["legal_basis"] == "legal_obligation" and delivered["reasons"] == []
    assert delivered["queued_at"] and delivered["sent_at"] and delivered["delivered_at"], delivered["moments"]
    assert [a["outcome"] for a in delivered["attempts"]] == ["sent", "callback"]  # the provider's later report
    assert bounced["status"] == "fallback" and bounced["bounced_at"] and len(bounced["fallbacks"]) == 1
    letter = rows[bounced["fallbacks"][0]]
    assert (letter["channel"], letter["fallback_of"], letter["recipient_id"]) == ("letter", ids["C-2"], "C-2")
    assert letter["status"] == "sent"
    for row in rows.values():
        approval = row["template_approval"]
        assert row["template_version"] and approval["by"] == "Bo Approver"
        assert approval["at"] == APPROVED_AT.isoformat()
    state = d.approvals.state("price_change", "fi", "email")
    assert delivered["template_version"] == state.version
    assert pack["summary"]["by_status"] == {"delivered": 1, "fallback": 1, "sent": 2}
    assert pack["summary"]["fallbacks"] == 1 and pack["summary"]["late_notices"] == 0
    assert "Statutory fallbacks to another channel: 1" in pack["summary_text"]
    by_id = {r["message_id"]: r for r in pack["csv"]}
    assert by_id[ids["C-2"]]["fallbacks"] == letter["message_id"]
    assert by_id[ids["C-1"]]["template_approved_by"] == "Bo Approver"
    assert (by_id[ids["C-1"]]["attempts"], by_id[ids["C-1"]]["attempt_outcomes"]) == ("1", "1:sent;1:callback")
    assert set(pack["sums"]) == {n for n in pack["names"] if n != "SHA256SUMS"}


def test_a_sent_message_is_rebuilt_from_the_pack_byte_for_byte(campaign, tmp_path):
    d, ids = campaign
    write_pack(d.store, tmp_path / "pack.zip", campaign_id="may-2027")
    pack = read_pack(tmp_path / "pack.zip")
    row = next(r for r in pack["manifest"]["messages"] if r["message_id"] == ids["C-1"])
    content = row["content"]
    parts = rebuild(pack["variants"][content["variant"]], content["values"], content["tidy_after"])
    assert content_hash(parts) == row["content_hash"]
    stored = d.store.message(ids["C-1"])["content"]["parts"]
    assert content_hash(stored) == row["content_hash"]
    text, _html = email_parts(read_eml(eml_path(tmp_path / "outbox" / "email", ids["C-1"])))
    assert parts["text"].strip() == text.strip()  # what the customer got


def test_the_pack_never_holds_a_national_id_and_its_csv_cells_are_not_formulas(campaign, tmp_path):
    d, _ids = campaign
    write_pack(d.store, tmp_path / "pack.zip", campaign_id="may-2027")
    with zipfile.ZipFile(tmp_path / "pack.zip") as pack:
        everything = b"".join(pack.read(name) for name in pack.namelist())
        assert b"131052-308T" not in everything and b"national_id" not in everything
        lines = pack.read("manifest.csv").decode("utf-8").splitlines()
    assert any(line.split(",")[1] == "'=HYPERLINK(1)" for line in lines)
    assert not any(",=HYPERLINK" in line for line in lines)


def test_a_changed_file_no_longer_matches_its_sha256(campaign, tmp_path):
    d, _ids = campaign
    write_pack(d.store, tmp_path / "pack.zip", campaign_id="may-2027")
    with zipfile.ZipFile(tmp_path / "pack.zip") as source, zipfile.ZipFile(tmp_path / "forged.zip", "w") as forged:
        for name in source.namelist():
            data = source.read(name)
            forged.writestr(name, data.replace(b"delivered", b"delivereD") if name == "manifest.json" else data)
    with pytest.raises(InputError, match=r"manifest\.json does not match"):
        read_pack(tmp_path / "forged.zip")


def test_the_command_line_writes_a_pack_by_type_and_period_and_refuses_unclear_selections(campaign, tmp_path):
    d, _ids = campaign
    runner = CliRunner(env={"DISPATCH_STORE_URL": d.config.store.url})
    out = tmp_path / "by-type.zip"
    result = runner.invoke(
        cli, ["evidence", "--type", "price_change", "--from", "2027-01-11", "--to", "2027-01-11", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    # the campaign's three (decided at NOW); the fallback letter was decided at the real time of the bounce
    assert {r["recipient_id"] for r in read_pack(out)["manifest"]["messages"]} == {"C-1", "C-2", "=HYPERLINK(1)"}
    empty = runner.invoke(
        cli, ["evidence", "--type", "price_change", "--from", "2027-01-12", "--to", "2027-01-31", "-o", str(out)]
    )
    assert empty.exit_code == 2 and "no message matches" in empty.stderr
    both = runner.invoke(cli, ["evidence", "may-2027", "--type", "price_change", "-o", str(out)])
    assert both.exit_code == 2 and both.stderr.count("\n") == 1
    unknown = runner.invoke(cli, ["evidence", "june", "-o", str(out)])
    assert unknown.exit_code == 2 and "no campaign 'june'" in unknown.stderr
    by_campaign = runner.invoke(cli, ["evidence", "may-2027", "-o", str(tmp_path / "c.zip")])
    assert by_campaign.exit_code == 0, by_campaign.output
    summary = json.loads(zipfile.ZipFile(tmp_path / "c.zip").read("summary.json"))
    assert summary["selection"] == {"campaign_id": "may-2027"} and summary["messages"] == 4


def test_the_summary_counts_notices_later_than_their_lead_time(make_dispatcher, tmp_path):
    d = make_dispatcher()
    on_time = sample_data("price_change", "FI")
    too_late = {**on_time, "effective_on": "2027-01-20"}  # nine days' notice: shorter than the lead time
    d.dispatch("price_change", person("C-1"), on_time, now=NOW)
    refused = d.dispatch("price_change", person("C-2"), too_late, now=NOW)
    assert "notice_period" in refused.reasons
    summary = write_pack(
        d.store, tmp_path / "p.zip", message_type="price_change", since=NOW, until=NOW.replace(hour=23)
    )
    pack = read_pack(tmp_path / "p.zip")
    assert summary.late_notices == pack["summary"]["late_notices"] == 1
    rows = {r["recipient_id"]: r for r in pack["manifest"]["messages"]}
    assert rows["C-2"]["decision"] == "refused" and rows["C-2"]["late_notice"] is True
    assert rows["C-2"]["content"] is None and rows["C-2"]["template_version"] is None
    assert rows["C-1"]["late_notice"] is False
    assert "later than their lead time (reason notice_period): 1" in pack["summary_text"]


def test_an_approval_given_after_the_send_is_not_shown_as_the_messages_approval(make_dispatcher, tmp_path):
    from datetime import timedelta

    d = make_dispatcher()  # no approval required: the message goes out in an unapproved version
    receipt = d.dispatch("price_change", person("C-1"), sample_data("price_change", "FI"), now=NOW)
    later = NOW + timedelta(days=1)
    d.approvals.propose("price_change", "fi", "email", by="Aino Author", now=later)
    d.approvals.approve("price_change", "fi", "email", by="Bo Approver", now=later)
    write_pack(d.store, tmp_path / "p.zip", message_type="price_change", since=NOW, until=later)
    pack = read_pack(tmp_path / "p.zip")
    [row] = pack["manifest"]["messages"]
    assert row["message_id"] == receipt.message_id and row["template_approval"] is None
    assert sum(pack["summary"]["unapproved_versions"].values()) == 1
    assert "had no approval when they were decided: 1" in pack["summary_text"]
