"""Signed tokens and short codes: only the canonical form verifies, lifetimes hold, forms bind to their page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dispatch.errors import DispatchError
from dispatch.links import SHORT_CODE_ALPHABET, ExpiredToken, InvalidToken, LinkSigner

NOW = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)
MID = "01JH5Z6Q8X3W4V5T6S7R8Q9P0N"
TAILS = ("é", '"><', "==", "'();", "=", " ", "\n", ".", "A")


@pytest.fixture
def signer() -> LinkSigner:
    return LinkSigner("secret", "https://energia.example.fi/", preferences_lifetime=timedelta(days=30))


def test_unsubscribe_tokens_verify_only_in_their_canonical_form(signer):
    token = signer.unsubscribe_token(MID)
    assert signer.verify_unsubscribe(token) == MID
    assert signer.unsubscribe_url(MID) == f"https://energia.example.fi/u/{token}"
    for tail in TAILS:
        with pytest.raises(InvalidToken):
            signer.verify_unsubscribe(token + tail)
        with pytest.raises(InvalidToken):
            signer.verify_unsubscribe(tail + token)
    with pytest.raises(InvalidToken):
        signer.verify_unsubscribe(token.replace(".", ".=", 1))
    with pytest.raises(InvalidToken):
        LinkSigner("other secret", "https://x").verify_unsubscribe(token)


def test_preference_tokens_expire_and_verify_only_in_their_canonical_form(signer):
    token = signer.preferences_token(MID, NOW)
    assert signer.verify_preferences(token, NOW + timedelta(days=29)) == MID
    with pytest.raises(ExpiredToken) as expired:
        signer.verify_preferences(token, NOW + timedelta(days=30))
    assert expired.value.message_id == MID
    for tail in TAILS:
        with pytest.raises(InvalidToken):
            signer.verify_preferences(token + tail, NOW)
    with pytest.raises(InvalidToken):  # an unsubscribe token is no preference token
        signer.verify_preferences(signer.unsubscribe_token(MID), NOW)
    with pytest.raises(InvalidToken):  # nor the other way round
        signer.verify_unsubscribe(token)
    value, signature = token.rsplit(".", 1)
    message_id, expires = value.split(".")
    later = signer.preferences_token(MID, NOW + timedelta(days=300)).rsplit(".", 1)[0].split(".")[1]
    with pytest.raises(InvalidToken):  # extending the lifetime breaks the signature
        signer.verify_preferences(f"{message_id}.{later}.{signature}", NOW)
    assert expires != later


def test_form_tokens_bind_the_cookie_nonce_the_page_and_the_wording(signer):
    page = signer.preferences_token(MID, NOW)
    other_page = signer.preferences_token("01JH5Z6Q8X3W4V5T6S7R8Q9P0M", NOW)
    form = signer.form_token(page, "nonce-1", "preferences-fi-abc")
    assert signer.verify_form_token(form, page, "nonce-1") == "preferences-fi-abc"
    assert "nonce-1" not in form
    for token, page_token, nonce in (
        (form, page, "nonce-2"),
        (form, other_page, "nonce-1"),
        (form, page, ""),
        (form + "==", page, "nonce-1"),
        ("", page, "nonce-1"),
    ):
        with pytest.raises(InvalidToken):
            signer.verify_form_token(token, page_token, nonce)


def test_short_codes_are_unambiguous_stored_and_expire(dispatcher):
    codes = dispatcher.short_codes
    code = codes.issue(MID, NOW)
    assert len(code) == 10 and set(code) <= set(SHORT_CODE_ALPHABET)
    assert not set(code) & set("01OIL")
    assert codes.resolve(code, NOW + timedelta(days=399)) == MID
    with pytest.raises(ExpiredToken):
        codes.resolve(code, NOW + timedelta(days=400))
    for bad in (code.lower(), code + "A", code[:-1], code + "é", "0" * 10):
        with pytest.raises(InvalidToken):
            codes.resolve(bad, NOW)
    assert codes.url(MID, NOW).startswith("https://energia.example.fi/dispatch/p/")
    assert len({codes.issue(MID, NOW) for _ in range(20)}) == 20


def test_bad_signer_settings_are_dispatch_errors():
    with pytest.raises(DispatchError):
        LinkSigner("", "https://x")
    with pytest.raises(DispatchError):
        LinkSigner("s", "https://x", preferences_lifetime=timedelta(0))
    with pytest.raises(DispatchError):
        LinkSigner("s", "https://x").preferences_token(MID, datetime(2027, 1, 1))
