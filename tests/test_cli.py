"""The command line (SPEC §9): exit 0 on success, 2 with one line on bad input, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from outbox_readers import json_lines

from dispatch.cli import cli
from dispatch.samples import sample_data, sample_recipient

BIN = Path(sys.executable).parent / "dispatch"


def run(*args: str, input: str | None = None):
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    return result


def write_json(path: Path, value) -> str:
    path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
    return str(path)


def test_send_prints_the_decision_and_writes_the_email(tmp_path):
    recipient = write_json(tmp_path / "r.json", sample_recipient("fi", "FI"))
    data = write_json(tmp_path / "d.json", sample_data("price_change"))
    result = run("send", "price_change", "--recipient", recipient, "--data", data, "--key", "k1")
    assert result.exit_code == 0, result.output
    receipt = json.loads(result.output)
    assert receipt["status"] == "queued" and receipt["channel"] == "email"
    assert (tmp_path / "outbox" / "email" / f"{receipt['message_id']}.eml").is_file()
    again = json.loads(run("send", "price_change", "--recipient", recipient, "--data", data, "--key", "k1").output)
    assert again["status"] == "duplicate" and again["message_id"] == receipt["message_id"]


def test_dry_run_only_decides(tmp_path):
    recipient = write_json(tmp_path / "r.json", {**sample_recipient("fi", "FI"), "birth_date": "2012-01-01"})
    data = write_json(tmp_path / "d.json", sample_data("marketing"))
    result = run("send", "marketing", "--recipient", recipient, "--data", data, "--dry-run")
    assert result.exit_code == 0
    decision = json.loads(result.output)
    assert decision["allowed"] is False and "minor" in decision["reasons"]
    assert not (tmp_path / "outbox").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["send", "nonsense", "--recipient", "r.json"], "unknown message type 'nonsense'"),
        (["send", "price_change", "--recipient", "missing.json"], "cannot read recipient file 'missing.json'"),
        (["send", "price_change", "--recipient", "bad.json"], "recipient file 'bad.json' is not valid JSON"),
        (["send", "price_change", "--recipient", "r.json", "--data", "d.json"], "effective_on is missing"),
        (["history", "NOBODY"], "no history for recipient 'NOBODY'"),
        (["registers", "import", "nix-telefn", "x.csv"], "unknown register 'nix-telefn'"),
        (["consents", "record", "C-1", "marketing", "withdraw", "--channel", "fax"], "channel 'fax' is not one of"),
        (["--config", "nope.toml", "templates", "check"], "configuration file 'nope.toml' does not exist"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, args, message):
    write_json(tmp_path / "r.json", {"id": "1", "country": "FI"})
    write_json(tmp_path / "d.json", {"reason": "x"})
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert result.output.count("\n") == 1


def test_templates_check_and_preview():
    result = run("templates", "check")
    assert result.exit_code == 0, result.output
    assert "templates OK: 57 type × channel × language combinations" in result.output
    preview = run("preview", "price_change", "--lang", "sv", "--channel", "sms", "--country", "SE")
    assert preview.exit_code == 0 and "89,50 öre/kWh" in preview.output


def test_templates_check_fails_on_a_missing_file(tmp_path):
    custom = tmp_path / "custom" / "fi" / "survey"
    custom.mkdir(parents=True)
    (custom / "sms.txt").write_text("{{ survey_ur }}", encoding="utf-8")
    (tmp_path / "dispatch.toml").write_text(f'[templates]\npaths = ["{tmp_path / "custom"}"]\n')
    result = run("templates", "check", "--lang", "fi", "--type", "survey")
    assert result.exit_code == 1
    assert "unknown variable 'survey_ur'" in result.output


def test_consents_record_and_show(tmp_path):
    assert (
        run(
            "consents",
            "record",
            "C-1",
            "marketing",
            "grant",
            "--channel",
            "email",
            "--source",
            "web_form",
            "--at",
            "2026-01-02",
            "--wording",
            "v3",
        ).exit_code
        == 0
    )
    assert run("consents", "record", "C-1", "marketing", "withdraw", "--source", "sms_stop").exit_code == 0
    shown = run("consents", "show", "C-1")
    assert shown.exit_code == 0
    assert "granted" in shown.output and "withdrawn" in shown.output and "sms_stop" in shown.output


def test_registers_import_and_status(tmp_path):
    (tmp_path / "nix.csv").write_text("telefonnummer\n070-123 45 67\n+46 70 765 43 21\n", encoding="utf-8")
    result = run("registers", "import", "nix-telefon", str(tmp_path / "nix.csv"), "--file-date", "2026-11-01")
    assert result.exit_code == 0 and "2 entries loaded" in result.output
    status = run("registers", "status")
    assert "nix-telefon" in status.output and "never loaded" in status.output  # the others


def test_campaign_from_csv_resumes_without_sending_twice(tmp_path):
    rows = ["id,country,language,status,email,address.name,address.street,address.postal_code,address.city"]
    for n in range(1, 31):
        rows.append(f"C-{n},FI,fi,active,c{n}@example.fi,Asiakas {n},Katu {n},00100,Helsinki")
    rows.append("C-31,FI,fi,active,not-an-email,,,,")
    (tmp_path / "people.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    data = write_json(tmp_path / "d.json", sample_data("price_change"))
    first = run(
        "campaign",
        "price_change",
        "--recipients",
        str(tmp_path / "people.csv"),
        "--data",
        data,
        "--id",
        "pc-test",
        "--json",
    )
    assert first.exit_code == 0, first.output
    summary = json.loads(first.output)
    assert (summary["queued"], summary["invalid"], summary["duplicates"]) == (30, 1, 0)
    assert "line 32" in summary["errors"][0] and "not-an-email" in summary["errors"][0]
    second = json.loads(
        run(
            "campaign",
            "price_change",
            "--recipients",
            str(tmp_path / "people.csv"),
            "--data",
            data,
            "--id",
            "pc-test",
            "--json",
        ).output
    )
    assert (second["queued"], second["duplicates"]) == (0, 30)
    assert len(list((tmp_path / "outbox" / "email").glob("*.eml"))) == 30


def test_campaign_from_jsonl(tmp_path):
    lines = [json.dumps({**sample_recipient("sv", "SE"), "id": f"S-{n}"}) for n in range(5)]
    (tmp_path / "people.jsonl").write_text("\n".join(lines) + "\n{broken\n", encoding="utf-8")
    data = write_json(tmp_path / "d.json", sample_data("survey"))
    result = run("campaign", "survey", "--recipients", str(tmp_path / "people.jsonl"), "--data", data, "--json")
    summary = json.loads(result.output)
    assert (summary["queued"], summary["invalid"]) == (5, 1)
    assert "line 6 is not valid JSON" in summary["errors"][0]


def test_history_show_export_and_queue_status(tmp_path):
    recipient = write_json(tmp_path / "r.json", sample_recipient("fi", "FI"))
    data = write_json(tmp_path / "d.json", sample_data("survey"))
    receipt = json.loads(run("send", "survey", "--recipient", recipient, "--data", data).output)
    shown = run("history", "C-1001")
    assert shown.exit_code == 0 and receipt["message_id"] in shown.output and "delivered" in shown.output
    export = run("history", "export", "C-1001", "-o", str(tmp_path / "dsar.json"))
    assert export.exit_code == 0
    dump = json.loads((tmp_path / "dsar.json").read_text(encoding="utf-8"))
    assert dump["messages"][0]["id"] == receipt["message_id"]
    assert dump["messages"][0]["attempts"][0]["outcome"] == "delivered"
    assert "survey" in dump["messages"][0]["parts"]["text"] or dump["messages"][0]["parts"]["subject"]
    status = run("queue", "status")
    assert status.exit_code == 0 and "delivered" in status.output


@pytest.mark.slow
def test_demo_runs_end_to_end_as_a_new_user_would(tmp_path):
    result = subprocess.run(
        [str(BIN), "demo", "--customers", "120"], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Sent per channel and language" in out and "Suppressed, and why" in out
    assert "Outbox:" in out and str(tmp_path / "outbox") in out
    assert len(list((tmp_path / "outbox" / "email").glob("*.eml"))) > 50
    assert list((tmp_path / "outbox" / "letter").glob("*.pdf"))
    assert json_lines(tmp_path / "outbox" / "sms" / "messages.jsonl")
    assert list((tmp_path / "outbox" / "letter" / "batches").glob("*.pdf"))  # one PDF per print batch
