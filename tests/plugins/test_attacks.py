"""Attacks by a customer who knows their own message ids (issue 22), as the attacker would try them.

A customer sees their own message id in the VERP Return-Path, the unsubscribe link and the
Message-ID of what we sent them. With it they write returned mail (DSNs, ARF complaints,
plain bounces) about a neighbour's message, about their own SMS, or huge and deeply nested;
they text START from a number another customer shares; they schedule campaigns for the year
9999; they try link tokens and short codes by the thousand.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosmtplib
import pytest
from click.testing import CliRunner
from servers import free_port
from test_email_inbound_listener import BOUNCES, _postfix_bounce_of, sendmail
from test_web import TOKEN, twilio_signature
from web_helpers import LiveServer, request

from dispatch.cli import cli
from dispatch.cli.serve import plugin_services
from dispatch.errors import InputError, ReportRejected
from dispatch.feedback import FeedbackKind, ProviderEvent
from dispatch.samples import sample_data, sample_recipient
from dispatch.web import create_app
from dispatch_email.inbound import ReturnedMailProcessor
from dispatch_email.reports import parse_returned_mail

NOW = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)


@pytest.fixture
def mail_site(make_dispatcher, smtp_server):
    """A dispatcher sending email through a real SMTP server, with its returned-mail listener running."""
    d = make_dispatcher(
        {"email": {"host": smtp_server.host, "port": smtp_server.port, "return_path": BOUNCES, "timeout": 5.0}}
    )
    [listener] = plugin_services(d, smtp_port=0, smtp_host=None)  # what `dispatch serve --smtp-port` starts
    listener.start()
    yield d, smtp_server, listener
    listener.stop()


def send(listener, raw: bytes, recipients: list[str]) -> None:
    asyncio.run(sendmail(listener.port, raw, recipients))


def notice_to(d, smtp_server, person_id: str, email: str):
    person = sample_recipient("fi", "FI") | {"id": person_id, "email": email}
    receipt = d.dispatch("price_change", person, sample_data("price_change", "FI"), now=NOW)
    assert d.join(60)
    received = next(m for m in smtp_server.handler.messages if m.rcpt_tos == [email])
    return receipt.message_id, received


def untouched(d, message_id: str, email: str) -> None:
    assert d.store.message(message_id, content=False)["status"] == "sent"
    assert d.store.suppressed([("email", email)]) == set()


def test_a_dsn_to_the_neighbours_verp_address_is_refused_at_rcpt(mail_site):
    d, smtp_server, listener = mail_site
    _mine, my_mail = notice_to(d, smtp_server, "A", "attacker@example.org")
    theirs, their_mail = notice_to(d, smtp_server, "N", "neighbour@example.org")
    # The attacker's own Return-Path: bounces+<mine>-<tag>@example.fi. The neighbour's id with no tag,
    # and with the attacker's own tag, are refused before any data is taken.
    my_tag = my_mail.mail_from.partition("@")[0].rpartition("-")[2]
    bounce = _postfix_bounce_of(their_mail.data, theirs, "neighbour@example.org")
    for forged in (f"bounces+{theirs}@example.fi", f"bounces+{theirs}-{my_tag}@example.fi"):
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
            send(listener, bounce, [forged])
    untouched(d, theirs, "neighbour@example.org")
    assert listener.stats["refused_rcpt"] == 2


def test_a_dsn_or_complaint_naming_the_neighbour_only_by_headers_is_kept_aside(mail_site):
    d, smtp_server, listener = mail_site
    notice_to(d, smtp_server, "A", "attacker@example.org")
    theirs, their_mail = notice_to(d, smtp_server, "N", "neighbour@example.org")
    guessed = f"bounces+{theirs}@example.fi"  # what the attacker can write: the id without its tag
    # A DSN to the bare mailbox whose "original" carries the neighbour's Message-ID and untagged Return-Path.
    original = their_mail.data.replace(b"\r\n", b"\n")
    dsn = _postfix_bounce_of(b"Return-Path: <" + guessed.encode() + b">\n" + original, theirs, "neighbour@example.org")
    dsn = dsn.replace(their_mail.mail_from.encode(), guessed.encode())
    send(listener, dsn, [BOUNCES])
    # An ARF complaint naming it in Original-Mail-From and Message-ID.
    arf = (
        "From: feedback@isp.example\nTo: bounces@example.fi\nSubject: complaint\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nA complaint.\n"
        "--b\nContent-Type: message/feedback-report\n\n"
        f"Feedback-Type: abuse\nUser-Agent: x/1\nVersion: 1\nOriginal-Mail-From: <{guessed}>\n"
        "Original-Rcpt-To: <neighbour@example.org>\n"
        f"--b\nContent-Type: text/rfc822-headers\n\nMessage-ID: <{theirs}@example.fi>\nReturn-Path: <{guessed}>\n"
        "--b--\n"
    ).encode()
    send(listener, arf, [BOUNCES])
    # A plain bounce quoting the neighbour's Message-ID.
    plain = (
        "From: MAILER-DAEMON@mx.example.net\nTo: bounces@example.fi\nSubject: Undelivered Mail\n"
        "X-Failed-Recipients: neighbour@example.org\n\n550 5.1.1 unknown user\n\n"
        f"Message-ID: <{theirs}@example.fi>\nReturn-Path: <{guessed}>\n"
    ).encode()
    send(listener, plain, [BOUNCES])

    untouched(d, theirs, "neighbour@example.org")
    assert [c for c in d.consents.history("N") if not c["granted"]] == []
    assert listener.stats["kept_aside"] == 3 and listener.stats["events"] == 0


def test_an_email_report_naming_ones_own_sms_acts_on_nothing(mail_site, tmp_path):
    d, _smtp_server, listener = mail_site
    person = sample_recipient("fi", "FI") | {"id": "A", "preferred_channels": {"survey": "sms"}}
    sms = d.dispatch("survey", person, sample_data("survey"), now=NOW)
    assert sms.channel == "sms" and d.join(60)
    for kind, permanent in ((FeedbackKind.BOUNCED, True), (FeedbackKind.COMPLAINED, False)):
        report = ProviderEvent(
            kind, "email", NOW, message_id=sms.message_id, address="victim@example.org", permanent=permanent
        )
        with pytest.raises(ReportRejected):
            d.handle_feedback(report)
    # Through the listener too, even with a correctly tagged VERP address for the SMS's id.
    verp = d.channels["email"].return_path.for_message(sms.message_id)
    plain = (
        b"From: MAILER-DAEMON@mx.example.net\nTo: bounces@example.fi\nSubject: Undelivered Mail\n"
        b"X-Failed-Recipients: victim@example.org, other@example.org\n\n550 5.1.1 unknown user\n"
    )
    send(listener, plain, [verp])
    assert d.store.suppression_list() == []
    assert d.store.message(sms.message_id, content=False)["status"] == "sent"
    assert d.consents.history("A") == []
    assert listener.stats["kept_aside"] == 1


def test_a_report_acts_on_the_address_the_message_went_to_not_the_one_it_names(mail_site):
    d, smtp_server, _listener = mail_site
    mine, _ = notice_to(d, smtp_server, "A", "attacker@example.org")
    d.handle_feedback(
        ProviderEvent(FeedbackKind.BOUNCED, "email", NOW, message_id=mine, address="victim@example.org", permanent=True)
    )
    assert [s["address"] for s in d.store.suppression_list()] == ["attacker@example.org"]


def test_one_dsn_with_2000_delayed_blocks_is_one_soft_bounce(mail_site):
    d, smtp_server, listener = mail_site
    mine, my_mail = notice_to(d, smtp_server, "A", "attacker@example.org")
    block = "Final-Recipient: rfc822; attacker@example.org\nAction: delayed\nStatus: 4.4.1\n\n"
    dsn = (
        "From: MAILER-DAEMON@mx.example.net\nTo: bounces@example.fi\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\ndelayed\n--b\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.example.net\n\n" + block * 2000 + "--b--\n"
    ).encode()
    assert len(dsn) > 100_000
    send(listener, dsn, [my_mail.mail_from])
    assert listener.stats["events"] == 1
    # The next soft bounce of that address is its second: the 2,000 blocks counted once.
    assert d.store.soft_bounce("email", "attacker@example.org", NOW) == 2
    statuses = [t for t in d.store.transitions_for([mine])[mine]]
    assert len(statuses) < 10


def test_mail_nested_hundreds_of_levels_deep_is_not_parsed(tmp_path):
    nested = b"Content-Type: text/plain\n\nbottom\n"
    for depth in range(950):
        nested = (
            f'Content-Type: multipart/mixed; boundary="b{depth}"\n\n--b{depth}\n'.encode()
            + nested
            + f"\n--b{depth}--\n".encode()
        )
    raw = b"From: MAILER-DAEMON@mx.example.net\nSubject: Undelivered Mail\nMIME-Version: 1.0\n" + nested
    parsed = parse_returned_mail(raw)
    assert parsed.events == () and "not parsed" in parsed.problem
    # Embedded messages nested without boundaries as well.
    embedded = b"Subject: x\n\n550 5.1.1\n"
    for _ in range(50):
        embedded = b"Content-Type: message/rfc822\n\n" + embedded
    assert "not parsed" in parse_returned_mail(b"From: MAILER-DAEMON@x\n" + embedded).problem
    # One boundary, a hundred thousand parts.
    flat = b'Content-Type: multipart/mixed; boundary="b"\n\n' + b"--b\nContent-Type: text/plain\n\nx\n" * 100_000
    assert "not parsed" in parse_returned_mail(b"From: MAILER-DAEMON@x\n" + flat).problem
    # Real reports (2-3 boundaries, one original, a Gmail DSN with its whole original) are parsed as before.
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "inbound"
    for name in ("gmail_dsn.eml", "exchange_ndr.eml", "arf_abuse.eml", "rfc3464_multi.eml"):
        assert parse_returned_mail((fixtures / name).read_bytes()).events, name


def test_the_kept_aside_folder_is_capped_by_bytes_too(tmp_path):
    from verp_helpers import return_path

    processor = ReturnedMailProcessor(return_path(), lambda event: None, tmp_path / "kept", keep_aside_max_bytes=5000)
    junk = b"From: someone@example.org\nSubject: hello\n\n" + b"x" * 3000
    assert processor.process(junk).value == "kept_aside"
    processor.process(junk)  # would take the folder past 5,000 bytes
    assert len(list((tmp_path / "kept").glob("*.eml"))) == 1
    assert processor.stats["discarded"] == 1 and processor.stats["kept_aside"] == 1


# -- START from a shared number ------------------------------------------------------------


@pytest.fixture
def sms_site(make_dispatcher, monkeypatch):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    d = make_dispatcher(links={"base_url": base, "secret": "test-secret"})
    server = LiveServer(create_app(d), port).start()
    yield d, base
    server.stop()


def text(base: str, number: str, body: str, sid: str) -> int:
    url = f"{base}/twilio/inbound"
    params = {"From": number, "Body": body, "MessageSid": sid}
    return request(url, params, {"X-Twilio-Signature": twilio_signature(url, params)})[0]


SHARED = "+358401234567"


def survey_by_sms(d, *people) -> None:
    """A service SMS to each: how dispatch learns who has the number (the STOP route finds them by it)."""
    for person in people:
        receipt = d.dispatch(
            "survey", person | {"preferred_channels": {"survey": "sms"}}, sample_data("survey"), now=NOW
        )
        assert receipt.channel == "sms", receipt.reasons
    assert d.join(60)


def sms_marketing(d, person) -> list[str]:
    return d.decide("marketing", person, sample_data("marketing", "FI"), now=NOW + timedelta(days=30)).reasons


def test_start_from_a_shared_number_does_not_lift_another_customers_objection(sms_site):
    d, base = sms_site
    objector = sample_recipient("fi", "FI") | {"id": "O", "phone": SHARED, "preferred_channels": {"marketing": "sms"}}
    sharer = sample_recipient("fi", "FI") | {"id": "P", "phone": SHARED, "preferred_channels": {"marketing": "sms"}}
    survey_by_sms(d, objector, sharer)
    earlier = datetime.now(UTC) - timedelta(days=2)  # before the texts, which are recorded as they come
    d.consents.record("O", "marketing", False, channel="all", source="preference_centre", at=earlier)
    d.consents.record("P", "marketing", True, channel="sms", source="web_form", at=earlier)
    assert text(base, SHARED, "STOP", "SM1") == 200
    assert text(base, SHARED, "START", "SM2") == 200
    assert "opted_out" in sms_marketing(d, objector)  # the objection stands
    assert [(c["granted"], c["source"]) for c in d.consents.history("O")] == [
        (False, "preference_centre"),
        (False, "sms_stop"),
    ]
    # P's STOP is undone by P's START: back to the consent P had, recorded as what it is.
    assert [(c["granted"], c["source"]) for c in d.consents.history("P")][-2:] == [
        (False, "sms_stop"),
        (True, "sms_start"),
    ]
    assert "opted_out" not in sms_marketing(d, sharer)


def test_start_never_outweighs_an_unsubscribe_or_a_complaint_given_after_the_stop(sms_site):
    d, base = sms_site
    person = sample_recipient("fi", "FI") | {"id": "C", "phone": SHARED, "preferred_channels": {"marketing": "sms"}}
    survey_by_sms(d, person)
    assert text(base, SHARED, "STOP", "SM1") == 200
    d.consents.record("C", "marketing", False, channel="all", source="unsubscribe_link")
    assert text(base, SHARED, "START", "SM2") == 200
    assert [c["source"] for c in d.consents.history("C")] == ["sms_stop", "unsubscribe_link"]
    assert "opted_out" in sms_marketing(d, person)


# -- scheduling far ahead ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "fragment"),
    [
        ("9999-12-31T23:59-23:59", "out of range"),
        ("9999-12-31T23:59", "more than 365 days ahead"),
        ("2030-01-01T00:00+02:00", "more than 365 days ahead"),
    ],
)
def test_a_campaign_scheduled_beyond_the_horizon_or_out_of_range_is_refused_in_one_line(tmp_path, at, fragment):
    recipients = tmp_path / "people.jsonl"
    recipients.write_text('{"id": "C-1", "country": "FI", "email": "c1@example.fi"}\n')
    data = tmp_path / "data.json"
    data.write_text('{"title": "Uutiset", "sections": [{"heading": "a", "body": "b"}]}')
    result = CliRunner().invoke(
        cli, ["campaign", "newsletter", "--recipients", str(recipients), "--data", str(data), "--at", at]
    )
    assert result.exit_code == 2, result.output
    assert fragment in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_the_horizon_edge_from_code(dispatcher):
    people = [sample_recipient("fi", "FI")]
    data = sample_data("newsletter")
    with pytest.raises(InputError, match="365 days"):
        dispatcher.campaign("newsletter", people, data, at=NOW + timedelta(days=365, minutes=1), now=NOW)
    summary = dispatcher.campaign("newsletter", people, data, at=NOW + timedelta(days=364), now=NOW)
    assert summary.scheduled == 1


# -- guessing tokens and codes -------------------------------------------------------------


def test_short_codes_and_token_pages_are_rate_limited_per_client(make_dispatcher):
    port = free_port()
    d = make_dispatcher(links={"base_url": f"http://127.0.0.1:{port}"}, web={"rate_limit": "5/minute"})
    server = LiveServer(create_app(d), port).start()
    try:
        base = f"http://127.0.0.1:{port}"
        statuses = [request(f"{base}/p/GUESS{n:05d}")[0] for n in range(3)]
        statuses += [request(f"{base}/u/guess{n}")[0] for n in range(2)]
        assert 429 not in statuses  # up to the limit: each answered as itself
        status, _body, headers = request(f"{base}/preferences/guess")
        assert status == 429 and int(headers["Retry-After"]) >= 1
        assert request(f"{base}/p/GUESS99999")[0] == 429
        # Another client (behind the trusted local proxy) is not held back by this one.
        assert request(f"{base}/p/GUESS99999", headers={"X-Forwarded-For": "203.0.113.9"})[0] != 429
        assert request(f"{base}/health")[0] == 200  # not a token page
    finally:
        server.stop()


def test_a_bad_rate_limit_is_a_config_error(make_dispatcher):
    from dispatch.errors import ConfigError

    d = make_dispatcher(web={"rate_limit": "lots"})
    with pytest.raises(ConfigError, match=r"web\.rate_limit"):
        create_app(d)
