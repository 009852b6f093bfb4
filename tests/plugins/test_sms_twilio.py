"""The SMS channel against Twilio's own contract (Prism) and a local HTTP server that answers errors on cue."""

from __future__ import annotations

import base64
import json
import socket
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest

from dispatch.errors import (
    AddressRejected,
    ConfigError,
    PermanentDeliveryError,
    RecipientOptedOut,
    TransientDeliveryError,
)
from dispatch.samples import sample_data, sample_recipient
from dispatch.segments import count_segments

ACCOUNT = "AC" + "0123456789abcdef" * 2
TOKEN = "test-auth-token"
SENDER = "+358401111111"
TO = "+358401234567"
TEXT = "Pohjolan Energia: sähkön hinta muuttuu 1.5.2027. Energia 7,49 → 8,90 c/kWh. Lisätietoja: 09 4289 1000"
CALLBACK = "https://hooks.example.fi/sms/status"


def twilio_message(sid: str = "SM" + "f" * 32, status: str = "queued", segments: str = "1") -> dict:
    return {
        "sid": sid,
        "status": status,
        "num_segments": segments,
        "account_sid": ACCOUNT,
        "to": TO,
        "from": SENDER,
        "body": TEXT,
        "error_code": None,
        "error_message": None,
    }


def twilio_error(status: int, code: int, message: str) -> dict:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def settings(base_url: str, **extra) -> dict:
    return {
        "account_sid": ACCOUNT,
        "auth_token": TOKEN,
        "sender": SENDER,
        "base_url": base_url,
        "timeout": 5.0,
        **extra,
    }


@pytest.fixture
def twilio_stub(http_stub):
    """The local server answers like Twilio's Messages API unless a test queued something else."""
    http_stub.answer_by_default(201, twilio_message())
    return http_stub


# -- against Twilio's OpenAPI description (Prism) ---------------------------------------


@pytest.mark.server
def test_prism_accepts_what_the_channel_sends(prism, make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher({"sms": settings(prism, status_callback=CALLBACK)})
    message = outgoing("sms", TO, {"text": TEXT})

    result = run_delivery(d, "sms", message)

    # Prism validated the request against the contract (--errors) and answered the spec's example.
    assert result.provider_id == "SM" + "a" * 32
    assert result.detail["twilio_status"] == "queued"
    assert result.detail["encoding"] == "UCS-2"  # "→" is not in GSM 03.38
    assert result.detail["segments"] == count_segments(TEXT).segments == 2


@pytest.mark.server
def test_prism_accepts_a_messaging_service_instead_of_a_sender(prism, make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher({"sms": settings(prism, sender=None, messaging_service_sid="MG" + "1" * 32)})
    result = run_delivery(d, "sms", outgoing("sms", TO, {"text": "Hei! Laskusi on valmis."}))
    assert result.provider_id.startswith("SM")
    assert result.detail == {
        **count_segments("Hei! Laskusi on valmis.").as_dict(),
        "twilio_status": "queued",
        "twilio_segments": 1,
    }


@pytest.mark.server
def test_prism_rejects_a_request_that_breaks_the_contract(prism):
    # The control for the tests above: Prism with --errors refuses what the spec does not allow.
    request = urllib.request.Request(
        f"{prism}/2010-04-01/Accounts/{ACCOUNT}/Messages.json",
        data=b"From=%2B358401111111&Body=hei",
        headers={
            "Authorization": "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode(),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 422
    assert "required property 'To'" in caught.value.read().decode()


# -- what goes over the wire -------------------------------------------------------------


def test_request_carries_number_text_sender_callback_and_credentials(
    twilio_stub, make_dispatcher, outgoing, run_delivery
):
    d = make_dispatcher({"sms": settings(twilio_stub.url, status_callback=CALLBACK)})
    result = run_delivery(d, "sms", outgoing("sms", TO, {"text": TEXT}))

    [request] = twilio_stub.requests
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert request.form() == {"To": [TO], "From": [SENDER], "Body": [TEXT], "StatusCallback": [CALLBACK]}
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    assert result.provider_id == "SM" + "f" * 32
    assert result.detail["segments"] == 2 and result.detail["encoding"] == "UCS-2"


def test_auth_token_from_the_environment_wins(twilio_stub, make_dispatcher, outgoing, run_delivery, monkeypatch):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "from-env")
    d = make_dispatcher({"sms": settings(twilio_stub.url)})
    run_delivery(d, "sms", outgoing("sms", TO, {"text": "Hei"}))
    assert twilio_stub.requests[0].headers["Authorization"] == (
        "Basic " + base64.b64encode(f"{ACCOUNT}:from-env".encode()).decode()
    )


def test_one_client_and_one_kept_alive_connection_for_many_messages(
    twilio_stub, make_dispatcher, outgoing, run_delivery
):
    d = make_dispatcher({"sms": settings(twilio_stub.url)})
    run_delivery(d, "sms", outgoing("sms", TO, {"text": "1"}))
    client = d.channels["sms"].twilio
    for i in range(2, 6):
        run_delivery(d, "sms", outgoing("sms", TO, {"text": str(i)}))
    assert d.channels["sms"].twilio is client
    assert [r.form()["Body"] for r in twilio_stub.requests] == [["1"], ["2"], ["3"], ["4"], ["5"]]
    assert len({r.client for r in twilio_stub.requests}) == 1


def test_text_over_the_segment_limit_is_sent_and_flagged(twilio_stub, make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher({"sms": settings(twilio_stub.url)})
    text = "Hinta muuttuu. " * 12  # 180 GSM-7 characters: two segments
    result = run_delivery(d, "sms", outgoing("sms", TO, {"text": text}, meta={"max_segments": 1}))
    assert len(twilio_stub.requests) == 1
    assert result.detail["segments"] == 2
    assert result.detail["over_limit"] is True and result.detail["max_segments"] == 1


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "error", "code"),
    [
        (429, twilio_error(429, 20429, "Too Many Requests"), TransientDeliveryError, "20429"),
        (500, twilio_error(500, 20500, "Internal Server Error"), TransientDeliveryError, "20500"),
        (503, b"<html>Service Unavailable</html>", TransientDeliveryError, "503"),
        (401, twilio_error(401, 20003, "Authenticate"), TransientDeliveryError, "20003"),
        (
            400,
            twilio_error(400, 21211, "The 'To' number +3581 is not a valid phone number."),
            AddressRejected,  # a PermanentDeliveryError that also puts the number on the suppression list
            "21211",
        ),
        (400, twilio_error(400, 21614, "'To' number is not a valid mobile number"), AddressRejected, "21614"),
        (
            400,
            twilio_error(400, 21617, "The concatenated message body exceeds the 1600 character limit"),
            PermanentDeliveryError,
            "21617",
        ),
        (400, twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"), RecipientOptedOut, "21610"),
    ],
)
def test_twilio_errors_map_to_transient_permanent_or_opted_out(
    twilio_stub, make_dispatcher, outgoing, run_delivery, status, body, error, code
):
    twilio_stub.reply(status, body)
    d = make_dispatcher({"sms": settings(twilio_stub.url)})
    with pytest.raises(error) as caught:
        run_delivery(d, "sms", outgoing("sms", TO, {"text": "Hei"}))
    assert type(caught.value) is error
    assert caught.value.code == code
    # The client survives the error: the next message goes out.
    assert run_delivery(d, "sms", outgoing("sms", TO, {"text": "Hei"})).provider_id == "SM" + "f" * 32


def test_timeout_is_transient(twilio_stub, make_dispatcher, outgoing, run_delivery):
    twilio_stub.reply(201, twilio_message(), delay=2.0)
    d = make_dispatcher({"sms": settings(twilio_stub.url, timeout=0.3)})
    with pytest.raises(TransientDeliveryError) as caught:
        run_delivery(d, "sms", outgoing("sms", TO, {"text": "Hei"}))
    assert type(caught.value) is TransientDeliveryError and caught.value.code == "timeout"


def test_connection_refused_is_transient(make_dispatcher, outgoing, run_delivery):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    d = make_dispatcher({"sms": settings(f"http://127.0.0.1:{port}")})
    with pytest.raises(TransientDeliveryError) as caught:
        run_delivery(d, "sms", outgoing("sms", TO, {"text": "Hei"}))
    assert type(caught.value) is TransientDeliveryError and caught.value.code == "connection"


@pytest.mark.parametrize("number", ["0401234567", "+358 40 123 4567", "", None])
def test_a_number_that_is_not_e164_is_refused_without_a_request(
    twilio_stub, make_dispatcher, outgoing, run_delivery, number
):
    d = make_dispatcher({"sms": settings(twilio_stub.url)})
    with pytest.raises(PermanentDeliveryError) as caught:
        run_delivery(d, "sms", outgoing("sms", number, {"text": "Hei"}))
    assert caught.value.code == "invalid_number"
    assert twilio_stub.requests == []


def test_missing_auth_token_keeps_the_message_queued(twilio_stub, make_dispatcher, outgoing, run_delivery, monkeypatch):
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    d = make_dispatcher({"sms": settings(twilio_stub.url, auth_token=None)})
    with pytest.raises(TransientDeliveryError) as caught:
        run_delivery(d, "sms", outgoing("sms", TO, {"text": "Hei"}))
    assert caught.value.code == "configuration"
    assert twilio_stub.requests == []


def test_a_sender_or_messaging_service_is_required(make_dispatcher):
    with pytest.raises(ConfigError, match="messaging_service_sid"):
        make_dispatcher({"sms": {"account_sid": ACCOUNT, "auth_token": TOKEN}})


# -- through the whole pipeline --------------------------------------------------------


def test_stop_reply_records_the_opt_out_and_the_notice_goes_by_letter(twilio_stub, make_dispatcher, tmp_path):
    twilio_stub.reply(400, twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"))
    d = make_dispatcher({"sms": settings(twilio_stub.url)})
    recipient = sample_recipient("fi", "FI") | {"preferred_channels": {"default": "sms"}}
    receipt = d.dispatch(
        "price_change", recipient, sample_data("price_change", "FI"), now=datetime(2027, 3, 1, 10, tzinfo=UTC)
    )
    assert receipt.channel == "sms"
    d.join(timeout=30)

    assert len(twilio_stub.requests) == 1
    assert twilio_stub.requests[0].form()["To"] == ["+358401234567"]
    assert d.store.message(receipt.message_id, content=False)["status"] == "fallback"
    withdrawals = [c for c in d.consents.history(recipient["id"]) if not c["granted"]]
    assert withdrawals and withdrawals[-1]["channel"] == "sms"
    assert json.dumps(withdrawals[-1], default=str).count("21610") >= 1
    assert len(list((tmp_path / "outbox" / "letter").glob("*.pdf"))) == 1
