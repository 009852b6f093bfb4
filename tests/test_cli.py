"""The command line (SPEC §9): exit 0 on success, 2 with one line on bad input, never a traceback."""

from __future__ import annotations

import io
import json
import logging
import os
import re
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
    receipt = json.loads(result.stdout)
    assert receipt["status"] == "queued" and receipt["channel"] == "email"
    assert (tmp_path / "outbox" / "email" / f"price_change-fi-{receipt['message_id']}.eml").is_file()
    again = json.loads(run("send", "price_change", "--recipient", recipient, "--data", data, "--key", "k1").stdout)
    assert again["status"] == "duplicate" and again["message_id"] == receipt["message_id"]


def test_dry_run_only_decides(tmp_path):
    recipient = write_json(tmp_path / "r.json", {**sample_recipient("fi", "FI"), "birth_date": "2012-01-01"})
    data = write_json(tmp_path / "d.json", sample_data("marketing"))
    result = run("send", "marketing", "--recipient", recipient, "--data", data, "--dry-run")
    assert result.exit_code == 0
    decision = json.loads(result.stdout)
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
    assert "templates OK: 88 type × channel × language combinations" in result.output  # sales_offer: 3 × 4
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
    assert "asml (FI) has never been loaded" in status.output and "register_unavailable" in status.output


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
    summary = json.loads(first.stdout)
    assert (summary["queued"], summary["invalid"], summary["duplicates"]) == (30, 1, 0)
    assert summary["errors"][0].startswith("line 32: ")
    assert "line 32" in summary["errors"][0] and "email is not a valid address" in summary["errors"][0]
    assert "not-an-email" not in summary["errors"][0]  # errors name the field, not the personal value
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
    summary = json.loads(result.stdout)
    assert (summary["queued"], summary["invalid"]) == (5, 1)
    assert summary["errors"] == ["line 6: not valid JSON: Expecting property name enclosed in double quotes (column 2)"]


def excel_export(tmp_path: Path, rows: list[str]) -> str:
    """A file as Excel's "CSV UTF-8" export writes it in Finland: BOM, ";" between cells, CRLF."""
    header = "id;country;language;status;email;address.name;address.street;address.postal_code;address.city;consents"
    path = tmp_path / "asiakkaat.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join([header, *rows, ""]).encode("utf-8"))
    return str(path)


def test_campaign_from_an_excel_export_reports_bad_rows_as_plain_lines(tmp_path):
    rows = [f'C-{n};FI;fi;active;c{n}@example.fi;Asiakas {n};"Katu {n}; A";00100;Helsinki;' for n in range(1, 6)]
    rows.insert(2, "C-9;FI;fi;active;salainen@example.fi;Maija Mallikas;Katu 9;00100;Helsinki;[{oops")
    data = write_json(tmp_path / "d.json", sample_data("price_change"))
    result = run("campaign", "price_change", "--recipients", excel_export(tmp_path, rows), "--data", data)
    assert result.exit_code == 0, result.output
    assert "[yellow]" not in result.output and "[/" not in result.output
    assert result.stderr == (
        "invalid: line 4: column consents (J): not valid JSON "
        "(Expecting property name enclosed in double quotes at character 3)\n"
    )
    assert "salainen" not in result.output and "oops" not in result.output
    assert "recipients read" in result.stdout and "queued" in result.stdout
    assert len(list((tmp_path / "outbox" / "email").glob("*.eml"))) == 5


def test_campaign_refuses_a_file_it_cannot_read_to_the_end_before_recording_anything(tmp_path):
    (tmp_path / "ansi.csv").write_bytes(
        "id;country;address.city\r\nC-1;FI;Oulu\r\nC-2;FI;Järvenpää\r\n".encode("cp1252")
    )
    data = write_json(tmp_path / "d.json", sample_data("price_change"))
    result = run("campaign", "price_change", "--recipients", str(tmp_path / "ansi.csv"), "--data", data)
    assert result.exit_code == 2
    assert result.output == (
        f"error: recipients file {str(tmp_path / 'ansi.csv')!r} is not UTF-8 text (line 3); "
        "save it as UTF-8 (in Excel: 'CSV UTF-8')\n"
    )
    assert not (tmp_path / "dispatch.db").exists() and not (tmp_path / "outbox").exists()


def test_campaign_stopped_by_max_errors_names_the_rows_one_plain_line_each(tmp_path):
    rows = [f"C-{n};FI;fi;active;c{n}@example.fi;;;;;[x" for n in range(1, 4)]
    data = write_json(tmp_path / "d.json", sample_data("price_change"))
    result = run(
        "campaign", "price_change", "--recipients", excel_export(tmp_path, rows), "--data", data, "--max-errors", "1"
    )
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[-1] == "error: campaign stopped: 3 invalid recipients"
    assert lines[:-1] == [
        f"invalid: line {n}: column consents (J): not valid JSON (Expecting value at character 2)" for n in (2, 3, 4)
    ]
    assert "Traceback" not in result.output


def test_history_show_export_and_queue_status(tmp_path):
    recipient = write_json(tmp_path / "r.json", sample_recipient("fi", "FI"))
    data = write_json(tmp_path / "d.json", sample_data("survey"))
    receipt = json.loads(run("send", "survey", "--recipient", recipient, "--data", data).stdout)
    shown = run("history", "C-1001")
    assert shown.exit_code == 0 and receipt["message_id"] in shown.output and "sent" in shown.output
    export = run("history", "export", "C-1001", "-o", str(tmp_path / "dsar.json"))
    assert export.exit_code == 0
    dump = json.loads((tmp_path / "dsar.json").read_text(encoding="utf-8"))
    assert dump["messages"][0]["id"] == receipt["message_id"]
    assert dump["messages"][0]["attempts"][0]["outcome"] == "sent"
    assert "survey" in dump["messages"][0]["parts"]["text"] or dump["messages"][0]["parts"]["subject"]
    status = run("queue", "status")
    assert status.exit_code == 0 and "sent" in status.output


@pytest.mark.slow
def test_demo_runs_end_to_end_as_a_new_user_would_and_reruns_clean(tmp_path):
    def demo() -> str:
        result = subprocess.run(
            [str(BIN), "demo", "--customers", "120"], capture_output=True, text=True, timeout=300, cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    out = demo()
    assert "Sent per channel and language" in out and "Suppressed, and why" in out
    sent = int(re.search(r"(\d+) messages sent, all done", out).group(1))
    assert sent >= 100  # the table and the total count what the providers took
    assert "Outbox:" in out and str(tmp_path / "outbox") in out
    assert "Starting clean" not in out and "Keeping" not in out
    assert "not https" in out and "[links] base_url" in out
    emails = sorted(p.name for p in (tmp_path / "outbox" / "email").glob("*.eml"))
    assert len(emails) > 50
    assert all(re.fullmatch(r"[a-z_]+-(fi|sv|nb|en)-[0-9A-Z]{26}\.eml", name) for name in emails), emails[:3]
    assert list((tmp_path / "outbox" / "letter").glob("*.pdf"))
    sms = json_lines(tmp_path / "outbox" / "sms" / "messages.jsonl")
    assert sms and all(line["recipient_id"][:3] in ("FI-", "SE-", "NO-") for line in sms)
    assert list((tmp_path / "outbox" / "letter" / "batches").glob("*.pdf"))

    again = demo()
    assert f"Starting clean: removed what the previous demo made ({tmp_path / 'dispatch.db'}, " in again
    assert len(list((tmp_path / "outbox" / "email").glob("*.eml"))) == len(emails)  # not twice the notices
    assert len(json_lines(tmp_path / "outbox" / "sms" / "messages.jsonl")) == len(sms)


def test_the_demo_keeps_what_it_did_not_make(tmp_path):
    from dispatch.config import load_config
    from dispatch.demo import DemoFolder, mark_folder, prepare_folder

    config = load_config()
    (tmp_path / "dispatch.db").write_bytes(b"someone's store")
    (tmp_path / "outbox" / "email").mkdir(parents=True)
    (tmp_path / "outbox" / "email" / "mine.eml").write_bytes(b"x")
    folder = prepare_folder(config)
    assert folder == DemoFolder(removed=[], kept=[str(tmp_path / "dispatch.db"), str(tmp_path / "outbox")])
    mark_folder(config, "demo-1", folder)
    assert prepare_folder(config) == folder  # still not the demo's: never removed
    assert (tmp_path / "dispatch.db").read_bytes() == b"someone's store"
    assert (tmp_path / "outbox" / "email" / "mine.eml").is_file()


def test_the_demo_never_removes_a_server_store(tmp_path):
    from dispatch.config import load_config
    from dispatch.demo import prepare_folder

    config = load_config(overrides={"store": {"url": "postgresql+psycopg://dispatch:secret@db.example/dispatch"}})
    folder = prepare_folder(config)
    assert folder.removed == [] and folder.kept == ["postgresql+psycopg://dispatch:***@db.example/dispatch"]


def json_log_lines(text: str) -> list[dict]:
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines, "no log lines"
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line), line
    return lines


def test_log_format_json_from_the_option_the_environment_or_the_config(tmp_path, monkeypatch):
    recipient = write_json(tmp_path / "r.json", sample_recipient("fi", "FI"))
    data = write_json(tmp_path / "d.json", sample_data("survey"))
    send = ("send", "survey", "--recipient", recipient, "--data", data)
    by_option = run("--log-format", "json", "-v", *send)
    assert by_option.exit_code == 0 and json.loads(by_option.stdout)["status"] == "queued"
    assert any(line["level"] == "INFO" for line in json_log_lines(by_option.stderr))
    assert run(*send).stderr == ""  # human, warnings only: nothing to say

    (tmp_path / "dispatch.toml").write_text('[logging]\nformat = "json"\nlevel = "info"\n', encoding="utf-8")
    by_config = run(*send)
    assert by_config.exit_code == 0 and json_log_lines(by_config.stderr)
    monkeypatch.setenv("DISPATCH_LOG_FORMAT", "human")
    by_environment = run(*send)
    assert by_environment.stderr and not by_environment.stderr.startswith("{")
    assert " INFO " in by_environment.stderr.splitlines()[0]

    (tmp_path / "dispatch.toml").write_text('[logging]\nformat = "xml"\n', encoding="utf-8")
    monkeypatch.delenv("DISPATCH_LOG_FORMAT")
    bad = run(*send)
    assert bad.exit_code == 2 and bad.output == "error: log format 'xml' is not one of human, json\n"


def test_log_records_carry_their_extra_ids(tmp_path, monkeypatch):
    from dispatch.logs import configure_logging

    monkeypatch.delenv("DISPATCH_LOG_FORMAT", raising=False)
    for fmt in ("json", "human"):
        stream = io.StringIO()
        restore = configure_logging("info", fmt, stream=stream)
        try:
            logging.getLogger("dispatch.test").warning(
                "delivery of %s failed", "M-1", extra={"message_id": "M-1", "recipient_id": "C-1"}
            )
            logging.getLogger("dispatch.test").debug("below the level")
        finally:
            restore()
        if fmt == "json":
            [line] = json_log_lines(stream.getvalue())
            assert line["level"] == "WARNING" and line["logger"] == "dispatch.test"
            assert line["message"] == "delivery of M-1 failed"
            assert (line["message_id"], line["recipient_id"]) == ("M-1", "C-1")
            assert line["time"].endswith("+00:00")
        else:
            [line] = stream.getvalue().splitlines()
            assert line.endswith(" WARNING dispatch.test: delivery of M-1 failed [message_id=M-1 recipient_id=C-1]")
    assert "DISPATCH_LOG_FORMAT" not in os.environ  # restored


def test_addresses_and_numbers_never_reach_the_logs(monkeypatch):
    from dispatch.logs import configure_logging

    for fmt in ("json", "human"):
        stream = io.StringIO()
        restore = configure_logging("info", fmt, stream=stream)
        try:
            try:
                raise ValueError("{'matti.virtanen@example.fi': (550, b'5.1.1 no such user')}")
            except ValueError:
                logging.getLogger("aiosmtplib").exception("send to %s failed", "+358 40 123 4567")
        finally:
            restore()
        text = stream.getvalue()
        assert "matti" not in text and "123 4567" not in text, text
        assert "send to <phone> failed" in text and "ValueError: {'<email>': (550" in text
        if fmt == "json":
            [line] = json_log_lines(text)
            assert line["message"] == "send to <phone> failed" and "<email>" in line["exc_info"]


def test_campaign_with_bad_data_is_one_line(tmp_path):
    data = write_json(tmp_path / "d.json", {"reason": "x"})
    result = run(
        "campaign", "price_change", "--recipients", excel_export(tmp_path, ["C-1;FI;fi;;;;;;;"]), "--data", data
    )
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("error: ") and "effective_on" in result.output
