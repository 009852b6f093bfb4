"""Returned mail → provider events: DSNs and ARF reports as Postfix, Exim, Exchange, Gmail and the RFCs write them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from verp_helpers import return_path, tagged, verp

from dispatch.errors import ConfigError
from dispatch.feedback import FeedbackKind
from dispatch_email.reports import parse_returned_mail, redact
from dispatch_email.verp import ReturnPath, is_message_id

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inbound"
RETURN_PATH = return_path()
BOUNCED, SOFT, COMPLAINED = FeedbackKind.BOUNCED, FeedbackKind.SOFT_BOUNCED, FeedbackKind.COMPLAINED


def parse(name: str, **kwargs):
    return parse_returned_mail(tagged((FIXTURES / name).read_bytes()), return_path=RETURN_PATH, **kwargs)


# -- VERP -----------------------------------------------------------------------------


def test_verp_address_round_trip_is_strict():
    message_id = "01JD8Z6Q3V4X5Y6Z7A8B9C0D1E"
    address = RETURN_PATH.for_message(message_id)
    local, _, domain = address.partition("@")
    assert domain == "example.fi" and local.startswith("bounces+01JD8Z6Q3V4X5Y6Z7A8B9C0D1E-")
    tag = local.rpartition("-")[2]
    assert len(tag) == 10
    assert RETURN_PATH.message_id(address) == message_id
    assert RETURN_PATH.message_id(f"<BOUNCES+01jd8z6q3v4x5y6z7a8b9c0d1e-{tag.lower()}@EXAMPLE.FI>") == message_id
    for forged in (
        "bounces+01JD8Z6Q3V4X5Y6Z7A8B9C0D1E@example.fi",  # no tag: what a customer could write for any id
        f"bounces+01JD8Z6Q3V4X5Y6Z7A8B9C0D1F-{tag}@example.fi",  # the neighbour's id with one's own tag
        f"bounces+01JD8Z6Q3V4X5Y6Z7A8B9C0D1E-{tag[:-1]}@example.fi",
        f"bounces+01JD8Z6Q3V4X5Y6Z7A8B9C0D1E-{tag}A@example.fi",
        "bounces+01JD8Z6Q3V4X5Y6Z7A8B9C0D1@example.fi",  # 25 characters
        "bounces+01JD8Z6Q3V4X5Y6Z7A8B9C0D1EE@example.fi",  # 27
        "bounces+81JD8Z6Q3V4X5Y6Z7A8B9C0D1E@example.fi",  # above 128 bits
        "bounces+01JD8Z6Q3V4X5Y6Z7A8B9C0D1U@example.fi",  # U is not Crockford base32
        "bounces+01JD8Z6Q3V4X5Y6Z7A8B9C0D1E@example.fi.evil.test",
        "bounces+01JD8Z6Q3V4X5Y6Z7A8B9C0D1E@sub.example.fi",
        "other+01JD8Z6Q3V4X5Y6Z7A8B9C0D1E@example.fi",
        "bounces+x+01JD8Z6Q3V4X5Y6Z7A8B9C0D1E@example.fi",
        "bounces@example.fi",
    ):
        assert RETURN_PATH.message_id(forged) is None, forged
    # Another deployment's key makes other tags.
    assert return_path(key=b"another deployment").message_id(address) is None
    assert not RETURN_PATH.accepts("bounces+01JD8Z6Q3V4X5Y6Z7A8B9C0D1E@example.fi")
    assert RETURN_PATH.accepts("Bounces@Example.FI")
    assert not RETURN_PATH.accepts("postmaster@example.fi")
    assert not RETURN_PATH.accepts("bounces+nonsense@example.fi")
    assert is_message_id(message_id) and not is_message_id("m-1")
    with pytest.raises(ValueError):
        RETURN_PATH.for_message("not-an-id")


@pytest.mark.parametrize("value", ["bounces", "bounces+x@example.fi", "bounces@localhost", "a b@example.fi", "@x.fi"])
def test_return_path_that_cannot_carry_verp_is_a_config_error(value):
    with pytest.raises(ConfigError, match="return_path"):
        ReturnPath.parse(value)


# -- DSNs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "kind", "message_id", "address", "code", "permanent", "reporter"),
    [
        (
            "postfix_bounce.eml",
            BOUNCED,
            "01JD8Z6Q3V4X5Y6Z7A8B9C0D1E",
            "matti.meikalainen@example.net",
            "5.1.1",
            True,
            "postfix",
        ),
        (
            "postfix_delayed.eml",
            SOFT,
            "01JD8Z9K2M3N4P5Q6R7S8T9V0W",
            "anna.lindqvist@example.se",
            "4.4.1",
            False,
            "postfix",
        ),
        ("exim_dsn.eml", BOUNCED, "01JD8ZB1C2D3E4F5G6H7J8K9M0", "liisa.virtanen@example.org", "5.0.0", True, "exim"),
        (
            "exchange_ndr.eml",
            BOUNCED,
            "01JD8ZD7E8F9G0H1J2K3M4N5P6",
            "kalle.nordman@contoso.se",
            "5.1.10",
            True,
            "exchange",
        ),
        (
            "gmail_dsn.eml",
            BOUNCED,
            "01JD8ZE9F0G1H2J3K4M5N6P7Q8",
            "ingrid.hansen.test@gmail.com",
            "5.1.1",
            True,
            "gmail",
        ),
    ],
)
def test_dsn_from_each_mta_becomes_one_event(fixture, kind, message_id, address, code, permanent, reporter):
    parsed = parse(fixture)

    assert parsed.source == "dsn" and parsed.problem is None
    (event,) = parsed.events
    assert event.kind is kind
    assert event.channel == "email"
    assert event.message_id == message_id
    assert event.address == address
    assert event.code == code
    assert event.permanent is permanent
    assert event.source == "dsn"
    assert event.detail["reporter"] == reporter
    assert event.detail["reporting_mta"].startswith("dns;")
    assert event.occurred_at.tzinfo is not None and event.occurred_at.year == 2026
    # Diagnostics without personal data: the recipient's address never appears in detail.
    assert address not in repr(event.detail) and "Kalle Nordman" not in repr(event.detail)


def test_postfix_dsn_details_queue_id_and_redacted_diagnostic():
    (event,) = parse("postfix_bounce.eml").events
    assert event.provider_id == "4Y8ZQk1Lc2z9sWn"  # the relay's queue id, as recorded at send time
    assert event.detail["action"] == "failed"
    assert event.detail["remote_mta"] == "dns; mail.example.net"
    assert event.detail["diagnostic"] == (
        "smtp; 550 5.1.1 <address>: Recipient address rejected: User unknown in virtual mailbox table"
    )
    assert event.occurred_at == datetime(2026, 11, 24, 8, 31, 5, tzinfo=UTC)  # Arrival-Date


def test_message_id_from_the_originals_return_path_when_the_report_went_to_the_bare_mailbox():
    raw = (FIXTURES / "postfix_bounce.eml").read_bytes()
    head, marker, original = raw.partition(b"Content-Type: message/rfc822")
    raw = head.replace(b"bounces+01JD8Z6Q3V4X5Y6Z7A8B9C0D1E@", b"bounces@") + marker + tagged(original)
    (event,) = parse_returned_mail(raw, return_path=RETURN_PATH, envelope_recipients=["bounces@example.fi"]).events
    assert event.message_id == "01JD8Z6Q3V4X5Y6Z7A8B9C0D1E"  # the original's Return-Path: our tagged VERP address


def test_a_message_id_header_alone_is_never_enough():
    # The attacker's neighbour's id in Message-ID and in an untagged VERP address: nothing is matched.
    raw = (FIXTURES / "postfix_bounce.eml").read_bytes()
    parsed = parse_returned_mail(raw, return_path=RETURN_PATH, envelope_recipients=["bounces@example.fi"])
    assert [e.message_id for e in parsed.events] == [None]


def test_envelope_recipient_wins_over_headers_and_a_mismatch_is_noted():
    other = "01JD8ZZ1Z2Z3Z4Z5Z6Z7Z8Z9Z0"
    (event,) = parse("postfix_bounce.eml", envelope_recipients=[verp(other)]).events
    assert event.message_id == other
    assert event.detail["message_id_mismatch"] is True


def test_gmail_x_original_message_id_alone_matches_nothing():
    raw = (FIXTURES / "gmail_dsn.eml").read_bytes()
    head, _, _ = raw.partition(b"Content-Type: message/rfc822")
    raw = head.replace(b"bounces+01JD8ZE9F0G1H2J3K4M5N6P7Q8@", b"bounces@") + b"--000000000000b0c1a20627ab12cd--\n"
    (event,) = parse_returned_mail(raw, return_path=RETURN_PATH).events
    assert event.message_id is None  # X-Original-Message-ID is only a header anyone can write


def test_rfc3464_multi_recipient_example_gives_one_event_per_recipient():
    parsed = parse("rfc3464_multi.eml")
    assert [(e.address, e.kind, e.code, e.permanent) for e in parsed.events] == [
        ("arathib@vnet.ibm.com", BOUNCED, "5.0.0", True),
        ("johnh@hpnjld.njd.hp.com", SOFT, "4.0.0", False),
        ("wsnell@sdcc13.ucsd.edu", BOUNCED, "5.0.0", True),
    ]
    assert all(e.message_id is None for e in parsed.events)  # not one of ours
    assert parsed.events[0].detail["diagnostic"] == "smtp; 550 '<address>' is not a registered gateway user"


def test_rfc3464_failed_after_retries_on_a_temporary_cause_is_a_bounce_but_not_permanent():
    (event,) = parse("rfc3464_simple.eml").events
    assert (event.kind, event.code, event.permanent) == (BOUNCED, "4.0.0", False)
    assert event.occurred_at == datetime(1994, 7, 7, 21, 15, 49, tzinfo=UTC)  # Last-Attempt-Date


def test_rfc3464_delayed_example_is_a_soft_bounce():
    (event,) = parse("rfc3464_delayed.eml").events
    assert (event.kind, event.code, event.address) == (SOFT, "4.0.0", "thomas@de-montfort.ac.uk")


def test_dsn_reporting_success_is_delivered():
    raw = (FIXTURES / "postfix_bounce.eml").read_bytes()
    raw = raw.replace(b"Action: failed\nStatus: 5.1.1", b"Action: delivered\nStatus: 2.0.0")
    (event,) = parse_returned_mail(raw, return_path=RETURN_PATH).events
    assert (event.kind, event.code, event.permanent) == (FeedbackKind.DELIVERED, "2.0.0", False)


def test_base64_encoded_delivery_status_part_is_decoded():
    import base64

    fields = (
        b"Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; x@example.net\nAction: failed\nStatus: 5.2.2\n"
    )
    raw = (
        b"From: MAILER-DAEMON@mx.example.net\nTo: bounces+01JD8Z6Q3V4X5Y6Z7A8B9C0D1E@example.fi\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain\n\n"
        b"Mailbox full\n--b\nContent-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n"
        + base64.encodebytes(fields)
        + b"--b--\n"
    )
    (event,) = parse_returned_mail(tagged(raw), return_path=RETURN_PATH).events
    assert (event.kind, event.code, event.address, event.message_id) == (
        BOUNCED,
        "5.2.2",
        "x@example.net",
        "01JD8Z6Q3V4X5Y6Z7A8B9C0D1E",
    )


# -- ARF ------------------------------------------------------------------------------


def test_arf_abuse_report_is_a_complaint_for_the_verp_message():
    parsed = parse("arf_abuse.eml", envelope_recipients=["bounces@example.fi"])
    assert parsed.source == "arf"
    (event,) = parsed.events
    assert event.kind is COMPLAINED
    assert event.message_id == "01JD8ZF1G2H3J4K5M6N7P8Q9R0"  # from Original-Mail-From (the VERP address)
    assert event.address == "sanna.korhonen@mailbox.example.net"  # Original-Rcpt-To
    assert event.code == "abuse"
    assert event.source == "arf"
    assert event.detail == {
        "feedback_type": "abuse",
        "user_agent": "ExampleFBL/2.1",
        "reporting_mta": "dns; fbl.mailbox.example.net",
    }
    assert event.occurred_at == datetime(2026, 11, 24, 10, 58, tzinfo=UTC)


def test_rfc5965_example_is_a_complaint_with_no_message_of_ours():
    (event,) = parse("rfc5965_example.eml").events
    assert (event.kind, event.message_id, event.address) == (COMPLAINED, None, "user@example.com")


def test_arf_with_redacted_headers_and_only_a_message_id_matches_no_message():
    (event,) = parse("arf_headers_redacted.eml").events
    assert event.message_id is None  # Message-ID: <01JD8ZG3...@example.fi> alone is never enough
    assert event.address is None  # the redacted To of the original is not taken for the recipient


def test_arf_not_spam_is_no_complaint():
    parsed = parse("arf_not_spam.eml")
    assert parsed.source == "arf" and parsed.events == ()
    assert "not-spam" in parsed.problem


# -- plain bounces and junk -----------------------------------------------------------


def test_plain_bounce_with_only_550_5_1_1_in_the_body():
    parsed = parse("plain_bounce.eml", envelope_recipients=[verp("01JD8ZH5J6K7M8N9P0Q1R2S3T4")])
    assert parsed.source == "plain_bounce"
    (event,) = parsed.events
    assert (event.kind, event.code, event.permanent, event.message_id, event.address) == (
        BOUNCED,
        "5.1.1",
        True,
        "01JD8ZH5J6K7M8N9P0Q1R2S3T4",
        None,
    )
    assert event.source == "plain_bounce"


def test_old_exim_plain_bounce_uses_x_failed_recipients_and_not_the_copied_message_id():
    (event,) = parse("exim_plain.eml", envelope_recipients=["bounces@example.fi"]).events
    assert (event.address, event.code, event.message_id) == ("erik.berg@example.org", "5.1.1", None)
    assert "erik.berg" not in event.detail["diagnostic"]


@pytest.mark.parametrize(
    ("fixture", "problem"),
    [
        ("not_a_report.eml", "neither a DSN"),
        ("auto_reply.eml", "without a 5.x.x"),
        ("malformed.eml", "without fields"),
    ],
)
def test_junk_yields_no_event_and_says_why(fixture, problem):
    parsed = parse(fixture)
    assert parsed.events == ()
    assert problem in parsed.problem


def test_forged_ids_are_not_taken():
    (event,) = parse("forged_id.eml", envelope_recipients=["bounces@example.fi"]).events
    assert event.message_id is None  # neither "bounces+NOT-A-MESSAGE-ID" nor "<01JD8ZZZZ@...>" is an id


def test_redact_removes_every_address():
    text = "550 5.1.1 <a.b@example.com>: unknown; also c@d.fi and 'e@f.se'\n  next line"
    assert redact(text) == "550 5.1.1 <address>: unknown; also <address> and '<address>' next line"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_parser_never_raises_on_arbitrary_bytes(raw):
    parsed = parse_returned_mail(raw, return_path=RETURN_PATH, envelope_recipients=["bounces@example.fi"])
    assert parsed.events == () or parsed.source is not None


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=4000), st.binary(min_size=1, max_size=40))
def test_parser_never_raises_on_a_corrupted_dsn(position, junk):
    raw = bytearray((FIXTURES / "postfix_bounce.eml").read_bytes())
    raw[position : position + len(junk)] = junk
    parsed = parse_returned_mail(bytes(raw), return_path=RETURN_PATH)
    assert isinstance(parsed.events, tuple)
