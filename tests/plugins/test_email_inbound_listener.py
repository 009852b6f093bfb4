"""The inbound SMTP listener against real SMTP clients (aiosmtplib, smtplib) and the email channel itself.

Messages go out through the email channel to a real aiosmtpd server (the relay);
their bounces, written as Postfix writes them, come back over SMTP to the listener.
"""

from __future__ import annotations

import asyncio
import json
import logging
import smtplib
import threading
from pathlib import Path
from types import SimpleNamespace

import aiosmtplib
import pytest
from verp_helpers import return_path, tag_address, tagged, verp

from dispatch.errors import ConfigError, DispatchError, StoreError
from dispatch.feedback import FeedbackKind, ProviderEvent
from dispatch_email.inbound import InboundListener, ReturnedMailProcessor, start_listener
from dispatch_email.services import returned_mail_services_for, start_returned_mail_services

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inbound"
BOUNCES = "bounces@example.fi"
RETURN_PATH = return_path(BOUNCES)
TEMPLATE_ID = "01JD8Z6Q3V4X5Y6Z7A8B9C0D1E"
TEMPLATE_ADDRESS = "matti.meikalainen@example.net"
#: The customer addresses in the fixtures: none of them may appear in a log line.
PERSONAL = [
    "matti.meikalainen",
    "anna.lindqvist",
    "liisa.virtanen",
    "kalle.nordman",
    "ingrid.hansen",
    "sanna.korhonen",
    "erik.berg",
    "pekka.asiakas",
    "ceo@example.fi",
    "someone@elsewhere",
]


class Collector:
    """``on_feedback``: records events; raises what the test asks for a message id."""

    def __init__(self) -> None:
        self.events: list[ProviderEvent] = []
        self.raise_for: dict[str | None, Exception] = {}
        self._lock = threading.Lock()

    def __call__(self, event: ProviderEvent) -> None:
        error = self.raise_for.get(event.message_id)
        if error is not None:
            raise error
        with self._lock:
            self.events.append(event)


class UnknownMessage(DispatchError):
    """What the core raises for a message id it does not know (stand-in until handle_feedback lands)."""


@pytest.fixture
def collector() -> Collector:
    return Collector()


@pytest.fixture
def listener(tmp_path, collector):
    started = start_listener(RETURN_PATH, collector, tmp_path / "kept", port=0)
    yield started
    started.stop()


async def sendmail(port: int, raw: bytes, recipients: list[str], sender: str = "") -> tuple[dict, str]:
    """One SMTP transaction as an MTA returns mail: ``MAIL FROM:<>`` (the null reverse-path)."""
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60) as client:
        return await client.sendmail(sender, recipients, raw)


def send(listener: InboundListener, raw: bytes, recipients: list[str], sender: str = "") -> tuple[dict, str]:
    """Deliver ``raw`` to the listener over SMTP."""
    return asyncio.run(sendmail(listener.port, raw, recipients, sender))


def fixture(name: str) -> bytes:
    """A fixture with its VERP addresses tagged under the test key."""
    return tagged((FIXTURES / name).read_bytes())


def kept(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


# -- reports over SMTP ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "rcpt", "kind", "message_id", "source"),
    [
        ("postfix_bounce.eml", verp(TEMPLATE_ID), FeedbackKind.BOUNCED, TEMPLATE_ID, "dsn"),
        (
            "postfix_delayed.eml",
            tag_address("bounces+01JD8Z9K2M3N4P5Q6R7S8T9V0W@example.fi"),
            FeedbackKind.SOFT_BOUNCED,
            "01JD8Z9K2M3N4P5Q6R7S8T9V0W",
            "dsn",
        ),
        (
            "exim_dsn.eml",
            tag_address("bounces+01JD8ZB1C2D3E4F5G6H7J8K9M0@EXAMPLE.FI"),
            FeedbackKind.BOUNCED,
            "01JD8ZB1C2D3E4F5G6H7J8K9M0",
            "dsn",
        ),
        (
            "exchange_ndr.eml",
            tag_address("bounces+01JD8ZD7E8F9G0H1J2K3M4N5P6@example.fi"),
            FeedbackKind.BOUNCED,
            "01JD8ZD7E8F9G0H1J2K3M4N5P6",
            "dsn",
        ),
        (
            "gmail_dsn.eml",
            tag_address("bounces+01jd8ze9f0g1h2j3k4m5n6p7q8@example.fi"),
            FeedbackKind.BOUNCED,
            "01JD8ZE9F0G1H2J3K4M5N6P7Q8",
            "dsn",
        ),
        ("arf_abuse.eml", BOUNCES, FeedbackKind.COMPLAINED, "01JD8ZF1G2H3J4K5M6N7P8Q9R0", "arf"),
        (
            "plain_bounce.eml",
            tag_address("bounces+01JD8ZH5J6K7M8N9P0Q1R2S3T4@example.fi"),
            FeedbackKind.BOUNCED,
            "01JD8ZH5J6K7M8N9P0Q1R2S3T4",
            "plain_bounce",
        ),
    ],
)
def test_each_report_sent_over_smtp_reaches_on_feedback(
    listener, collector, tmp_path, name, rcpt, kind, message_id, source
):
    send(listener, fixture(name), [rcpt])

    (event,) = collector.events
    assert (event.kind, event.message_id, event.source, event.channel) == (kind, message_id, source, "email")
    assert listener.stats[source] == 1
    assert listener.stats["events"] == 1
    assert listener.stats["kept_aside"] == 0
    assert not (tmp_path / "kept").exists()


def test_rfc3464_multi_recipient_dsn_to_a_verp_address_gives_one_event_per_kind(listener, collector):
    message_id = "01JD8ZJ7K8M9N0P1Q2R3S4T5V6"
    send(listener, fixture("rfc3464_multi.eml"), [verp(message_id)])
    assert [(e.kind, e.message_id) for e in collector.events] == [
        (FeedbackKind.BOUNCED, message_id),
        (FeedbackKind.SOFT_BOUNCED, message_id),
    ]


# -- what is refused, kept aside and counted ------------------------------------------


@pytest.mark.parametrize(
    "rcpt",
    [
        "someone@elsewhere.example",
        "bounces@example.fi.evil.test",
        "postmaster@example.fi",
        "bounces+NOT-A-MESSAGE-ID@example.fi",
        "bounces+01JD8Z6Q3V4X5Y6Z7A8B9C0D1@example.fi",
    ],
)
def test_rcpt_for_anything_but_the_bounce_mailbox_is_refused_with_550(listener, collector, rcpt):
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        send(listener, fixture("postfix_bounce.eml"), [rcpt])
    assert refused.value.recipients[0].code == 550
    assert collector.events == []
    assert listener.stats["refused_rcpt"] == 1
    assert listener.stats["received"] == 0


def test_only_the_accepted_recipient_counts_when_one_of_two_is_refused(listener, collector):
    errors, _ = send(listener, fixture("postfix_bounce.eml"), ["someone@elsewhere.example", verp(TEMPLATE_ID)])
    assert errors["someone@elsewhere.example"].code == 550
    assert [e.message_id for e in collector.events] == [TEMPLATE_ID]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("not_a_report.eml", "neither a DSN"),
        ("auto_reply.eml", "neither a DSN"),  # to the bare mailbox: no sign of a bounce at all
        ("malformed.eml", "delivery-status part without fields"),
        ("arf_not_spam.eml", "not a complaint"),
        ("forged_id.eml", "names no dispatch message"),
        ("rfc5965_example.eml", "names no dispatch message"),
    ],
)
def test_junk_is_kept_aside_counted_and_answered_250(listener, collector, tmp_path, name, reason):
    raw = fixture(name)
    send(listener, raw, [BOUNCES])

    assert collector.events == []
    assert listener.stats["kept_aside"] == 1
    (note,) = kept(tmp_path / "kept")
    assert reason in note["reason"]
    (eml,) = (tmp_path / "kept").glob("*.eml")
    assert eml.read_bytes().replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")


def test_keep_aside_folder_is_capped_and_the_rest_counted_as_discarded(tmp_path, collector):
    folder = tmp_path / "kept"
    folder.mkdir()
    (folder / "01JD8ZAAAAAAAAAAAAAAAAAAAA.eml").write_bytes(b"kept before a restart")
    processor = ReturnedMailProcessor(RETURN_PATH, collector, folder, keep_aside_max=3)
    with InboundListener(processor, port=0) as listener:
        for _ in range(4):
            send(listener, fixture("not_a_report.eml"), [BOUNCES])
    assert listener.stats["kept_aside"] == 2 and listener.stats["discarded"] == 2
    assert len(list(folder.glob("*.eml"))) == 3


def test_report_for_a_message_the_core_does_not_know_is_kept_aside(listener, collector, tmp_path):
    collector.raise_for[TEMPLATE_ID] = UnknownMessage(f"no message {TEMPLATE_ID}")
    send(listener, fixture("postfix_bounce.eml"), [verp(TEMPLATE_ID)])

    assert collector.events == []
    assert listener.stats["unmatched"] == 1 and listener.stats["kept_aside"] == 1
    (note,) = kept(tmp_path / "kept")
    assert note["reason"] == f"refused: UnknownMessage: no message {TEMPLATE_ID}"
    assert note["message_ids"] == [TEMPLATE_ID] and note["source"] == "dsn"


def test_report_the_core_answers_false_for_is_kept_aside(tmp_path):
    processor = ReturnedMailProcessor(RETURN_PATH, lambda event: False, tmp_path / "kept")
    with InboundListener(processor, port=0) as listener:
        send(listener, fixture("exim_dsn.eml"), [BOUNCES])
    assert listener.stats["unmatched"] == 1 and listener.stats["events"] == 0
    assert kept(tmp_path / "kept")[0]["reason"] == "matched no message"


def test_store_down_answers_451_so_the_mta_retries_and_nothing_is_kept(listener, collector, tmp_path):
    collector.raise_for[TEMPLATE_ID] = StoreError("database is locked")
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        send(listener, fixture("postfix_bounce.eml"), [verp(TEMPLATE_ID)])
    assert refused.value.code == 451
    assert listener.stats["retry"] == 1
    assert not (tmp_path / "kept").exists()

    del collector.raise_for[TEMPLATE_ID]  # the store is back: the MTA's retry is taken
    send(listener, fixture("postfix_bounce.eml"), [verp(TEMPLATE_ID)])
    assert [e.message_id for e in collector.events] == [TEMPLATE_ID]


def test_a_bug_in_on_feedback_keeps_the_mail_and_the_listener_goes_on(listener, collector, tmp_path):
    collector.raise_for[TEMPLATE_ID] = RuntimeError("boom")
    send(listener, fixture("postfix_bounce.eml"), [verp(TEMPLATE_ID)])
    assert listener.stats["errors"] == 1 and listener.stats["kept_aside"] == 1
    assert kept(tmp_path / "kept")[0]["reason"] == "processing failed: RuntimeError"

    send(listener, fixture("exim_dsn.eml"), [BOUNCES])
    assert [e.message_id for e in collector.events] == ["01JD8ZB1C2D3E4F5G6H7J8K9M0"]


def test_oversized_mail_is_refused_with_552_counted_and_the_listener_survives(tmp_path, collector):
    listener = start_listener(RETURN_PATH, collector, tmp_path / "kept", port=0)  # the default limit: 10 MB
    try:
        big = fixture("postfix_bounce.eml") + b"\n" + (b"x" * 500 + b"\n") * 22_000  # ~11 MB
        # A client that announces the size (SIZE=, RFC 1870) is refused at MAIL FROM.
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            send(listener, big, [verp(TEMPLATE_ID)])
        assert refused.value.code == 552
        # One that does not is refused after DATA.
        with smtplib.SMTP("127.0.0.1", listener.port, timeout=60) as client:
            client.helo("mx.test")
            assert client.mail("")[0] == 250
            assert client.rcpt(verp(TEMPLATE_ID))[0] == 250
            assert client.data(big.replace(b"\n", b"\r\n"))[0] == 552  # smtplib sends bytes as they are
        assert listener.stats["oversized"] == 2
        assert listener.stats["received"] == 0 and collector.events == []
        assert not (tmp_path / "kept").exists()

        send(listener, fixture("postfix_bounce.eml"), [verp(TEMPLATE_ID)])
        assert [e.message_id for e in collector.events] == [TEMPLATE_ID]
    finally:
        listener.stop()


def test_many_concurrent_senders(listener, collector):
    ids = [f"01JD8ZK{n:019d}" for n in range(20)]

    async def all_at_once() -> None:
        await asyncio.gather(
            *(
                sendmail(
                    listener.port,
                    fixture("postfix_bounce.eml").replace(TEMPLATE_ID.encode(), i.encode()),
                    [verp(i)],
                )
                for i in ids
            )
        )

    asyncio.run(all_at_once())
    assert sorted(e.message_id for e in collector.events) == ids


def test_no_address_in_any_log_line(tmp_path, collector, caplog):
    caplog.set_level(logging.DEBUG)
    listener = start_listener(RETURN_PATH, collector, tmp_path / "kept", port=0)
    try:
        collector.raise_for["01JD8ZB1C2D3E4F5G6H7J8K9M0"] = UnknownMessage("no message 01JD8ZB1C2D3E4F5G6H7J8K9M0")
        for name in sorted(p.name for p in FIXTURES.glob("*.eml")):
            send(listener, fixture(name), [BOUNCES])
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
            send(listener, fixture("postfix_bounce.eml"), ["someone@elsewhere.example"])
    finally:
        listener.stop()
    lines = [r.getMessage() for r in caplog.records]
    assert any("returned mail: dsn bounced for message 01JD8Z6Q3V4X5Y6Z7A8B9C0D1E (code 5.1.1)" in li for li in lines)
    assert any("kept aside" in li for li in lines)
    for line in lines:
        for personal in PERSONAL:
            assert personal not in line, line
    assert listener.stats["received"] == len(list(FIXTURES.glob("*.eml")))


def test_async_listener_on_the_callers_event_loop(tmp_path, collector):
    processor = ReturnedMailProcessor(RETURN_PATH, collector, tmp_path / "kept")

    async def main() -> None:
        async with InboundListener(processor, port=0) as listener:
            await sendmail(listener.port, fixture("arf_abuse.eml"), [BOUNCES])

    asyncio.run(main())
    assert [e.kind for e in collector.events] == [FeedbackKind.COMPLAINED]


# -- the whole round trip through the email channel ----------------------------------


def _postfix_bounce_of(data: bytes, message_id: str, address: str) -> bytes:
    """The relay's bounce of ``data``, in Postfix's format, the original attached as message/rfc822."""
    template = fixture("postfix_bounce.eml").decode()
    head, _, _ = template.partition("Content-Transfer-Encoding: 8bit\n\nReturn-Path:")
    head = head.replace(TEMPLATE_ID, message_id).replace(TEMPLATE_ADDRESS, address)
    original = data.replace(b"\r\n", b"\n").decode()
    return (
        head
        + "Content-Transfer-Encoding: 8bit\n\n"
        + original
        + "\n--4Y8ZQk1Lc2z9sWn.1795509067/mx.relay.example.net--\n"
    ).encode()


def test_message_sent_through_smtp_bounces_back_to_its_message(
    smtp_server, make_dispatcher, outgoing, run_delivery, collector
):
    d = make_dispatcher(
        {
            "email": {
                "host": smtp_server.host,
                "port": smtp_server.port,
                "sender": "Pohjolan Sähkö <asiakaspalvelu@example.fi>",
                "return_path": BOUNCES,
                "timeout": 5.0,
            }
        }
    )
    message = outgoing("email", "matti.meikalainen@example.net", {"subject": "Hinta", "text": "Hei", "html": ""})
    run_delivery(d, "email", message)

    (received,) = smtp_server.handler.messages
    verp_address = d.channels["email"].return_path.for_message(message.id)
    assert received.mail_from == verp_address  # VERP (with its keyed tag) in MAIL FROM
    assert received.mail_from.startswith(f"bounces+{message.id}-")
    assert b"\r\nReturn-Path:" not in received.data and not received.data.startswith(b"Return-Path:")  # RFC 5321 4.4
    assert f"Message-ID: <{message.id}@example.fi>".encode() in received.data

    services = start_returned_mail_services(d.channels["email"], collector, smtp_port=0)
    try:
        bounce = _postfix_bounce_of(received.data, message.id, received.rcpt_tos[0])
        send(services.listener, bounce, [received.mail_from])
        # A copy to the bare mailbox with no VERP address in it: its Message-ID alone is not enough.
        send(services.listener, bounce.replace(verp_address.encode(), BOUNCES.encode()), [BOUNCES])
        send(services.listener, fixture("not_a_report.eml"), [BOUNCES])
    finally:
        services.stop()

    assert [(e.kind, e.message_id, e.address, e.code, e.permanent) for e in collector.events] == [
        (FeedbackKind.BOUNCED, message.id, "matti.meikalainen@example.net", "5.1.1", True)
    ]
    assert services.stats.snapshot()["kept_aside"] == 2
    kept_dir = d.channels["email"].outbox / "inbound-kept-aside"
    assert len(list(kept_dir.glob("*.eml"))) == 2


def test_services_for_dispatch_serve_are_built_from_the_channel_settings(make_dispatcher, collector):
    d = make_dispatcher({"email": {"return_path": BOUNCES, "inbound_port": 0, "inbound_max_bytes": 64 * 1024}})
    serving = SimpleNamespace(channels=d.channels, handle_feedback=collector)  # what `dispatch serve` has

    (listener,) = returned_mail_services_for(serving)
    assert isinstance(listener, InboundListener) and listener.max_bytes == 64 * 1024
    listener.start()  # as the web application's lifespan does
    try:
        key = d.signing_key("verp")  # the deployment's own key, as the channel tags with it
        gmail = tagged((FIXTURES / "gmail_dsn.eml").read_bytes(), key)
        send(listener, gmail, [tag_address("bounces+01JD8ZE9F0G1H2J3K4M5N6P7Q8@example.fi", key)])
        with pytest.raises(aiosmtplib.SMTPSenderRefused):  # 64 KiB from the settings
            send(listener, gmail * 200, [BOUNCES])
    finally:
        listener.stop()
    assert [e.message_id for e in collector.events] == ["01JD8ZE9F0G1H2J3K4M5N6P7Q8"]
    assert listener.stats["oversized"] == 1

    plain = make_dispatcher({"email": {}})
    assert returned_mail_services_for(SimpleNamespace(channels=plain.channels, handle_feedback=collector)) == []
    with pytest.raises(ConfigError, match="return_path"):
        returned_mail_services_for(SimpleNamespace(channels=plain.channels, handle_feedback=collector), smtp_port=2525)


def test_embedded_eml_shows_the_verp_return_path(make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher({"email": {"return_path": BOUNCES}})
    message = outgoing("email", "matti.meikalainen@example.net", {"subject": "Hinta", "text": "Hei", "html": ""})
    result = run_delivery(d, "email", message)

    data = Path(result.provider_id).read_bytes()
    verp_address = d.channels["email"].return_path.for_message(message.id)
    assert data.startswith(f"Return-Path: <{verp_address}>\r\n".encode())
    assert f"Message-ID: <{message.id}@example.fi>".encode() in data


def test_without_return_path_the_envelope_sender_is_the_from_address(make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher({"email": {"sender": "Energia <asiakaspalvelu@example.fi>"}})
    message = outgoing("email", "matti.meikalainen@example.net", {"subject": "Hinta", "text": "Hei", "html": ""})
    data = Path(run_delivery(d, "email", message).provider_id).read_bytes()
    assert data.startswith(b"Return-Path: <asiakaspalvelu@example.fi>\r\n")


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"return_path": "bounces+x@example.fi"}, "return_path"),
        ({"return_path": "nobody"}, "return_path"),
        ({"inbound_port": 2525}, "need return_path"),
        ({"imap_host": "imap.example.fi"}, "need return_path"),
        ({"return_path": BOUNCES, "inbound_max_bytes": 10}, "inbound_max_bytes"),
    ],
)
def test_inbound_settings_are_checked_at_start_up(make_dispatcher, settings, problem):
    with pytest.raises(ConfigError) as error:
        make_dispatcher({"email": settings})
    assert problem in str(error.value) + " ".join(getattr(error.value, "problems", []))
