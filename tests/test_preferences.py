"""The preference centre (SPEC §11) in a real headless Chromium, over a real uvicorn server."""

from __future__ import annotations

import re
import urllib.parse
from datetime import UTC, datetime, timedelta

import pytest
from outbox_readers import email_parts, eml_path, read_eml
from servers import IN_CI, free_port
from web_helpers import AXE, LiveServer, chromium, request

from dispatch.samples import sample_data, sample_recipient
from dispatch.web import create_app

NOW = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)
SHY = "\u00ad"  # a soft hyphen: where a long heading may break on a phone
TITLES = {
    "fi": "Viestintäasetukset",
    "sv": "Kommunikationsinställningar",
    "nb": "Kommunikasjonsinnstillinger",
    "en": "Communication preferences",
}


@pytest.fixture
def site(make_dispatcher):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    d = make_dispatcher({"links": {"base_url": base}})
    server = LiveServer(create_app(d), port).start()
    yield d, base
    server.stop()


@pytest.fixture(scope="module")
def browser():
    driver = chromium()
    yield driver
    driver.quit()


def send_marketing(d, language="fi", country="FI", **extra):
    person = {**sample_recipient(language, country), "language": language, **extra}
    receipt = d.dispatch("marketing", person, sample_data("marketing", country), now=NOW)
    assert receipt.status == "queued"
    assert d.join(30)
    return person, receipt


def link_from_email(d, tmp_path, message_id: str) -> str:
    """The preference link in the footer of a delivered email (its HTML and text parts carry the same)."""
    text, html = email_parts(read_eml(eml_path(tmp_path / "outbox" / "email", message_id)))
    pattern = r"https?://127\.0\.0\.1:\d+/preferences/[A-Za-z0-9._-]+"
    in_text, in_html = re.findall(pattern, text), re.findall(pattern, html)
    assert in_text and in_html, "the email's footer carries no link to the preference page"
    assert set(in_text) == set(in_html)
    return in_html[0]


def wait_for(browser, css: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, 20).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))


def entries(d, person, source="preference_centre"):
    return [
        (e["purpose"], e["channel"], e["granted"]) for e in d.consents.history(person["id"]) if e["source"] == source
    ]


def test_a_customer_changes_preferences_in_a_browser_from_a_real_email(site, browser, tmp_path):
    from selenium.webdriver.common.by import By

    d, _ = site
    person, receipt = send_marketing(d)
    browser.get(link_from_email(d, tmp_path, receipt.message_id))
    assert browser.find_element(By.TAG_NAME, "h1").text.replace(SHY, "") == TITLES["fi"]
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "fi"
    page = browser.page_source
    assert person["email"] not in page and "401234567" not in page  # masked addresses only
    assert "m•••@example.fi" in page
    radios = browser.find_elements(By.CSS_SELECTOR, "input[type=radio][name=notice_channel]")
    assert [r.get_attribute("value") for r in radios] == ["email", "sms", "letter"]
    assert browser.find_element(By.ID, "notice-email").is_selected()
    browser.find_element(By.CSS_SELECTOR, "label[for=notice-sms]").click()
    email_box = browser.find_element(By.ID, "marketing-email")
    assert email_box.is_selected()  # an active customer: soft opt-in
    email_box.click()
    browser.find_element(By.ID, "save").click()
    assert "tallennettu" in wait_for(browser, "#saved").text
    assert browser.find_element(By.ID, "notice-sms").is_selected()
    assert not browser.find_element(By.ID, "marketing-email").is_selected()
    assert entries(d, person) == [("notice_channel", "sms", True), ("marketing", "email", False)]
    wording = {e["wording_version"] for e in d.consents.history(person["id"])}
    assert len(wording) == 1 and wording.pop().startswith("preferences-fi-")
    assert d.decide("marketing", person, sample_data("marketing"), now=datetime.now(UTC)).reasons == ["opted_out"]


def test_the_next_decide_sends_price_notices_by_the_channel_chosen(site):
    d, base = site
    person, receipt = send_marketing(d)
    url = d.links.preferences_url(receipt.message_id)
    status, page, headers = request(url)
    cookie = headers["set-cookie"].split(";")[0]
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    form = {"csrf": csrf, "notice_channel": "sms", "marketing": ["email", "sms", "letter", "phone"]}
    form |= {"newsletter": "on", "survey": "on"}
    status, _, _ = request(url, form, {"Cookie": cookie, "Origin": base})
    assert status == 303 and entries(d, person) == [("notice_channel", "sms", True)]
    data = {**sample_data("price_change"), "effective_on": (datetime.now(UTC) + timedelta(days=62)).date().isoformat()}
    assert d.decide("price_change", person, data).channel == "sms"  # the ledger entry wins over the mapping


def test_the_form_works_with_the_keyboard_alone(site, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    d, _ = site
    person, receipt = send_marketing(d, "en", "FI")
    browser.get(d.links.preferences_url(receipt.message_id))

    def tab(times=1, shift=False):
        for _ in range(times):
            chain = ActionChains(browser)
            (chain.key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT) if shift else chain.send_keys(Keys.TAB))
            chain.perform()
        return browser.execute_script("return document.activeElement.id || document.activeElement.tagName")

    order = [tab() for _ in range(13)]
    assert order == ["A"] * 4 + [
        "notice-email",
        "marketing-email",
        "marketing-sms",
        "marketing-letter",
        "marketing-phone",
        "marketing-ban",
        "newsletter",
        "survey",
        "save",
    ]
    outline = browser.execute_script("return getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", "")  # the focus is visible
    assert tab(8, shift=True) == "notice-email"
    ActionChains(browser).send_keys(Keys.ARROW_DOWN).perform()  # arrows move within the radio group
    assert browser.execute_script("return document.activeElement.id") == "notice-sms"
    assert tab() == "marketing-email"
    ActionChains(browser).send_keys(Keys.SPACE).perform()
    assert tab(6) == "survey"
    ActionChains(browser).send_keys(Keys.SPACE).perform()
    assert tab() == "save"
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    wait_for(browser, "#saved")
    assert entries(d, person) == [
        ("notice_channel", "sms", True),
        ("marketing", "email", False),
        ("survey", "all", False),
    ]


def test_each_language_and_the_switch_between_them(site, browser):
    from selenium.webdriver.common.by import By

    d, _ = site
    _, receipt = send_marketing(d, "sv", "SE")
    url = d.links.preferences_url(receipt.message_id)
    status, page, _ = request(url)
    assert status == 200 and 'lang="sv"' in page and TITLES["sv"] in page.replace(SHY, "")  # the customer's language
    for language, title in TITLES.items():
        status, page, _ = request(f"{url}?lang={language}")
        assert status == 200 and f'<html lang="{language}">' in page and f"<h1>{title}</h1>" in page.replace(SHY, "")
        assert f'action="/preferences/{url.rsplit("/", 1)[1]}?lang={language}"' in page
    browser.get(url)
    browser.find_element(By.CSS_SELECTOR, "nav a[lang=nb]").click()
    assert wait_for(browser, "html[lang=nb] h1").text.replace(SHY, "") == TITLES["nb"]
    assert browser.find_element(By.CSS_SELECTOR, "nav a[aria-current=page]").get_attribute("lang") == "nb"
    browser.find_element(By.ID, "save").click()  # saving keeps the language chosen; nothing changed, and it says so
    assert wait_for(browser, "html[lang=nb] #saved").text == "Du endret ingen valg, så det var ingenting å lagre."
    browser.find_element(By.ID, "newsletter").click()
    browser.find_element(By.ID, "save").click()
    assert wait_for(browser, "html[lang=nb] #saved:not([data-unchanged])").text.startswith("Valgene dine er lagret")


def test_forged_expired_and_other_customers_tokens_are_refused(site):
    d, base = site
    alice, a = send_marketing(d, "fi", "FI")
    bob, b = send_marketing(d, "sv", "SE", id="C-2002", email="bob@example.se")
    good = d.links.preferences_token(a.message_id)
    bobs = d.links.preferences_token(b.message_id)
    for token in (
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),  # forged signature
        b.message_id + good[len(a.message_id) :],  # Alice's signature on Bob's message
        good + "%C3%A9",
        good + "%22%3E%3C",
        good + "==",
        good + "%27()%3B",
        d.links.unsubscribe_token(a.message_id),  # another kind of token
    ):
        status, page, _ = request(f"{base}/preferences/{token}", headers={"Accept-Language": "sv"})
        assert status == 404 and 'lang="sv"' in page and "Länken fungerar inte" in page, token
    expired = d.links.preferences_token(a.message_id, datetime.now(UTC) - timedelta(days=91))
    status, page, _ = request(f"{base}/preferences/{expired}")
    assert status == 403 and 'lang="fi"' in page and "Linkki on vanhentunut" in page  # in the customer's language
    # Bob's page never shows Alice, and a form token from Bob's page does not save Alice's.
    status, page, headers = request(f"{base}/preferences/{bobs}")
    assert status == 200 and "b•••@example.se" in page and "m•••@example.fi" not in page
    cookie = headers["set-cookie"].split(";")[0]
    bobs_csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    status, _, _ = request(
        f"{base}/preferences/{good}", {"csrf": bobs_csrf, "marketing_ban": "on"}, {"Cookie": cookie, "Origin": base}
    )
    assert status == 403
    assert entries(d, alice) == [] and entries(d, bob) == []


def test_a_csrf_attempt_is_refused(site, browser, tmp_path):
    """Another site's page auto-submits the form in the customer's browser: refused, nothing recorded."""
    import http.server
    import threading

    d, base = site
    person, receipt = send_marketing(d)
    url = d.links.preferences_url(receipt.message_id)
    browser.get(url)  # the customer has the page open: their browser holds the CSRF cookie
    # The attacker fetched the page themselves: a valid form token, bound to the attacker's cookie.
    _, page, _ = request(url)
    attackers_csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    evil = (
        f'<html><body><form id="f" method="post" action="{url}">'
        f'<input type="hidden" name="csrf" value="{attackers_csrf}">'
        '<input type="hidden" name="marketing_ban" value="on"></form>'
        '<script>document.getElementById("f").submit()</script></body></html>'
    ).encode()

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(evil)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Evil)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        browser.get(f"http://127.0.0.2:{server.server_address[1]}/")
        heading = wait_for(browser, "h1#error")
        assert heading.get_attribute("data-status") == "403" and heading.text == "Lomake on vanhentunut"
    finally:
        server.shutdown()
    # And without a browser: no cookie, a foreign Origin, or a missing token are each refused.
    cookie = "dispatch_csrf=whatever"
    for fields, headers in (
        ({"csrf": attackers_csrf, "marketing_ban": "on"}, {}),
        ({"csrf": attackers_csrf, "marketing_ban": "on"}, {"Cookie": cookie}),
        ({"marketing_ban": "on"}, {"Cookie": cookie, "Origin": base}),
        ({"csrf": attackers_csrf, "marketing_ban": "on"}, {"Cookie": cookie, "Origin": "http://evil.example"}),
    ):
        assert request(url, fields, headers)[0] == 403
    assert d.consents.history(person["id"]) == []


def test_a_form_with_values_the_page_did_not_offer_is_refused(site):
    d, base = site
    person, receipt = send_marketing(d, "sv", "SE", phone=None)
    url = d.links.preferences_url(receipt.message_id)
    status, page, headers = request(url)
    assert 'value="sms"' not in page.split('id="notice"')[1].split("</fieldset>")[0]  # no phone: no SMS notices
    cookie = headers["set-cookie"].split(";")[0]
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    for fields in ({"notice_channel": "sms"}, {"marketing": "fax"}, {"newsletter": "yes"}):
        status, page, _ = request(url, {"csrf": csrf, **fields}, {"Cookie": cookie, "Origin": base})
        assert status == 400 and 'lang="sv"' in page and "Formuläret innehöll fel" in page
    assert d.consents.history(person["id"]) == []


def test_get_never_changes_anything(site):
    d, _ = site
    person, receipt = send_marketing(d)
    for url in (d.links.preferences_url(receipt.message_id), d.links.unsubscribe_url(receipt.message_id)):
        for query in ("", "?marketing_ban=on&notice_channel=sms&List-Unsubscribe=One-Click"):
            assert request(url + query)[0] == 200
    assert d.consents.history(person["id"]) == []


def test_pages_have_no_serious_accessibility_violations(site, browser):
    if not AXE.is_file():
        message = "axe-core is not installed: npm install --prefix tests/node (scripts/test does it)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    d, base = site
    _, receipt = send_marketing(d)
    url = d.links.preferences_url(receipt.message_id)
    pages = [f"{url}?lang={language}" for language in TITLES]
    pages += [f"{url}?lang=fi&saved=1", d.links.unsubscribe_url(receipt.message_id), f"{base}/no-such-page"]
    axe = AXE.read_text(encoding="utf-8")
    for page in pages:
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


def test_a_short_code_from_a_letter_leads_to_the_preference_page(site):
    d, base = site
    _, receipt = send_marketing(d, "en", "NO")
    short = d.short_codes.url(receipt.message_id)
    assert re.fullmatch(re.escape(base) + r"/p/[23456789A-HJKMNP-Z]{10}", short)
    status, _, headers = request(short)
    assert status == 303 and headers["location"].startswith("/preferences/")
    status, page, _ = request(base + headers["location"])
    assert status == 200 and TITLES["en"] in page
    code = short.rsplit("/", 1)[1]
    # As typed from paper: any case, spaces or a dash in between, leads to the same page.
    for typed in (code.lower(), f"{code[:5]} {code[5:]}".lower(), f"{code[:5]}-{code[5:]}", f" {code} "):
        status, _, typed_headers = request(f"{base}/p/{urllib.parse.quote(typed)}")
        assert status == 303 and typed_headers["location"].startswith("/preferences/"), typed
    for bad in (code + "2", code[:-1] + ("2" if code[-1] != "2" else "3"), code[:-1]):
        status, page, _ = request(f"{base}/p/{bad}", headers={"Accept-Language": "en"})
        assert status == 404 and "This code does not work" in page and "Check the code on your letter" in page
        assert "copied only in part" not in page  # the code's own error, not the link's
    old = d.short_codes.issue(receipt.message_id, datetime.now(UTC) - timedelta(days=500))
    status, page, _ = request(f"{base}/p/{old}")
    assert status == 403 and "This link has expired" in page


def test_the_operator_view_needs_its_token_and_masks_addresses(make_dispatcher):
    import base64

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    d = make_dispatcher({"links": {"base_url": base}, "web": {"operator_token": "op-token-1"}})
    server = LiveServer(create_app(d), port).start()
    try:
        person, receipt = send_marketing(d)
        d.consents.record(person["id"], "newsletter", False, source="customer_service")
        url = f"{base}/operator?recipient={person['id']}"
        status, _, headers = request(url)
        assert status == 401 and headers["www-authenticate"].startswith("Basic")
        assert request(url, headers={"Authorization": "Bearer wrong"})[0] == 401
        status, page, _ = request(url, headers={"Authorization": "Bearer op-token-1"})
        assert status == 200 and receipt.message_id in page and "m•••@example.fi" in page
        assert person["email"] not in page and "customer_service" in page
        basic = base64.b64encode(b"anyone:op-token-1").decode()
        assert request(url, headers={"Authorization": f"Basic {basic}"})[0] == 200
        assert request(url, {"x": "y"}, {"Authorization": "Bearer op-token-1"})[0] == 405  # read-only
    finally:
        server.stop()


def test_without_an_operator_token_there_is_no_operator_view(site):
    _, base = site
    assert request(f"{base}/operator", headers={"Authorization": "Bearer "})[0] == 404
