"""The message bytes the email channel writes, parsed back with the ``email`` package."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email.policy import default as default_policy

import pytest

from dispatch.models import OutgoingMessage
from dispatch_email.mime import HeaderInjection, build_email, quoted_printable

DATE = datetime(2027, 3, 1, 10, 30, tzinfo=UTC)


def message(parts, **fields) -> OutgoingMessage:
    values = {
        "id": "01JABCDEFGHJKMNPQRSTVWXYZ0",
        "message_type": "price_change",
        "category": "statutory",
        "channel": "email",
        "language": "sv",
        "locale": "sv_FI",
        "country": "FI",
        "recipient_id": "C-1",
        "address": "anna@example.fi",
        "parts": parts,
    }
    values.update(fields)
    return OutgoingMessage(**values)


def build(parts, **fields):
    return build_email(
        message(parts, **fields), sender="Pohjola Energi <kundservice@example.fi>", reply_to=None, date=DATE
    )


def test_long_subjects_are_folded_and_read_back_whole():
    ascii_subject = "Your electricity prices are changing on 1 May 2027 - please read about your right to end the deal"
    nordic_subject = "Ditt elpris ändras den 1 maj 2027 – läs om din rätt att säga upp avtalet utan kostnad, Åsa"
    for subject in (ascii_subject, nordic_subject):
        data = build({"subject": subject, "text": "Hej"}).data
        head = data.split(b"\r\n\r\n", 1)[0]
        assert head.isascii()
        assert all(len(line) <= 78 for line in head.split(b"\r\n"))
        assert str(email.message_from_bytes(data, policy=default_policy)["Subject"]) == subject


def test_text_only_message_is_a_single_quoted_printable_part():
    built = build({"subject": "Hej", "text": "Hej Åsa,\n\nrad två. 100 % = allt\n"})
    msg = email.message_from_bytes(built.data, policy=default_policy)
    assert msg.get_content_type() == "text/plain"
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    assert msg.get_content().replace("\r\n", "\n") == "Hej Åsa,\n\nrad två. 100 % = allt\n"
    assert str(msg["Content-Language"]) == "sv"
    assert not msg.defects


def test_empty_text_part_and_html_part_parse_without_defects():
    built = build({"subject": "Hej", "text": "", "html": "<p>Hej</p>"})
    msg = email.message_from_bytes(built.data, policy=default_policy)
    text, html = msg.get_payload()
    assert text.get_content() == "" and html.get_content().strip() == "<p>Hej</p>"
    assert not msg.defects and not text.defects and not html.defects


def test_the_same_message_gives_the_same_bytes():
    parts = {"subject": "Hej", "text": "Hej", "html": "<p>Hej</p>"}
    assert build(parts).data == build(parts).data  # stable Message-ID and boundary: a re-send is identical


def test_quoted_printable_keeps_lines_short_and_encodes_what_it_must():
    text = "Åsa  \n" + "x" * 200 + "\n=\n.\r\nend"
    encoded = quoted_printable(text)
    assert encoded.isascii()
    assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))
    assert b"\n" not in encoded.replace(b"\r\n", b"")
    assert b"=C3=85sa =20" in encoded  # non-ASCII and trailing space are encoded
    assert b"\r\n=3D\r\n" in encoded


@pytest.mark.parametrize("language", ["sv\r\nBcc: x@example.com", "sv; x", "sv FI"])
def test_language_must_be_a_language_tag(language):
    with pytest.raises(HeaderInjection):
        build({"subject": "Hej", "text": "Hej"}, language=language)
