"""After the send (SPEC §10) through the whole dispatcher: real SMTP, real returned mail, real store.

A price notice to an address that answers 550 falls back to a letter once — and the
next notice goes straight by letter, because the address is on the suppression list.
Returned mail (a Postfix DSN, an ARF complaint) comes back over SMTP to the listener
that ``dispatch serve`` runs, and moves the message, the list and the ledger on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_email_inbound_listener import BOUNCES, FIXTURES, _postfix_bounce_of, send
from verp_helpers import tagged

from dispatch import hookimpl
from dispatch.cli import cli
from dispatch.cli.serve import plugin_services
from dispatch.feedback import FeedbackKind, ProviderEvent
from dispatch.samples import sample_data, sample_recipient

NOW = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)


def smtp_dispatcher(make_dispatcher, smtp_server, **email):
    return make_dispatcher(
        {
            "email": {
                "host": smtp_server.host,
                "port": smtp_server.port,
                "return_path": BOUNCES,
                "timeout": 5.0,
                "inbound_port": 0,
                **email,
            }
        }
    )


def notice(person, d):
    receipt = d.dispatch("price_change", person, sample_data("price_change", "FI"), now=NOW)
    assert d.join(60)
    return receipt


def test_a_550_is_listed_so_the_next_notice_goes_straight_by_letter(make_dispatcher, smtp_server, monkeypatch):
    d = smtp_dispatcher(make_dispatcher, smtp_server)
    person = sample_recipient("fi", "FI") | {"id": "S-1", "email": "rcpt550.matti@example.fi"}
    first = notice(person, d)
    history = {m["channel"]: m for m in d.store.messages_for("S-1")}
    assert history["email"]["status"] == "fallback" and history["letter"]["fallback_of"] == first.message_id
    [listed] = d.store.suppression_list()
    assert (listed["channel"], listed["address"], listed["cause"], listed["message_id"]) == (
        "email",
        "rcpt550.matti@example.fi",
        "hard_bounce",
        first.message_id,
    )

    decision = d.decide("price_change", person, sample_data("price_change", "FI"), now=NOW)
    assert (decision.channel, decision.allowed) == ("letter", True)
    second = notice(person, d)
    assert second.channel == "letter"
    assert smtp_server.handler.messages == []  # never offered to the dead mailbox again
    assert len([m for m in d.store.messages_for("S-1") if m["channel"] == "email"]) == 1

    # The customer confirms the address: off the list (the entry's history stays), email again.
    monkeypatch.setenv("DISPATCH_STORE_URL", d.config.store.url)
    removed = CliRunner().invoke(
        cli, ["suppressions", "remove", "email", "RCPT550.matti@example.fi", "--reason", "customer confirmed"]
    )
    assert removed.exit_code == 0, removed.output
    assert d.decide("price_change", person, sample_data("price_change", "FI"), now=NOW).channel == "email"
    [entry] = d.store.suppression_list(include_removed=True)
    assert entry["removed_reason"] == "customer confirmed" and entry["removed_at"] is not None


def test_a_bounce_that_comes_back_as_mail_to_dispatch_serve_moves_everything_on(
    make_dispatcher, smtp_server, monkeypatch
):
    d = smtp_dispatcher(make_dispatcher, smtp_server)
    person = sample_recipient("fi", "FI") | {"id": "S-2", "email": "gone@example.net"}
    receipt = notice(person, d)
    [received] = smtp_server.handler.messages
    assert received.mail_from == d.channels["email"].return_path.for_message(receipt.message_id)
    assert d.store.message(receipt.message_id)["status"] == "sent"

    [listener] = plugin_services(d, smtp_port=0, smtp_host=None)  # what `dispatch serve --smtp-port` starts
    listener.start()
    try:
        bounce = _postfix_bounce_of(received.data, receipt.message_id, received.rcpt_tos[0])
        send(listener, bounce, [received.mail_from])
        send(listener, bounce, [received.mail_from])  # the relay sent it twice: nothing happens twice
    finally:
        listener.stop()
    assert d.join(60)
    messages = {m["channel"]: m for m in d.store.messages_for("S-2")}
    assert messages["email"]["status"] == "fallback"
    assert messages["letter"]["status"] == "sent" and messages["letter"]["fallback_of"] == receipt.message_id
    changes = [(t["source"], t["target"]) for t in d.store.transitions_for([receipt.message_id])[receipt.message_id]]
    assert changes[-2:] == [("sent", "bounced"), ("bounced", "fallback")]
    assert [(s["address"], s["cause"], s["code"]) for s in d.store.suppression_list()] == [
        ("gone@example.net", "hard_bounce", "5.1.1")
    ]
    monkeypatch.setenv("DISPATCH_STORE_URL", d.config.store.url)
    shown = CliRunner().invoke(cli, ["history", "gone@example.net"])
    assert shown.exit_code == 0, shown.output
    assert "sent → bounced" in shown.output and "bounced → fallback" in shown.output


def test_a_complaint_about_a_notice_lists_the_address_and_withdraws_email_marketing(make_dispatcher, smtp_server):
    d = smtp_dispatcher(make_dispatcher, smtp_server)
    person = sample_recipient("fi", "FI") | {"id": "S-3", "email": "sanna.korhonen@mailbox.example.net"}
    receipt = notice(person, d)
    raw = (FIXTURES / "arf_abuse.eml").read_bytes()
    arf = tagged(raw.replace(b"01JD8ZF1G2H3J4K5M6N7P8Q9R0", receipt.message_id.encode()), d.signing_key("verp"))
    [listener] = plugin_services(d, smtp_port=0, smtp_host=None)
    listener.start()
    try:
        send(listener, arf, [BOUNCES])
    finally:
        listener.stop()
    assert d.store.message(receipt.message_id)["status"] == "complained"
    withdrawals = [c for c in d.consents.history("S-3") if not c["granted"]]
    assert [(c["purpose"], c["channel"], c["source"]) for c in withdrawals] == [("marketing", "email", "complaint")]
    assert [s["cause"] for s in d.store.suppression_list()] == ["complaint"]
    # The customer must still be told of the next change: by letter.
    assert d.decide("price_change", person, sample_data("price_change", "FI"), now=NOW).channel == "letter"


def test_three_soft_bounces_in_a_row_list_an_address_and_a_delivery_resets_the_count(make_dispatcher, smtp_server):
    d = smtp_dispatcher(make_dispatcher, smtp_server)
    person = sample_recipient("fi", "FI") | {"id": "S-4", "email": "full@example.net"}
    ids = [notice(person, d).message_id for _ in range(4)]

    def report(kind: FeedbackKind, message_id: str) -> None:
        assert d.handle_feedback(
            ProviderEvent(kind, "email", NOW + timedelta(minutes=1), message_id=message_id, code="4.2.2", source="dsn")
        )

    report(FeedbackKind.SOFT_BOUNCED, ids[0])
    report(FeedbackKind.SOFT_BOUNCED, ids[1])
    report(FeedbackKind.DELIVERED, ids[2])  # the mailbox took one: the run of soft bounces ends
    report(FeedbackKind.SOFT_BOUNCED, ids[3])
    report(FeedbackKind.SOFT_BOUNCED, ids[0])
    assert d.store.suppression_list() == []
    assert d.store.message(ids[2])["status"] == "delivered"
    report(FeedbackKind.SOFT_BOUNCED, ids[1])  # the third in a row
    assert [(s["cause"], s["message_id"]) for s in d.store.suppression_list()] == [("soft_bounces", ids[1])]


def test_a_report_for_an_unknown_message_is_not_applied(make_dispatcher):
    d = make_dispatcher()
    event = ProviderEvent(FeedbackKind.BOUNCED, "email", NOW, message_id="01JD8ZF1G2H3J4K5M6N7P8Q9R0", permanent=True)
    assert d.handle_feedback(event) is False
    assert d.store.suppression_list() == []


class BesideServe:
    """A plugin that runs a service beside ``dispatch serve``."""

    started: list[str] = []  # noqa: RUF012

    @hookimpl
    def dispatch_serve_services(self, register, dispatcher, options):
        class Ticker:
            def start(self) -> None:
                BesideServe.started.append(f"start:{options.get('smtp_port')}")

            def stop(self) -> None:
                BesideServe.started.append("stop")

        register(Ticker())


def test_a_plugin_adds_a_service_beside_serve(tmp_path):
    from dispatch import Dispatcher

    overrides = {"store": {"url": f"sqlite:///{tmp_path / 'beside.db'}"}, "outbox": str(tmp_path / "outbox")}
    with Dispatcher.from_config(overrides=overrides, plugins=[BesideServe()]) as d:
        services = plugin_services(d, smtp_port=None, smtp_host=None)
        assert len(services) == 1  # the email plugin adds nothing without a return path
        services[0].start()
        services[0].stop()
    assert BesideServe.started == ["start:None", "stop"]


def test_suppressions_cli_adds_lists_and_refuses_bad_input(tmp_path: Path, monkeypatch):
    runner = CliRunner()
    assert runner.invoke(cli, ["suppressions", "add", "sms", "040 123 4567"]).exit_code == 0
    assert "already on the list" in runner.invoke(cli, ["suppressions", "add", "sms", "+358401234567"]).output
    listed = runner.invoke(cli, ["suppressions", "list"])
    assert listed.exit_code == 0 and "+358401234567" in listed.output and "manual" in listed.output
    bad = runner.invoke(cli, ["suppressions", "add", "email", "not an address"])
    assert bad.exit_code == 2 and "not valid" in bad.output
    missing = runner.invoke(cli, ["suppressions", "remove", "email", "x@example.fi", "--reason", "asked"])
    assert missing.exit_code == 2 and "not on the suppression list" in missing.output


@pytest.mark.server
def test_an_sms_twilio_reports_undelivered_lists_the_number_and_the_notice_goes_by_letter(prism, make_dispatcher):
    """The SMS goes to Prism serving Twilio's API description; its status callback names the sid Prism gave."""
    from dispatch_sms.web import status_event

    d = make_dispatcher(
        {
            "sms": {
                "account_sid": "AC" + "0123456789abcdef" * 2,
                "auth_token": "t",
                "sender": "+358401111111",
                "base_url": prism,
            }
        }
    )
    person = sample_recipient("fi", "FI") | {"id": "S-6", "preferred_channels": {"price_change": "sms"}}
    receipt = d.dispatch("price_change", person, sample_data("price_change", "FI"), now=NOW)
    assert receipt.channel == "sms" and d.join(60)
    sent = d.store.message(receipt.message_id, content=False)
    assert sent["status"] == "sent" and sent["provider_id"].startswith("SM")

    callback = {"MessageSid": sent["provider_id"], "MessageStatus": "undelivered", "ErrorCode": "30003"}
    assert d.handle_feedback(status_event(callback | {"To": sent["address"]}))
    assert d.join(60)
    history = {m["channel"]: m for m in d.store.messages_for("S-6")}
    assert (history["sms"]["status"], history["letter"]["status"]) == ("fallback", "sent")
    assert [(s["channel"], s["address"], s["cause"], s["code"]) for s in d.store.suppression_list()] == [
        ("sms", sent["address"], "invalid_number", "30003")
    ]
    assert d.decide("price_change", person, sample_data("price_change", "FI"), now=NOW).channel == "email"
