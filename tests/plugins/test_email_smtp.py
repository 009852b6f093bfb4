"""The email channel against a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import email
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.policy import default as default_policy
from email.utils import parsedate_to_datetime

import dkim
import pytest

from dispatch.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError
from dispatch.samples import sample_data, sample_recipient
from dispatch_email.mime import HeaderInjection, InvalidAddress

SENDER = "Pohjolan Sähkö Öy <asiakaspalvelu@example.fi>"
REPLY_TO = "Åsa Ärlig-Ødegård <asiakaspalvelu@example.fi>"
SUBJECT = "Sähkön hinta muuttuu 1.5.2027 – tärkeää tietoa sopimuksestasi, Åsa Øster"
TEXT = "Hei Åsa,\n\nsähkön hinta muuttuu. Hälsningar, Ørsted\n"
HTML = """<!DOCTYPE html><html><head><style>
.card { max-width: 600px; background: #ffffff; }
p.lead { color: #1b6e5a; font-weight: bold; }
@media (max-width: 480px) { .card { padding: 4px; } }
</style></head><body><div class="card"><p class="lead">Hei Åsa,</p><p>sähkön hinta muuttuu.</p></div></body></html>"""
UNSUBSCRIBE = "https://links.example.fi/u/01JABCDEFGHJKMNPQRSTVWXYZ0.Zm9vYmFyYmF6cXV4cXV1eA"


def smtp_settings(server, **extra):
    return {
        "host": server.host,
        "port": server.port,
        "sender": SENDER,
        "reply_to": REPLY_TO,
        "timeout": 5.0,
        "local_hostname": "worker.test.invalid",
        **extra,
    }


def parts(subject=SUBJECT, text=TEXT, html=HTML):
    return {"subject": subject, "text": text, "html": html}


def parse(received):
    return email.message_from_bytes(received.data, policy=default_policy)


def raw_headers(received) -> bytes:
    return received.data.split(b"\r\n\r\n", 1)[0]


# -- what the server receives ----------------------------------------------------------


def test_delivered_message_has_every_header_both_parts_and_inlined_css(
    smtp_server, make_dispatcher, outgoing, run_delivery
):
    d = make_dispatcher({"email": smtp_settings(smtp_server, unsubscribe_mailto="unsubscribe@example.fi")})
    message = outgoing(
        "email",
        "matti.meikalainen@example.fi",
        parts(),
        message_type="newsletter",
        category="service",
        unsubscribe_url=UNSUBSCRIBE,
    )
    before = datetime.now(UTC).replace(microsecond=0)

    result = run_delivery(d, "email", message)

    assert len(smtp_server.handler.messages) == 1
    received = smtp_server.handler.messages[0]
    assert received.mail_from == "asiakaspalvelu@example.fi"
    assert received.rcpt_tos == ["matti.meikalainen@example.fi"]
    assert result.provider_id == "Q000001"  # the server's queue id from "250 ... queued as Q000001"
    assert result.detail["smtp_code"] == 250
    assert "queued as Q000001" in result.detail["smtp_reply"]

    msg = parse(received)
    assert msg["From"].addresses[0].display_name == "Pohjolan Sähkö Öy"
    assert msg["From"].addresses[0].addr_spec == "asiakaspalvelu@example.fi"
    assert msg["To"].addresses[0].addr_spec == "matti.meikalainen@example.fi"
    assert msg["Reply-To"].addresses[0].display_name == "Åsa Ärlig-Ødegård"
    assert str(msg["Subject"]) == SUBJECT
    sent_at = parsedate_to_datetime(str(msg["Date"]))
    assert sent_at.tzinfo is not None and before - timedelta(seconds=1) <= sent_at <= datetime.now(UTC)
    assert str(msg["Message-ID"]) == f"<{message.id}@example.fi>"
    assert str(msg["Content-Language"]) == "fi"
    assert str(msg["MIME-Version"]) == "1.0"
    assert str(msg["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert msg.get_content_type() == "multipart/alternative"

    # RFC 2047: the header block is pure ASCII, å ä ö ø travel as UTF-8 encoded-words.
    headers = raw_headers(received)
    assert headers.isascii()
    for name in (b"From", b"Reply-To", b"Subject"):
        line = next(h for h in headers.split(b"\r\n") if h.startswith(name + b":"))
        assert b"=?utf-8?" in line, line
    # RFC 2369/8058: the URIs are written verbatim between angle brackets, never encoded.
    unsubscribe = email.message_from_bytes(received.data)["List-Unsubscribe"]
    assert "=?" not in unsubscribe
    entries = [e.strip() for e in " ".join(unsubscribe.split()).split(",")]
    assert entries == [f"<{UNSUBSCRIBE}>", f"<mailto:unsubscribe@example.fi?subject=unsubscribe%20{message.id}>"]

    text_part, html_part = msg.get_payload()
    assert text_part.get_content_type() == "text/plain"
    assert text_part.get_content_charset() == "utf-8"
    assert text_part.get_content().replace("\r\n", "\n") == TEXT
    assert html_part.get_content_type() == "text/html"
    assert html_part.get_content_charset() == "utf-8"
    assert "MIME-Version" not in text_part and "MIME-Version" not in html_part
    body = html_part.get_content()
    assert "Hei Åsa," in body
    # css-inline moved the rules into style attributes; only the @media rule stays in <style>.
    assert 'class="card" style="max-width: 600px;background: #ffffff;"' in body
    assert 'class="lead" style="color: #1b6e5a;font-weight: bold;"' in body
    assert "@media (max-width: 480px)" in body
    assert "p.lead {" not in body


def test_message_id_is_the_same_when_the_message_is_sent_again(smtp_server, make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher({"email": smtp_settings(smtp_server)})
    message = outgoing("email", "matti@example.fi", parts())

    first = run_delivery(d, "email", message)
    second = run_delivery(d, "email", message)  # e.g. a redelivery after a crash

    ids = [str(parse(r)["Message-ID"]) for r in smtp_server.handler.messages]
    assert ids == [f"<{message.id}@example.fi>"] * 2
    assert first.detail["message_id"] == second.detail["message_id"] == ids[0]


def test_statutory_message_has_no_list_unsubscribe(smtp_server, make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher({"email": smtp_settings(smtp_server)})
    run_delivery(d, "email", outgoing("email", "matti@example.fi", parts()))
    msg = parse(smtp_server.handler.messages[0])
    assert "List-Unsubscribe" not in msg and "List-Unsubscribe-Post" not in msg


def test_one_click_header_needs_an_https_unsubscribe_uri(smtp_server, make_dispatcher, outgoing, run_delivery):
    # RFC 8058 §3.1: List-Unsubscribe-Post only with an HTTPS URI in List-Unsubscribe.
    d = make_dispatcher({"email": smtp_settings(smtp_server)})
    message = outgoing(
        "email", "matti@example.fi", parts(), category="marketing", unsubscribe_url="http://127.0.0.1:8025/u/token"
    )
    run_delivery(d, "email", message)
    msg = parse(smtp_server.handler.messages[0])
    assert str(msg["List-Unsubscribe"]) == "<http://127.0.0.1:8025/u/token>"
    assert "List-Unsubscribe-Post" not in msg


def test_dkim_signature_verifies_and_covers_the_unsubscribe_headers(
    smtp_server, make_dispatcher, outgoing, run_delivery, dkim_keys
):
    d = make_dispatcher(
        {
            "email": smtp_settings(
                smtp_server,
                dkim_selector="s2027",
                dkim_domain="example.fi",
                dkim_key_file=str(dkim_keys.private_pem),
            )
        }
    )
    message = outgoing("email", "matti@example.fi", parts(), category="marketing", unsubscribe_url=UNSUBSCRIBE)
    run_delivery(d, "email", message)
    data = smtp_server.handler.messages[0].data
    looked_up = []

    def dnsfunc(name, timeout=5):
        looked_up.append(name)
        return dkim_keys.txt_record if name == b"s2027._domainkey.example.fi." else None

    assert data.startswith(b"DKIM-Signature:")
    assert dkim.verify(data, dnsfunc=dnsfunc) is True
    assert looked_up == [b"s2027._domainkey.example.fi."]
    signature = email.message_from_bytes(data)["DKIM-Signature"]
    signed = {h.strip().lower() for h in " ".join(signature.split()).split("h=")[1].split(";")[0].split(":")}
    assert {"from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"} <= signed

    tampered = data.replace(
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: List-Unsubscribe=Nope"
    )
    assert tampered != data
    assert dkim.verify(tampered, dnsfunc=dnsfunc) is False


# -- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "error", "code"),
    [
        ("rcpt421", TransientDeliveryError, "421"),
        ("rcpt450", TransientDeliveryError, "450"),
        ("data451", TransientDeliveryError, "451"),
        ("rcpt550", PermanentDeliveryError, "550"),
        ("data552", PermanentDeliveryError, "552"),
        ("data554", PermanentDeliveryError, "554"),
    ],
)
def test_smtp_replies_map_to_transient_or_permanent(
    smtp_server, make_dispatcher, outgoing, run_delivery, local, error, code
):
    d = make_dispatcher({"email": smtp_settings(smtp_server)})
    with pytest.raises(error) as caught:
        run_delivery(d, "email", outgoing("email", f"{local}@example.fi", parts()))
    assert caught.value.code == code
    if error is TransientDeliveryError:
        assert not isinstance(caught.value, PermanentDeliveryError)
    assert smtp_server.handler.messages == []
    # The connection that saw the error is replaced; the next message goes out.
    result = run_delivery(d, "email", outgoing("email", "matti@example.fi", parts()))
    assert result.detail["smtp_code"] == 250
    assert len(smtp_server.handler.messages) == 1


def test_connection_refused_is_transient(make_dispatcher, outgoing, run_delivery):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket is closed
    d = make_dispatcher({"email": {"host": "127.0.0.1", "port": port, "sender": SENDER, "timeout": 2.0}})
    with pytest.raises(TransientDeliveryError) as caught:
        run_delivery(d, "email", outgoing("email", "matti@example.fi", parts()))
    assert caught.value.code == "connection"


def test_server_that_never_greets_times_out_as_transient(make_dispatcher, outgoing, run_delivery):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts the TCP handshake, never says 220
        d = make_dispatcher(
            {"email": {"host": "127.0.0.1", "port": silent.getsockname()[1], "sender": SENDER, "timeout": 0.5}}
        )
        with pytest.raises(TransientDeliveryError) as caught:
            run_delivery(d, "email", outgoing("email", "matti@example.fi", parts()))
    assert caught.value.code == "timeout"
    assert not isinstance(caught.value, PermanentDeliveryError)


@pytest.mark.parametrize(
    ("address", "message_parts", "error"),
    [
        ("matti@example.fi", parts(subject="Hinta\r\nBcc: victim@example.com"), HeaderInjection),
        ("matti@example.fi", parts(subject="Hinta\nBcc: victim@example.com"), HeaderInjection),
        ("matti@example.fi\r\nBcc: victim@example.com", parts(), HeaderInjection),
        ("matti@example.fi, victim@example.com", parts(), InvalidAddress),
        ("not an address", parts(), InvalidAddress),
    ],
)
def test_header_injection_is_refused_and_nothing_is_sent(
    smtp_server, make_dispatcher, outgoing, run_delivery, address, message_parts, error
):
    d = make_dispatcher({"email": smtp_settings(smtp_server)})
    with pytest.raises(error) as caught:
        run_delivery(d, "email", outgoing("email", address, message_parts))
    assert isinstance(caught.value, PermanentDeliveryError)
    assert smtp_server.handler.messages == []
    assert smtp_server.handler.peers == set()


def test_unsubscribe_url_cannot_inject_headers(smtp_server, make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher({"email": smtp_settings(smtp_server)})
    message = outgoing(
        "email",
        "matti@example.fi",
        parts(),
        category="marketing",
        unsubscribe_url="https://x.example/u\r\nBcc: victim@example.com",
    )
    with pytest.raises(HeaderInjection):
        run_delivery(d, "email", message)
    assert smtp_server.handler.messages == []


# -- the connection pool ---------------------------------------------------------------


def test_concurrent_deliveries_share_at_most_pool_size_connections(
    smtp_server, make_dispatcher, outgoing, run_delivery
):
    d = make_dispatcher({"email": smtp_settings(smtp_server, pool_size=3)})
    messages = [outgoing("email", f"customer{i}@example.fi", parts()) for i in range(40)]
    with ThreadPoolExecutor(8) as workers:  # eight worker threads, one delivery loop
        results = list(workers.map(lambda m: run_delivery(d, "email", m), messages))

    assert len(smtp_server.handler.messages) == 40
    assert sorted(r.rcpt_tos[0] for r in smtp_server.handler.messages) == sorted(m.address for m in messages)
    assert 1 <= len(smtp_server.handler.peers) <= 3  # connections the server saw
    assert len({r.provider_id for r in results}) == 40
    assert d.channels["email"].pool.opened == len(smtp_server.handler.peers)


def test_connection_is_replaced_after_messages_per_connection(smtp_server, make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher({"email": smtp_settings(smtp_server, pool_size=1, messages_per_connection=5)})
    for i in range(12):
        run_delivery(d, "email", outgoing("email", f"c{i}@example.fi", parts()))
    by_peer: dict[tuple[str, int], int] = {}
    for received in smtp_server.handler.messages:
        by_peer[received.peer] = by_peer.get(received.peer, 0) + 1
    assert sorted(by_peer.values()) == [2, 5, 5]


def test_a_connection_the_server_dropped_is_replaced(smtp_server, make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher({"email": smtp_settings(smtp_server, pool_size=1)})
    run_delivery(d, "email", outgoing("email", "first@example.fi", parts()))
    smtp_server.drop_connections()  # e.g. the server's idle timeout
    run_delivery(d, "email", outgoing("email", "second@example.fi", parts()))
    assert [r.rcpt_tos[0] for r in smtp_server.handler.messages] == ["first@example.fi", "second@example.fi"]
    assert len(smtp_server.handler.peers) == 2


# -- TLS, AUTH, SMTPUTF8 ----------------------------------------------------------------


def test_starttls_with_a_self_signed_certificate_and_login(
    smtp_server_factory, tls_files, make_dispatcher, outgoing, run_delivery, monkeypatch
):
    server = smtp_server_factory(starttls=tls_files.server_context(), auth=True)
    monkeypatch.setenv("DISPATCH_SMTP_PASSWORD", "s3cret")
    d = make_dispatcher(
        {"email": smtp_settings(server, starttls=True, username="dispatch", cert_bundle=str(tls_files.cert))}
    )
    result = run_delivery(d, "email", outgoing("email", "matti@example.fi", parts()))
    assert result.detail["smtp_code"] == 250
    assert server.handler.logins == [("dispatch", "s3cret")]
    assert server.handler.messages[0].tls


def test_starttls_refuses_a_certificate_it_cannot_verify(
    smtp_server_factory, tls_files, make_dispatcher, outgoing, run_delivery
):
    server = smtp_server_factory(starttls=tls_files.server_context())
    d = make_dispatcher({"email": smtp_settings(server, starttls=True)})  # no cert_bundle: unknown issuer
    with pytest.raises(TransientDeliveryError) as caught:
        run_delivery(d, "email", outgoing("email", "matti@example.fi", parts()))
    assert "certificate" in str(caught.value).lower()
    assert server.handler.messages == []


def test_wrong_password_is_transient_not_a_bounce(
    smtp_server_factory, tls_files, make_dispatcher, outgoing, run_delivery
):
    server = smtp_server_factory(starttls=tls_files.server_context(), auth=True)
    d = make_dispatcher(
        {
            "email": smtp_settings(
                server, starttls=True, username="dispatch", password="wrong", cert_bundle=str(tls_files.cert)
            )
        }
    )
    with pytest.raises(TransientDeliveryError) as caught:
        run_delivery(d, "email", outgoing("email", "matti@example.fi", parts()))
    assert caught.value.code == "535"
    assert not isinstance(caught.value, PermanentDeliveryError)


def test_implicit_tls(smtp_server_factory, tls_files, make_dispatcher, outgoing, run_delivery):
    server = smtp_server_factory(implicit_tls=tls_files.server_context())
    d = make_dispatcher({"email": smtp_settings(server, use_tls=True, cert_bundle=str(tls_files.cert))})
    run_delivery(d, "email", outgoing("email", "matti@example.fi", parts()))
    assert server.handler.messages[0].tls


def test_non_ascii_local_part_uses_smtputf8(smtp_server_factory, make_dispatcher, outgoing, run_delivery):
    server = smtp_server_factory(smtputf8=True)
    d = make_dispatcher({"email": smtp_settings(server)})
    run_delivery(d, "email", outgoing("email", "jörg.åström@exämple.fi", parts()))
    received = server.handler.messages[0]
    assert received.rcpt_tos == ["jörg.åström@xn--exmple-cua.fi"]
    assert "SMTPUTF8" in received.mail_options
    # RFC 6532: with SMTPUTF8 the headers themselves are UTF-8.
    msg = email.message_from_string(received.data.decode("utf-8"), policy=default_policy)
    assert msg["To"].addresses[0].addr_spec == "jörg.åström@xn--exmple-cua.fi"


def test_non_ascii_local_part_without_smtputf8_is_permanent(smtp_server, make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher({"email": smtp_settings(smtp_server)})
    with pytest.raises(PermanentDeliveryError) as caught:
        run_delivery(d, "email", outgoing("email", "jörg@example.fi", parts()))
    assert caught.value.code == "smtputf8"
    # An internationalised domain alone needs nothing special: it goes as xn--.
    run_delivery(d, "email", outgoing("email", "matti@sähkö.fi", parts()))
    assert smtp_server.handler.messages[0].rcpt_tos == ["matti@xn--shk-qla6g.fi"]


# -- configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"use_tls": True, "starttls": True}, "exclude each other"),
        ({"dkim_selector": "s1", "dkim_domain": "example.fi"}, "DKIM needs"),
        ({"sender": "Energia Oy, Helsinki <asiakaspalvelu@example.fi>"}, "sender"),
        (
            {"dkim_selector": "s1", "dkim_domain": "example.fi", "dkim_key_file": "/nonexistent/key.pem"},
            "dkim_key_file",
        ),
    ],
)
def test_unusable_settings_fail_at_start_up(make_dispatcher, settings, problem):
    with pytest.raises(ConfigError) as caught:
        make_dispatcher({"email": {"host": "127.0.0.1", **settings}})
    assert problem in str(caught.value)


def test_embedded_mode_writes_the_same_message_to_an_eml_file(make_dispatcher, outgoing, run_delivery, tmp_path):
    d = make_dispatcher({"email": {"sender": SENDER}})
    message = outgoing("email", "matti@example.fi", parts(), category="marketing", unsubscribe_url=UNSUBSCRIBE)
    result = run_delivery(d, "email", message)
    path = tmp_path / "outbox" / "email" / f"{message.message_type}-{message.language}-{message.id}.eml"
    assert result.provider_id == str(path)
    msg = email.message_from_bytes(path.read_bytes(), policy=default_policy)
    assert str(msg["Subject"]) == SUBJECT
    assert str(msg["Content-Language"]) == "fi"
    assert str(msg["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"


# -- through the whole pipeline --------------------------------------------------------


def test_dispatch_sends_a_price_change_over_smtp(smtp_server, make_dispatcher):
    d = make_dispatcher({"email": {"host": smtp_server.host, "port": smtp_server.port, "timeout": 5.0}})
    recipient = sample_recipient("en", "FI") | {"preferred_channels": {"default": "email"}}
    receipt = d.dispatch(
        "price_change", recipient, sample_data("price_change", "FI"), now=datetime(2027, 3, 1, 10, tzinfo=UTC)
    )
    assert receipt.status == "queued" and receipt.channel == "email"
    d.close(timeout=30)

    received = smtp_server.handler.messages
    assert len(received) == 1
    msg = parse(received[0])
    assert received[0].rcpt_tos == [recipient["email"]]
    assert str(msg["Message-ID"]) == f"<{receipt.message_id}@example.fi>"
    assert "1 May 2027" in str(msg["Subject"])
    assert 'style="' in msg.get_body(("html",)).get_content()
    assert str(msg["Content-Language"]) == "en"


def test_a_bounced_statutory_email_falls_back_to_a_letter(smtp_server, make_dispatcher, tmp_path):
    d = make_dispatcher({"email": {"host": smtp_server.host, "port": smtp_server.port, "timeout": 5.0}})
    recipient = sample_recipient("en", "FI") | {
        "email": "rcpt550.gone@example.fi",
        "preferred_channels": {"default": "email"},
    }
    receipt = d.dispatch(
        "price_change", recipient, sample_data("price_change", "FI"), now=datetime(2027, 3, 1, 10, tzinfo=UTC)
    )
    d.join(timeout=30)
    row = d.store.message(receipt.message_id, content=False)
    assert row["status"] == "fallback"  # failed for good, then re-sent by letter
    assert smtp_server.handler.messages == []
    letters = list((tmp_path / "outbox" / "letter").glob("*.pdf"))
    assert len(letters) == 1


def test_a_dkim_key_that_is_not_a_key_fails_at_start_up(make_dispatcher, tmp_path):
    bad = tmp_path / "dkim.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError, match="not an RSA private key"):
        make_dispatcher(
            {
                "email": {
                    "host": "127.0.0.1",
                    "dkim_selector": "s1",
                    "dkim_domain": "example.fi",
                    "dkim_key_file": str(bad),
                }
            }
        )
