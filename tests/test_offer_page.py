"""The acceptance page of a written offer (SPEC §13) in a real headless Chromium, over a real uvicorn server,
with the offer and the contract confirmation read from a real SMTP server."""

from __future__ import annotations

import email
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from email import policy
from zoneinfo import ZoneInfo

import pytest
from outbox_readers import email_parts
from servers import IN_CI, free_port
from smtp_sink import Recorder, SmtpSink
from sqlalchemy import select
from web_helpers import AXE, LiveServer, chromium, request

from dispatch import schema
from dispatch.offers import ADDED_FIELDS
from dispatch.samples import sample_data, sample_recipient
from dispatch.web import create_app

TITLES = {"fi": "Sähkötarjouksesi", "sv": "Ditt elerbjudande", "nb": "Ditt strømtilbud", "en": "Your electricity offer"}
COUNTRY = {"fi": "FI", "sv": "SE", "nb": "NO", "en": "FI"}


class ContentRecorder(Recorder):
    """The sink's recorder, keeping each accepted message too."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[email.message.EmailMessage] = []
        self._content_lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self._content_lock:
            self.messages.append(parsed)
        return await super().handle_DATA(server, session, envelope)

    def find(self, message_id: str):
        with self._content_lock:
            return next((m for m in self.messages if message_id in str(m["Message-ID"])), None)


@pytest.fixture
def sink():
    server = SmtpSink()
    server.recorder = ContentRecorder()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def site(make_dispatcher, sink):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    d = make_dispatcher({"links": {"base_url": base}, "channels": {"email": {"host": "127.0.0.1", "port": sink.port}}})
    server = LiveServer(create_app(d), port).start()
    yield d, base, sink
    server.stop()


@pytest.fixture(scope="module")
def browser():
    driver = chromium()
    yield driver
    driver.quit()


def today(country: str = "FI"):
    zone = {"FI": "Europe/Helsinki", "SE": "Europe/Stockholm", "NO": "Europe/Oslo"}[country]
    return datetime.now(UTC).astimezone(ZoneInfo(zone)).date()


def offer_data(country: str = "FI", **changes) -> dict:
    data = {k: v for k, v in sample_data("sales_offer", country).items() if k not in ADDED_FIELDS}
    day = today(country)
    valid = {"sold_on": day.isoformat(), "valid_until": (day + timedelta(days=14)).isoformat()}
    return {**data, **valid, **changes}


def wait_until(condition, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def wait_for(browser, css: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, 20).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))


def states(d, offer_id):
    s = schema.offer_states
    with d.store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(s).where(s.c.offer_id == offer_id).order_by(s.c.id)).mappings()]


def link_in(message, base: str) -> str:
    text, html = email_parts(message)
    pattern = re.escape(base) + r"/offer/[A-Za-z0-9._-]+"
    in_text, in_html = re.findall(pattern, text), re.findall(pattern, html)
    assert in_text and in_html and set(in_text) == set(in_html), "the offer email carries no acceptance link"
    return in_html[0]


def make_offer(d, language="fi", **extra):
    country = COUNTRY[language]
    person = {**sample_recipient(language, country), "language": language, **extra}
    receipt, offer_id = d.offer(person, offer_data(country))
    assert receipt.status == "queued", receipt.reasons
    return person, receipt, offer_id


def form_of(url: str):
    status, page, headers = request(url)
    assert status == 200, status
    cookie = headers["set-cookie"].split(";")[0]
    return cookie, re.search(r'name="csrf" value="([^"]+)"', page).group(1)


# -- the whole flow -------------------------------------------------------------------------------


def test_call_task_to_offer_email_to_acceptance_to_contract_confirmation(site, browser, tmp_path):
    import json

    from selenium.webdriver.common.by import By

    d, base, sink = site
    # The call: an active Swedish customer asked to be called (consent for phone marketing).
    person = sample_recipient("sv", "SE") | {
        "id": "C-2001",
        "preferred_channels": {"marketing": "phone"},
        "consents": [{"purpose": "marketing", "channel": "phone", "granted": True, "at": "2026-01-01"}],
    }
    monday_morning = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)  # within calling hours: the task is due at once
    call = d.dispatch("marketing", person, sample_data("marketing", "SE"), now=monday_morning)
    assert call.channel == "phone", call.reasons
    assert d.join(30)
    [task] = [json.loads(x) for x in (tmp_path / "outbox" / "phone" / "tasks.jsonl").read_text().splitlines()]
    # The agent records the sale from the task: dispatch sends the written offer.
    day = today("SE")
    data = {
        **task["offer"]["prefill"],
        "sold_on": day.isoformat(),
        "terms_url": "https://energi.example.se/villkor",
        "valid_until": (day + timedelta(days=14)).isoformat(),
    }
    receipt, offer_id = d.offer(person, data)
    assert receipt.channel == "email"
    offer_email = wait_until(lambda: sink.recorder.find(receipt.message_id), "the offer email in the sink")
    text, _ = email_parts(offer_email)
    assert "Vind 12" in text and "69,00 öre/kWh" in text and "Inget avtalades i telefon" in text
    url = link_in(offer_email, base)

    browser.get(url)
    assert browser.find_element(By.TAG_NAME, "h1").text == TITLES["sv"]
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "sv"
    page = browser.page_source
    assert person["email"] not in page and "k•••@example.se" in page  # the masked address only
    assert "<script" not in page.lower()
    assert browser.find_element(By.ID, "product").text == "Vind 12"
    prices = [row.text for row in browser.find_elements(By.CSS_SELECTOR, "#prices tbody tr")]
    # "0 kr/mån" since issue 20: a fee of nothing is written without decimals (was "0,00 kr/mån").
    assert prices == ["Energi 69,00 öre/kWh", "Fast avgift 0 kr/mån"]
    vat = browser.find_element(By.ID, "vat").text
    assert "moms" in vat and "25 %" in vat and vat in text  # the same VAT sentence as the offer email
    assert browser.find_element(By.ID, "duration").text == "12 månader"
    assert browser.find_elements(By.ID, "withdrawal")  # a household: the withdrawal right
    assert states(d, offer_id)[-1]["state"] == "open"  # looking changed nothing
    browser.find_element(By.ID, "accept").click()
    assert "Du godkände erbjudandet" in wait_for(browser, "#accepted").text
    assert not browser.find_elements(By.ID, "accept")  # no second button to press

    [_, accepted] = states(d, offer_id)
    offer = d.offers.get(offer_id)
    assert accepted["state"] == "accepted" and accepted["channel"] == "email"
    assert accepted["content_hash"] == offer["content_hash"]
    assert accepted["wording_version"].startswith("offer-sv-")
    assert accepted["evidence"]["message_id"] == receipt.message_id
    contract_id = offer["contract_message_id"]
    confirmation = wait_until(lambda: sink.recorder.find(contract_id), "the contract confirmation in the sink")
    text, _ = email_parts(confirmation)
    assert "Vind 12" in text and "69,00 öre/kWh" in text
    stored = d.store.message(contract_id)
    assert stored["message_type"] == "contract_confirmation" and stored["status"] in ("sent", "delivered")
    assert stored["content"]["inputs"]["data"]["signed_on"] == today("SE").isoformat()


def test_the_page_works_with_the_keyboard_alone(site, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    d, _, _ = site
    _, _, offer_id = make_offer(d, "en")
    offer = d.offers.get(offer_id)
    browser.get(d.offers.links.url(offer_id, offer["valid_until"] + timedelta(days=1)))

    def tab(shift=False):
        chain = ActionChains(browser)
        (chain.key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT) if shift else chain.send_keys(Keys.TAB))
        chain.perform()
        return browser.execute_script("return document.activeElement.id || document.activeElement.tagName")

    order = [tab() for _ in range(7)]
    assert order == ["A"] * 4 + ["A", "accept", "decline"]  # languages, the terms link, then the two buttons
    outline = browser.execute_script("return getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", "")  # the focus is visible
    assert tab(shift=True) == "accept"
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    assert "You accepted this offer" in wait_for(browser, "#accepted").text
    assert d.offers.get(offer_id)["state"] == "accepted"


def test_declining_in_the_browser(site, browser):
    from selenium.webdriver.common.by import By

    d, _, _ = site
    person, _, offer_id = make_offer(d, "nb")
    offer = d.offers.get(offer_id)
    browser.get(d.offers.links.url(offer_id, offer["valid_until"]))
    browser.find_element(By.ID, "decline").click()
    assert "Du avslo dette tilbudet" in wait_for(browser, "#declined").text
    assert [s["state"] for s in states(d, offer_id)] == ["open", "declined"]
    assert [m["message_type"] for m in d.store.messages_for(person["id"])] == ["sales_offer"]


# -- refusals -------------------------------------------------------------------------------------


def test_forged_expired_replayed_and_other_customers_tokens_are_refused(site):
    d, base, _ = site
    alice, _, a = make_offer(d, "fi")
    _, _, b = make_offer(d, "sv", id="C-2002", email="bob@example.se")
    expires = d.offers.get(a)["valid_until"] + timedelta(days=30)
    good = d.offers.links.token(a, expires)
    bobs = d.offers.links.token(b, expires)
    for token in (
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),  # forged signature
        b + good[len(a) :],  # Alice's signature on Bob's offer
        good + "==",
        good + "%C3%A9",
        d.links.preferences_token(a),  # another kind of token
    ):
        status, page, _ = request(f"{base}/offer/{token}", headers={"Accept-Language": "sv"})
        assert status == 404 and "Länken fungerar inte" in page, token
    expired = d.offers.links.token(a, datetime.now(UTC) - timedelta(seconds=1))
    status, page, _ = request(f"{base}/offer/{expired}")
    assert status == 403 and 'lang="fi"' in page and "Linkki on vanhentunut" in page

    # Bob's page never shows Alice; a form from Bob's page does not decide Alice's offer.
    status, page, headers = request(f"{base}/offer/{bobs}")
    assert status == 200 and "b•••@example.se" in page and "m•••@example.fi" not in page
    bobs_cookie = headers["set-cookie"].split(";")[0]
    bobs_csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    fields = {"csrf": bobs_csrf, "decision": "accept"}
    assert request(f"{base}/offer/{good}", fields, {"Cookie": bobs_cookie, "Origin": base})[0] == 403
    # Alice's own form replayed from another browser (another cookie), cross-origin, or without a token.
    cookie, csrf = form_of(f"{base}/offer/{good}")
    for fields, headers in (
        ({"csrf": csrf, "decision": "accept"}, {"Cookie": "dispatch_csrf=someone-else"}),
        ({"csrf": csrf, "decision": "accept"}, {"Cookie": cookie, "Origin": "http://evil.example"}),
        ({"decision": "accept"}, {"Cookie": cookie}),
    ):
        assert request(f"{base}/offer/{good}", fields, headers)[0] == 403
    assert request(f"{base}/offer/{good}", {"csrf": csrf, "decision": "maybe"}, {"Cookie": cookie})[0] == 400
    assert [s["state"] for s in states(d, a)] == ["open"] and [s["state"] for s in states(d, b)] == ["open"]

    # Accepted; the same POST replayed changes nothing; a decline replayed after it is refused.
    status, _, headers = request(f"{base}/offer/{good}", {"csrf": csrf, "decision": "accept"}, {"Cookie": cookie})
    assert status == 303 and headers["location"].startswith(f"/offer/{good}")
    contract = d.offers.get(a)["contract_message_id"]
    assert contract is not None
    status, _, _ = request(f"{base}/offer/{good}", {"csrf": csrf, "decision": "accept"}, {"Cookie": cookie})
    assert status == 303
    status, page, _ = request(f"{base}/offer/{good}", {"csrf": csrf, "decision": "decline"}, {"Cookie": cookie})
    assert status == 409 and "Hyväksyit tämän tarjouksen" in page
    assert [s["state"] for s in states(d, a)] == ["open", "accepted"]
    assert d.offers.get(a)["contract_message_id"] == contract
    kinds = [m["message_type"] for m in d.store.messages_for(alice["id"])]
    assert kinds.count("contract_confirmation") == 1


def test_an_offer_past_valid_until_is_refused_with_a_clear_page_on_both_sides_of_the_edge(site):
    d, base, _ = site
    person = sample_recipient("fi", "FI")
    day = today("FI")
    # Valid until yesterday: lapsed since midnight in Helsinki.
    past = offer_data(sold_on=(day - timedelta(days=3)).isoformat(), valid_until=(day - timedelta(days=1)).isoformat())
    _, late = d.offer(person, past, now=datetime.now(UTC) - timedelta(days=3))
    # Valid until today: still open until midnight.
    _, still = d.offer({**person, "id": "C-1001-B"}, offer_data(valid_until=day.isoformat()))
    # (The embedded worker may lapse the first one meanwhile: the page says the same either way.)
    late_url = f"{base}/offer/{d.offers.links.token(late, d.offers.get(late)['valid_until'] + timedelta(days=30))}"
    still_url = f"{base}/offer/{d.offers.links.token(still, d.offers.get(still)['valid_until'] + timedelta(days=30))}"

    status, page, _ = request(late_url)
    assert status == 410 and "on rauennut" in page and "Sopimusta ei syntynyt" in page
    assert 'name="decision"' not in page  # nothing to press
    status, page, _ = request(still_url)
    assert status == 200 and 'name="decision"' in page
    # A form opened before the moment and sent after it: refused, the offer lapsed, no contract.
    cookie, csrf = form_of(still_url)
    d.offers.expire_due(datetime.now(UTC))
    assert d.offers.get(still)["state"] == "open"
    late_cookie, late_csrf = (
        cookie,
        d.links.form_token(
            late_url.rsplit("/", 1)[1], cookie.split("=", 1)[1], "offer-fi-x|" + d.offers.get(late)["content_hash"]
        ),
    )
    status, page, _ = request(late_url, {"csrf": late_csrf, "decision": "accept"}, {"Cookie": late_cookie})
    assert status == 410 and "on rauennut" in page
    assert d.offers.get(late)["state"] == "lapsed" and d.offers.get(late)["contract_message_id"] is None
    status, _, _ = request(still_url, {"csrf": csrf, "decision": "accept"}, {"Cookie": cookie})
    assert status == 303 and d.offers.get(still)["state"] == "accepted"


def test_get_never_changes_anything(site):
    d, _, _ = site
    _, _, offer_id = make_offer(d)
    url = d.offers.links.url(offer_id, d.offers.get(offer_id)["valid_until"])
    for query in ("", "?decision=accept", "?lang=sv&decision=decline"):
        assert request(url + query)[0] == 200
    assert [s["state"] for s in states(d, offer_id)] == ["open"]


def test_each_language_and_the_switch_between_them(site, browser):
    from selenium.webdriver.common.by import By

    d, _, _ = site
    for language, title in TITLES.items():
        _, _, offer_id = make_offer(d, language, id=f"C-{language}")
        url = d.offers.links.url(offer_id, d.offers.get(offer_id)["valid_until"])
        browser.get(url)
        assert browser.find_element(By.TAG_NAME, "h1").text == title
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == language
    browser.find_element(By.CSS_SELECTOR, 'nav a[hreflang="fi"]').click()
    assert wait_for(browser, "h1").text == TITLES["fi"]
    assert browser.find_element(By.ID, "accept").text == "Hyväksy tarjous"


def test_the_page_has_no_serious_accessibility_violations(site, browser):
    if not AXE.is_file():
        message = "axe-core is not installed: npm install --prefix tests/node (scripts/test does it)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    d, _, _ = site
    _, _, offer_id = make_offer(d)
    url = d.offers.links.url(offer_id, d.offers.get(offer_id)["valid_until"])
    axe = AXE.read_text(encoding="utf-8")
    for page in [f"{url}?lang={language}" for language in TITLES]:
        browser.get(page)
        browser.execute_script(axe)
        violations = browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']})"
            ".then(r => done(r.violations.map(v => [v.id, v.impact, v.nodes.length])))"
            ".catch(e => done([['axe failed: ' + e, 'critical', 0]]));"
        )
        serious = [v for v in violations if v[1] in ("serious", "critical")]
        assert serious == [], (page, serious)


def test_a_letter_prints_a_short_code_that_leads_to_the_acceptance_page(site, tmp_path):
    from outbox_readers import pdf_text

    d, base, _ = site
    person = {**sample_recipient("fi", "FI"), "email": None}  # no email: the offer goes by letter
    receipt, offer_id = d.offer(person, offer_data())
    assert receipt.channel == "letter"
    assert d.join(30)
    text = pdf_text(tmp_path / "outbox" / "letter" / f"{receipt.message_id}.pdf")
    assert "Kiinteä 24" in text and "8,90 c/kWh" in text and "Puhelimessa ei sovittu mitään" in text
    short = d.store.message(receipt.message_id)["content"]["inputs"]["data"]["accept_code_url"]
    # Printed (the letter may wrap a long line, and marks break opportunities with zero-width spaces).
    assert short in "".join(text.replace("\u200b", "").split())
    code = short.rsplit("/", 1)[1]
    status, _, headers = request(f"{base}/o/{code}")
    assert status == 303 and headers["location"].startswith("/offer/" + offer_id + ".")
    status, page, _ = request(base + headers["location"])
    assert status == 200 and 'name="decision"' in page
    assert request(f"{base}/o/{'2' * 10}")[0] == 404
    assert request(f"{base}/o/{code.lower()}")[0] == 404


def test_the_page_fits_a_phone(site, browser):
    from selenium.webdriver.common.by import By

    d, _, _ = site
    _, _, offer_id = make_offer(d, "fi")
    url = d.offers.links.url(offer_id, d.offers.get(offer_id)["valid_until"])
    metrics = {"width": 360, "height": 740, "deviceScaleFactor": 3, "mobile": True}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        browser.get(url)
        assert browser.execute_script("return window.innerWidth") == 360
        assert browser.execute_script("return document.documentElement.scrollWidth") <= 360  # no sideways scroll
        for button in ("accept", "decline"):
            box = browser.find_element(By.ID, button).rect
            assert box["x"] >= 0 and box["x"] + box["width"] <= 360 and box["height"] >= 40  # big enough to tap
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
