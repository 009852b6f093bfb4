"""The links and webhooks messages point back to, over real HTTP (and a real browser)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from servers import free_port
from web_helpers import LiveServer, chromium, request

from dispatch.samples import sample_data, sample_recipient
from dispatch.web import create_app

NOW = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)
TOKEN = "twilio-test-token"


@pytest.fixture
def site(make_dispatcher, monkeypatch):
    """A dispatcher and its web app served on 127.0.0.1, with [links] base_url pointing at it."""
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    d = make_dispatcher({"links": {"base_url": base}})
    server = LiveServer(create_app(d), port).start()
    yield d, base
    server.stop()


def post(url: str, fields: dict[str, str], headers: dict[str, str] | None = None) -> tuple[int, str]:
    status, body, _ = request(url, fields, headers)
    return status, body


def get(url: str) -> tuple[int, str]:
    status, body, _ = request(url)
    return status, body


def marketing_to(d, language="fi", country="FI", **extra):
    person = {**sample_recipient(language, country), "language": language, **extra}
    receipt = d.dispatch("marketing", person, sample_data("marketing", country), now=NOW)
    assert receipt.status == "queued"
    return person, receipt


def test_one_click_unsubscribe_records_the_withdrawal_and_stops_the_next_message(site):
    d, base = site
    person, receipt = marketing_to(d)
    url = d.links.unsubscribe_url(receipt.message_id)
    assert url.startswith(base + "/u/")
    status, _ = post(url, {"List-Unsubscribe": "One-Click"})
    assert status == 200
    [entry] = d.consents.history(person["id"])
    assert (entry["purpose"], entry["channel"], entry["granted"], entry["source"]) == (
        "marketing",
        "email",
        False,
        "unsubscribe_link",
    )
    assert "one-click" in entry["evidence"]
    assert post(url, {"List-Unsubscribe": "One-Click"})[0] == 200  # a second click changes nothing
    assert len(d.consents.history(person["id"])) == 1
    decision = d.decide("marketing", person, sample_data("marketing"), now=NOW)
    assert "opted_out" in decision.reasons and not decision.allowed


def test_the_unsubscribe_page_speaks_the_messages_language(site):
    d, _ = site
    _, receipt = marketing_to(d, "sv", "SE")
    status, page = get(d.links.unsubscribe_url(receipt.message_id))
    assert status == 200 and 'lang="sv"' in page and "Avregistrera dig från marknadsföring via e-post" in page
    status, page = post(d.links.unsubscribe_url(receipt.message_id), {})
    assert status == 200 and "Du är avregistrerad från marknadsföring via e-post" in page


def test_newsletter_links_unsubscribe_from_the_newsletter_only(site):
    d, _ = site
    person = sample_recipient("fi", "FI")
    receipt = d.dispatch("newsletter", person, sample_data("newsletter"), now=NOW)
    post(d.links.unsubscribe_url(receipt.message_id), {"List-Unsubscribe": "One-Click"})
    assert d.decide("newsletter", person, sample_data("newsletter"), now=NOW).reasons == ["unsubscribed"]
    assert d.decide("marketing", person, sample_data("marketing"), now=NOW).allowed


def test_forged_or_altered_links_are_refused(site):
    d, base = site
    _, receipt = marketing_to(d)
    url = d.links.unsubscribe_url(receipt.message_id)
    assert get(url[:-2] + ("AA" if not url.endswith("AA") else "BB"))[0] == 404
    assert get(f"{base}/u/{receipt.message_id}.forged")[0] == 404
    for tail in ("%C3%A9", "%22%3E%3C", "==", "%27()%3B", "A"):  # é, "><, ==, '(); — only the canonical form
        assert get(url + tail)[0] == 404, tail
        assert post(url + tail, {"List-Unsubscribe": "One-Click"})[0] == 404, tail
    assert d.consents.history(sample_recipient("fi", "FI")["id"]) == []
    status, page, _ = request(url + "==", headers={"Accept-Language": "fi-FI,fi;q=0.9,en;q=0.5"})
    assert status == 404 and 'lang="fi"' in page and "Linkki ei kelpaa" in page  # branded, in the reader's language


def twilio_signature(url: str, params: dict[str, str]) -> str:
    from twilio.request_validator import RequestValidator

    return RequestValidator(TOKEN).compute_signature(url, params)


def test_a_failed_statutory_sms_reported_by_twilio_goes_again_by_letter(site):
    d, base = site
    person = {**sample_recipient("fi", "FI"), "preferred_channels": {"price_change": "sms"}}
    receipt = d.dispatch("price_change", person, sample_data("price_change"), now=NOW)
    assert d.join(30)
    sid = "SM" + "0" * 32
    from sqlalchemy import update

    from dispatch import schema

    with d.store.engine.begin() as conn:  # what the Twilio channel records as the provider id
        conn.execute(update(schema.messages).where(schema.messages.c.id == receipt.message_id).values(provider_id=sid))
    params = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    url = f"{base}/twilio/status"
    assert post(url, params, {"X-Twilio-Signature": "bad"})[0] == 403
    assert post(url, params, {"X-Twilio-Signature": twilio_signature(url, params)})[0] == 204
    assert d.join(30)
    history = {m["channel"]: m for m in d.store.messages_for(person["id"])}
    assert {c: m["status"] for c, m in history.items()} == {"sms": "fallback", "letter": "sent"}
    assert history["letter"]["fallback_of"] == receipt.message_id
    assert history["sms"]["meta"]["provider_status"] == "undelivered"


def test_sms_stop_withdraws_sms_marketing_for_that_number(site):
    d, base = site
    person = {**sample_recipient("fi", "FI"), "preferred_channels": {"survey": "sms"}}
    d.dispatch("survey", person, sample_data("survey"), now=NOW)
    url = f"{base}/twilio/inbound"
    params = {"From": "+358401234567", "Body": "stop", "MessageSid": "SM1"}
    assert post(url, params, {"X-Twilio-Signature": twilio_signature(url, params)})[0] == 200
    [entry] = d.consents.history(person["id"])
    assert (entry["channel"], entry["granted"], entry["source"]) == ("sms", False, "sms_stop")
    other = {"From": "+358401234567", "Body": "Kiitos!", "MessageSid": "SM2"}
    post(url, other, {"X-Twilio-Signature": twilio_signature(url, other)})
    assert len(d.consents.history(person["id"])) == 1


def test_sms_start_opts_the_number_back_in_and_21610_opts_it_out(site):
    d, base = site
    person = {**sample_recipient("fi", "FI"), "preferred_channels": {"survey": "sms"}}
    receipt = d.dispatch("survey", person, sample_data("survey"), now=NOW)
    assert d.join(30)
    url = f"{base}/twilio/inbound"
    stop = {"From": "+358401234567", "Body": "Lopeta", "MessageSid": "SM2"}
    assert post(url, stop, {"X-Twilio-Signature": twilio_signature(url, stop)})[0] == 200
    params = {"From": "+358401234567", "Body": "Aloita", "MessageSid": "SM3"}
    assert post(url, params, {"X-Twilio-Signature": twilio_signature(url, params)})[0] == 200
    stopped, entry = d.consents.history(person["id"])
    assert (stopped["source"], entry["channel"], entry["granted"], entry["source"]) == (
        "sms_stop",
        "sms",
        True,
        "sms_start",
    )
    sid = "SM" + "1" * 32
    from sqlalchemy import update

    from dispatch import schema

    with d.store.engine.begin() as conn:
        conn.execute(update(schema.messages).where(schema.messages.c.id == receipt.message_id).values(provider_id=sid))
    status_url = f"{base}/twilio/status"
    report = {"MessageSid": sid, "MessageStatus": "failed", "ErrorCode": "21610", "To": "+358401234567"}
    assert post(status_url, report, {"X-Twilio-Signature": twilio_signature(status_url, report)})[0] == 204
    latest = d.consents.history(person["id"])[-1]
    assert (latest["purpose"], latest["channel"], latest["granted"], latest["source"]) == (
        "marketing",
        "sms",
        False,
        "provider",
    )
    assert d.store.message(receipt.message_id, content=False)["status"] == "failed"


def test_twilio_webhooks_without_a_configured_token_are_refused(site, monkeypatch):
    _d, base = site
    monkeypatch.delenv("TWILIO_AUTH_TOKEN")
    assert post(f"{base}/twilio/inbound", {"From": "+358401234567", "Body": "STOP"})[0] == 403


def test_a_person_unsubscribes_in_a_real_browser(site):
    from selenium.webdriver.common.by import By

    d, _ = site
    person, receipt = marketing_to(d, "en", "NO")
    browser = chromium()
    try:
        browser.get(d.links.unsubscribe_url(receipt.message_id))
        assert browser.find_element(By.TAG_NAME, "h1").text == "Unsubscribe from marketing emails"
        browser.find_element(By.ID, "confirm").click()
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        done = WebDriverWait(browser, 10).until(expected_conditions.presence_of_element_located((By.ID, "done")))
        assert done.text == "You are unsubscribed from marketing emails"
    finally:
        browser.quit()
    assert [e["granted"] for e in d.consents.history(person["id"])] == [False]
