"""The customer's own pages read right in each language and on a phone (issue 27).

Rendered pages are asserted per language over real HTTP (a uvicorn server); layout,
accessibility and keyboard use in a real headless Chromium, on phone widths through
chromedriver's mobile emulation (a desktop window is never narrower than 500 px).
"""

from __future__ import annotations

import html
import re
import shutil
import urllib.parse
from datetime import UTC, datetime, timedelta

import pytest
from servers import IN_CI, free_port
from web_helpers import AXE, CHROMIUM_FLAGS, LiveServer, chromium, request

from dispatch.errors import ConfigError
from dispatch.samples import sample_data, sample_recipient
from dispatch.web import create_app

NOW = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)
SHY = "\u00ad"
COUNTRY = {"fi": "FI", "sv": "SE", "nb": "NO", "en": "FI"}
LANGUAGES = tuple(COUNTRY)
PHONE_WIDTHS = (320, 360, 390)

#: What each language must say on the unsubscribe page of a marketing email: the heading names
#: the channel, the button names the action, the lead says what confirming *will* do.
UNSUBSCRIBE_EMAIL = {
    "fi": ("Sähköpostimarkkinoinnin kieltäminen", "Kiellä sähköpostimarkkinointi", "Kun vahvistat kiellon"),
    "sv": ("Avregistrera dig från marknadsföring via e-post", "Avregistrera mig", "När du bekräftar"),
    "nb": ("Meld deg av markedsføring på e-post", "Meld meg av", "Når du bekrefter"),
    "en": ("Unsubscribe from marketing emails", "Unsubscribe", "When you confirm"),
}
UNSUBSCRIBE_SMS = {
    "fi": ("Tekstiviestimarkkinoinnin kieltäminen", "Kiellä tekstiviestimarkkinointi"),
    "sv": ("Avregistrera dig från marknadsföring via sms", "Avregistrera mig"),
    "nb": ("Meld deg av markedsføring på SMS", "Meld meg av"),
    "en": ("Unsubscribe from marketing texts", "Unsubscribe"),
}
#: The done page: its heading, and what it lists as stopped / continuing / always coming.
DONE_EMAIL = {
    "fi": ("Olet kieltänyt sähköpostimarkkinoinnin", "Markkinointi sähköpostilla", "Markkinointi tekstiviestillä"),
    "sv": ("Du är avregistrerad från marknadsföring via e-post", "Marknadsföring via e-post", "Marknadsföring via sms"),
    "nb": ("Du er meldt av markedsføring på e-post", "Markedsføring på e-post", "Markedsføring på SMS"),
    "en": ("You are unsubscribed from marketing emails", "Marketing by email", "Marketing by text message"),
}
STATUTORY = {
    "fi": ("Lakisääteiset tiedotteet sopimuksestasi", "Lähetämme ne sähköpostilla."),
    "sv": ("Information som vi enligt lag måste ge dig om ditt avtal", "Vi skickar den via e-post."),
    "nb": ("Informasjon vi etter loven må gi deg om avtalen din", "Vi sender den på e-post."),
    "en": ("Information the law requires us to give you about your contract", "We send it by email."),
}
ALREADY = {
    "fi": "Tämä oli tehty jo aiemmin",
    "sv": "Det här var redan gjort",
    "nb": "Dette var allerede gjort",
    "en": "This was already done",
}
PHONE_ENDING = {
    "fi": "numero, jonka lopussa on {}",
    "sv": "nummer som slutar på {}",
    "nb": "nummer som slutter på {}",
    "en": "number ending in {}",
}
NO_CHANGES = {
    "fi": "Et muuttanut valintojasi",
    "sv": "Du ändrade inga val",
    "nb": "Du endret ingen valg",
    "en": "You did not change any choices",
}
CODE_ERROR = {
    "fi": "Tarkista koodi kirjeestäsi",
    "sv": "Kontrollera koden i ditt brev",
    "nb": "Sjekk koden i brevet ditt",
    "en": "Check the code on your letter",
}


# -- helpers -----------------------------------------------------------------------------


#: These tests open many pages from one address: the per-client limit (a guard against guessing) is lifted.
NO_RATE_LIMIT = {"rate_limit": "100000/minute"}


@pytest.fixture
def site(make_dispatcher):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    d = make_dispatcher({"links": {"base_url": base}, "web": NO_RATE_LIMIT})
    server = LiveServer(create_app(d), port).start()
    yield d, base
    server.stop()


_SENT = iter(range(10_000, 99_999))


def send(d, message_type="marketing", language="fi", *, channel=None, **extra):
    """A message to a new recipient (one each: no frequency rule holds the next back)."""
    country = COUNTRY[language]
    number = next(_SENT)
    person = {**sample_recipient(language, country), "language": language, "id": f"C-{number}"}
    person["email"] = f"c{number}@example.fi"
    person |= extra
    if channel is not None:
        person["preferred_channels"] = {message_type: channel, "default": channel}
    receipt = d.dispatch(message_type, person, sample_data(message_type, country), now=NOW)
    assert receipt.status == "queued", receipt
    return person, receipt


def text_of(page: str) -> str:
    """The visible text of a page's body, tags dropped, soft hyphens removed, whitespace as single spaces."""
    body = page.split("<body>", 1)[1]
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    body = re.sub(r"<[^>]+>", " ", body)
    return re.sub(r"\s+", " ", html.unescape(body)).replace(SHY, "").strip()


def assert_no_missing_spaces(page: str) -> None:
    """No sentence runs into the next ("sähköpostilla.Sopimukseesi"): a stop followed by a capital."""
    body = page.split("<body>", 1)[1].replace(SHY, "")
    body = re.sub(
        r"</?(p|h\d|li|ul|div|header|main|footer|nav|form|fieldset|legend|label|button|input)\b[^>]*>", " ", body
    )
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", body)))  # inline tags run on: <b>a</b>.B
    glued = re.findall(r"\w{2,}[.!?:][A-ZÅÄÖÆØ]\w+", text)
    assert glued == [], glued


def element(page: str, element_id: str) -> str:
    """The text of the element with ``id`` (its first closing tag of the same name ends it)."""
    match = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>(.*?)</\1>', page, flags=re.S)
    assert match, f"no #{element_id}"
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", match.group(2)))).replace(SHY, "").strip()


def csrf_of(url: str) -> tuple[str, str]:
    status, page, headers = request(url)
    assert status == 200
    return headers["set-cookie"].split(";")[0], re.search(r'name="csrf" value="([^"]+)"', page).group(1)


# -- rendered pages, per language -----------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_unsubscribe_page_says_what_confirming_will_do_and_names_the_channel(site, language):
    d, _ = site
    _, receipt = send(d, language=language)
    status, page, _ = request(d.links.unsubscribe_url(receipt.message_id))
    assert status == 200 and f'<html lang="{language}">' in page
    heading, button, lead = UNSUBSCRIBE_EMAIL[language]
    assert element(page, "opt-out") == heading
    assert element(page, "confirm") == button
    assert element(page, "what").startswith(lead)  # what confirming will do, not what has been done
    assert STATUTORY[language][0].lower() in element(page, "statutory").lower()
    assert f"<title>{heading} – " in page.replace(SHY, "")
    assert_no_missing_spaces(page)
    # A language switcher, and the button keeps the language chosen.
    other = "en" if language != "en" else "fi"
    assert f'href="/u/{d.links.unsubscribe_token(receipt.message_id)}?lang={other}"' in page
    status, switched, _ = request(f"{d.links.unsubscribe_url(receipt.message_id)}?lang={other}")
    assert element(switched, "opt-out") == UNSUBSCRIBE_EMAIL[other][0]
    assert f'action="/u/{d.links.unsubscribe_token(receipt.message_id)}?lang={other}"' in switched


SCOPES = ("marketing_email", "marketing_sms", "marketing_letter", "marketing_phone", "marketing_all")
SCOPES += ("newsletter", "survey", "other")
CHANNEL_WORD = {  # each channel's word, as the heading of its opt-out must carry it
    "fi": {"email": "sähköposti", "sms": "tekstiviesti", "letter": "kirje", "phone": "puhelin", "all": "markkinoinnin"},
    "sv": {"email": "e-post", "sms": "sms", "letter": "brev", "phone": "telefon", "all": "all marknadsföring"},
    "nb": {"email": "e-post", "sms": "sms", "letter": "brev", "phone": "telefon", "all": "all markedsføring"},
    "en": {"email": "email", "sms": "text", "letter": "letter", "phone": "call", "all": "all marketing"},
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_opt_out_has_its_words_in_every_language(dispatcher, language):
    """Every scope (marketing per channel, all marketing, newsletter, surveys, another purpose) renders."""
    from dispatch.web.pages import Pages

    pages = Pages(dispatcher)
    summary = {"stopped": ["marketing:letter"], "continuing": ["survey"], "notice_channel": "letter"}
    headings = set()
    for scope in SCOPES:
        purpose, _, channel = scope.partition("_")
        context = {"purpose": purpose, "channel": channel or "all", "scope": scope, "action": "/u/x"}
        context |= {"switch_url": "/u/x", "preferences_url": "/preferences/y"}
        page = pages.render("_web/unsubscribe.html", language, COUNTRY[language], **context).body.decode()
        done = pages.render(
            "_web/unsubscribed.html", language, COUNTRY[language], already=False, summary=summary, **context
        ).body.decode()
        heading, button = element(page, "opt-out"), element(page, "confirm")
        assert heading and button and element(done, "done") and element(done, "stopped")
        assert_no_missing_spaces(page)
        assert_no_missing_spaces(done)
        if purpose == "marketing":
            assert CHANNEL_WORD[language][channel].lower() in heading.lower(), (scope, heading)
        headings.add(heading)
    assert len(headings) == len(SCOPES)  # no two opt-outs read the same


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_sms_unsubscribe_names_sms(site, language):
    d, _ = site
    _, receipt = send(d, language=language, channel="sms")
    assert d.store.message(receipt.message_id, content=False)["channel"] == "sms"
    status, page, _ = request(d.links.unsubscribe_url(receipt.message_id))
    assert status == 200
    assert (element(page, "opt-out"), element(page, "confirm")) == UNSUBSCRIBE_SMS[language]
    assert_no_missing_spaces(page)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_done_page_says_what_stops_what_continues_and_what_always_comes(site, language):
    d, _ = site
    person, receipt = send(d, language=language)
    url = d.links.unsubscribe_url(receipt.message_id)
    status, page, _ = request(url, {})
    assert status == 200
    done, stopped, continuing = DONE_EMAIL[language]
    assert element(page, "done") == done
    assert element(page, "stopped") == stopped  # only email marketing stops ...
    still = element(page, "continuing")
    assert continuing in still and stopped not in still  # ... SMS, letter and calls may go on
    always = element(page, "always")
    assert always.startswith(STATUTORY[language][0]) and always.endswith(STATUTORY[language][1])
    assert re.search(r'href="/preferences/[^"?]+\?lang=' + language + '#stop-all" id="preferences-link"', page)
    assert ALREADY[language] not in page
    assert_no_missing_spaces(page)
    assert [(e["purpose"], e["channel"], e["granted"]) for e in d.consents.history(person["id"])] == [
        ("marketing", "email", False)
    ]
    # Opening the link again (or confirming twice) says it is already done, and records nothing more.
    for again in (request(url), request(url, {})):
        assert again[0] == 200 and element(again[1], "done") == done and ALREADY[language] in again[1]
        assert 'id="confirm"' not in again[1]
    assert len(d.consents.history(person["id"])) == 1


def test_the_done_page_lists_only_channels_we_can_reach(site):
    d, _ = site
    _, receipt = send(d, language="en", phone=None)
    status, page, _ = request(d.links.unsubscribe_url(receipt.message_id), {})
    assert status == 200 and element(page, "continuing") == "Marketing by letter Our newsletter Customer surveys"


def test_the_done_page_follows_the_customers_other_choices(site):
    d, base = site
    person, receipt = send(d, language="en", newsletter=True)
    _, receipt2 = send(d, "survey", language="en", id=person["id"], email=person["email"])
    url = d.links.preferences_url(receipt.message_id)
    cookie, csrf = csrf_of(url)
    form = {"csrf": csrf, "notice_channel": "letter", "marketing": ["sms"], "survey": "on"}
    assert request(url, form, {"Cookie": cookie, "Origin": base})[0] == 303
    status, page, _ = request(d.links.unsubscribe_url(receipt.message_id), {})
    assert status == 200 and element(page, "stopped") == "Marketing by email"
    assert element(page, "continuing") == "Marketing by text message Customer surveys"  # newsletter untick: gone
    assert element(page, "always").endswith("We send it by letter.")
    # With everything else off, it says that nothing but the statutory notices comes.
    cookie, csrf = csrf_of(url)
    form = {"csrf": csrf, "marketing_ban": "on", "survey": "on"}
    assert request(url, form, {"Cookie": cookie, "Origin": base})[0] == 303
    status, page, _ = request(d.links.unsubscribe_url(receipt2.message_id), {})
    assert element(page, "done") == "You will no longer get customer surveys"
    assert element(page, "stopped") == "Customer surveys"
    assert element(page, "continuing") == "We send you no marketing, no newsletter and no customer surveys."


@pytest.mark.parametrize("language", LANGUAGES)
def test_newsletter_and_survey_pages_use_their_own_words(site, language):
    d, _ = site
    pages = {}
    for message_type in ("newsletter", "survey"):
        _, receipt = send(d, message_type, language=language, newsletter=True)
        status, page, _ = request(d.links.unsubscribe_url(receipt.message_id))
        assert status == 200
        assert_no_missing_spaces(page)
        pages[message_type] = page
    if language == "fi":  # an opt-out from surveys or marketing is no "subscription" (tilaus)
        assert "tilau" not in text_of(pages["survey"]).lower()
        assert "tilau" in element(pages["newsletter"], "opt-out").lower()
    words = {"fi": "asiakaskyse", "sv": "kundenkät", "nb": "kundeundersøkelse", "en": "customer surveys"}
    assert words[language] in element(pages["survey"], "opt-out").lower()


def test_fi_marketing_pages_never_call_an_opt_out_a_subscription(site):
    d, _ = site
    _, receipt = send(d, language="fi")
    url = d.links.unsubscribe_url(receipt.message_id)
    for page in (request(url)[1], request(url, {})[1]):
        assert "tilau" not in text_of(page).lower() and "Peru tilaus" not in page and "Tilaus peruttu" not in page


def test_swedish_pages_say_kundservice_as_the_emails_do(site):
    d, base = site
    _, receipt = send(d, "price_change", language="sv", marketing_blocked=True)
    seen = [
        request(d.links.preferences_url(receipt.message_id))[1],
        request(f"{base}/no-such-page", headers={"Accept-Language": "sv"})[1],
    ]
    assert all("kundtjänst" not in page for page in seen)
    assert all("kundservice" in page for page in seen)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_preference_page_reads_right(site, language):
    d, _ = site
    _, receipt = send(d, language=language)
    status, page, _ = request(d.links.preferences_url(receipt.message_id))
    assert status == 200
    assert_no_missing_spaces(page)
    # The masked phone: never in brackets, one unbreakable line, and heard as "ending in 67".
    label = re.search(r'<label for="notice-sms">(.*?)</label>', page, flags=re.S).group(1)
    assert "(" not in label and ")" not in label
    ending = re.sub(r"\D", "", sample_recipient(language, COUNTRY[language])["phone"])[-2:]
    assert re.search(rf'<span aria-hidden="true">\+\d+ •••• ••{ending}</span>', label)
    assert f'<span class="sr-only">, {PHONE_ENDING[language].format(ending)}</span>' in label
    # The footer is outside <main> and its phone is a tel: link.
    assert page.index("</main>") < page.index("<footer>")
    assert re.search(r'<a href="tel:\+\d{6,}" id="footer-phone">\+[\d ]+</a>', page)
    # A one-click "stop all marketing" beside the form.
    assert 'name="stop_marketing" value="on"' in page


def test_the_wording_fixes(site):
    d, _ = site
    _, receipt = send(d, language="fi")
    url = d.links.preferences_url(receipt.message_id)
    words = {
        "fi": ["valinnoistasi riippumatta"],
        "sv": ["efter att jag varit i kontakt med er kundservice"],
        "nb": ["vi får sende dem", "uansett hva du velger"],
        "en": ["How we tell you about price and contract changes"],
    }
    for language, expected in words.items():
        page = request(f"{url}?lang={language}")[1]
        for phrase in expected:
            assert phrase in page, (language, phrase)
    assert "valintojesi estämättä" not in request(f"{url}?lang=fi")[1]
    _, page, _ = request(f"{url}?lang=en&saved=1")
    assert element(page, "saved") == "Your choices have been saved. They apply from now on."
    assert "<title>Saved – Communication preferences" in page
    _, page, _ = request(f"{url}?lang=fi&saved=0")
    assert element(page, "saved").startswith(NO_CHANGES["fi"]) and "<title>Ei muutoksia – " in page


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_locked_ban_disables_the_channels_and_saving_says_no_changes(site, language):
    d, base = site
    person, receipt = send(d, "price_change", language=language, marketing_blocked=True)
    url = d.links.preferences_url(receipt.message_id)
    status, page, headers = request(url)
    for channel in ("email", "sms", "letter", "phone"):
        box = re.search(rf'<input type="checkbox" name="marketing" value="{channel}"[^>]*>', page).group(0)
        assert " disabled" in box and " checked" not in box, box
    assert 'id="stop-marketing"' not in page  # nothing to stop: the ban is on
    cookie, csrf = headers["set-cookie"].split(";")[0], re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    form = {"csrf": csrf, "notice_channel": "email", "marketing": ["email", "sms"], "survey": "on", "newsletter": "on"}
    status, _, headers = request(url, form, {"Cookie": cookie, "Origin": base})
    assert status == 303 and headers["location"].endswith("&saved=0")
    assert d.consents.history(person["id"]) == []
    page = request(base + headers["location"])[1]
    assert element(page, "saved").startswith(NO_CHANGES[language])


def test_saving_says_saved_only_when_something_changed(site):
    d, base = site
    person, receipt = send(d, language="en")
    url = d.links.preferences_url(receipt.message_id)
    cookie, csrf = csrf_of(url)
    same = {"csrf": csrf, "notice_channel": "email", "marketing": ["email", "sms", "letter", "phone"]}
    same |= {"survey": "on", "newsletter": "on"}
    status, _, headers = request(url, same, {"Cookie": cookie, "Origin": base})
    assert status == 303 and headers["location"].endswith("&saved=0") and d.consents.history(person["id"]) == []
    status, _, headers = request(url, {**same, "survey": []}, {"Cookie": cookie, "Origin": base})
    assert status == 303 and headers["location"].endswith("&saved=1")
    assert [(e["purpose"], e["granted"]) for e in d.consents.history(person["id"])] == [("survey", False)]


def test_stop_all_marketing_is_one_click_and_touches_nothing_else(site):
    d, base = site
    person, receipt = send(d, language="sv")
    url = d.links.preferences_url(receipt.message_id)
    cookie, csrf = csrf_of(url)
    headers = {"Cookie": cookie, "Origin": base}
    assert request(url, {"csrf": csrf, "stop_marketing": "yes"}, headers)[0] == 400  # only the button's value
    assert request(url, {"csrf": csrf, "stop_marketing": "on", "survey": "on"}, headers)[0] == 400  # nothing more
    assert d.consents.history(person["id"]) == []
    status, _, location = request(url, {"csrf": csrf, "stop_marketing": "on"}, headers)
    assert status == 303 and location["location"].endswith("?lang=sv&saved=1")
    entries = [(e["purpose"], e["channel"], e["granted"], e["source"]) for e in d.consents.history(person["id"])]
    assert entries == [("marketing", "all", False, "preference_centre")]
    assert d.consents.history(person["id"])[0]["wording_version"].startswith("preferences-sv-")
    page = request(base + location["location"])[1]
    assert 'id="marketing-ban" aria-describedby="ban-help" checked' in page and 'id="stop-marketing"' not in page
    status, _, location = request(url, {"csrf": csrf, "stop_marketing": "on"}, headers)  # again: nothing new
    assert location["location"].endswith("&saved=0") and len(d.consents.history(person["id"])) == 1
    assert d.decide("marketing", person, sample_data("marketing", "SE"), now=datetime.now(UTC)).allowed is False


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_failed_submit_links_back_to_the_form(site, language):
    d, base = site
    _, receipt = send(d, language=language)
    url = d.links.preferences_url(receipt.message_id)
    token = url.rsplit("/", 1)[1]
    cookie, csrf = csrf_of(url)
    for fields, headers, status in (
        ({"csrf": "forged", "survey": "on"}, {"Cookie": cookie, "Origin": base}, 403),
        ({"csrf": csrf, "marketing": "fax"}, {"Cookie": cookie, "Origin": base}, 400),
    ):
        got, page, _ = request(url, fields, headers)
        assert got == status and f'<a href="/preferences/{token}?lang={language}" id="back">' in page
        assert "reload" not in page.lower() and "lataa sivu" not in page.lower()
        assert_no_missing_spaces(page)
    assert "Lomake on vanhentunut" in request(f"{url}?lang=fi", {"csrf": "x"}, {"Cookie": cookie, "Origin": base})[1]


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_short_code_is_forgiving_and_its_error_is_its_own(site, language):
    d, base = site
    _, receipt = send(d, language=language)
    code = d.short_codes.issue(receipt.message_id)
    status, page, _ = request(f"{base}/p?lang={language}")
    assert status == 200 and f'<html lang="{language}">' in page and 'id="code"' in page
    typed = urllib.parse.quote(f" {code[:4].lower()} {code[4:]} ")
    status, _, headers = request(f"{base}/p?lang={language}&code={typed}")
    assert status == 303 and headers["location"].startswith("/preferences/")
    assert headers["location"].endswith(f"?lang={language}")
    status, page, _ = request(f"{base}/p?lang={language}&code=ABC")
    assert status == 404 and CODE_ERROR[language] in page and 'aria-invalid="true"' in page
    assert 'value="ABC"' in page  # shown again to correct
    assert_no_missing_spaces(page)


def test_error_pages_take_the_brand_from_the_host_never_from_the_language(make_dispatcher):
    port = free_port()
    d = make_dispatcher(
        {
            "links": {"base_url": f"http://127.0.0.1:{port}"},
            "web": {"brand_hosts": {"energi.example.se": "SE", "Energi.Example.NO.": "NO"}, **NO_RATE_LIMIT},
        }
    )
    server = LiveServer(create_app(d), port).start()
    try:
        base = server.base

        def error(host: str | None, language: str, path: str = "/u/damaged") -> str:
            headers = {"Accept-Language": language}
            if host:
                headers["Host"] = host
            status, page, _ = request(base + path, headers=headers)
            assert status == 404
            return page

        fi_company = d.company("FI", "sv")["name"]
        se_company, se_phone = d.company("SE", "sv")["name"], d.company("SE", "sv")["phone"]
        # A Finland-Swedish reader on the Finnish host: Swedish words, the Finnish company.
        page = error(None, "sv-FI,sv;q=0.9")
        assert 'lang="sv"' in page and fi_company in page and se_company not in page and se_phone not in page
        # The Swedish host: the Swedish company whatever the language.
        for language in ("fi", "en", "sv"):
            page = error("energi.example.se", language)
            assert se_company in page and se_phone in page and fi_company not in page
        assert d.company("NO", "en")["name"] in error("energi.example.no:443", "en")  # port and case ignored
        assert se_company in error("energi.example.se", "en", "/p/WRONGCODE2")  # the short-code page too
    finally:
        server.stop()
    # A host not listed: the host of [links] base_url, if listed, decides.
    by_base = make_dispatcher(
        {"links": {"base_url": "https://energi.example.se/d"}, "web": {"brand_hosts": {"energi.example.se": "SE"}}}
    )
    server = LiveServer(create_app(by_base)).start()
    try:
        page = request(f"{server.base}/nothing", headers={"Accept-Language": "fi", "Host": "proxy.internal"})[1]
        assert 'lang="fi"' in page and by_base.company("SE", "fi")["name"] in page
    finally:
        server.stop()
    default_no = make_dispatcher({"web": {"brand_country": "NO"}})
    server = LiveServer(create_app(default_no)).start()
    try:
        page = request(f"{server.base}/nothing", headers={"Accept-Language": "fi"})[1]
        assert 'lang="fi"' in page and default_no.company("NO", "fi")["name"] in page
    finally:
        server.stop()


def test_too_many_tries_has_its_own_words_and_the_hosts_brand(make_dispatcher):
    port = free_port()
    web = {"rate_limit": "2/minute", "brand_hosts": {"energi.example.no": "NO"}}
    d = make_dispatcher({"links": {"base_url": f"http://127.0.0.1:{port}"}, "web": web})
    server = LiveServer(create_app(d), port).start()
    try:
        headers = {"Accept-Language": "nb", "Host": "energi.example.no"}
        assert [request(f"{server.base}/p?code=GUESS{n}", headers=headers)[0] for n in range(2)] == [404, 404]
        status, page, _ = request(f"{server.base}/p?code=GUESS3", headers=headers)
        assert status == 429 and element(page, "error") == "For mange forsøk"
        assert d.company("NO", "nb")["name"] in page and "Noe gikk galt" not in page
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("web", "error"),
    [
        ({"brand_country": "DK"}, "web.brand_country"),
        ({"brand_hosts": {"https://energi.example.se": "SE"}}, "web.brand_hosts.https://energi.example.se"),
        ({"brand_hosts": {"energi.example.se/path": "SE"}}, "host name"),
        ({"brand_hosts": {"energi.example.se": "se"}}, "FI, SE, NO"),
        ({"brand_hosts": {"a.example": "SE", "A.example": "NO"}}, "twice"),
    ],
)
def test_brand_settings_are_checked(make_dispatcher, web, error):
    with pytest.raises(ConfigError, match=re.escape(error)):
        make_dispatcher({"web": web})


# -- in a browser: phones, accessibility, the keyboard --------------------------------------


def phone(width: int):
    """A headless Chromium emulating a phone ``width`` CSS pixels wide (chromedriver's mobileEmulation)."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        message = "chromium and chromium-driver are not installed: run scripts/test (it installs them)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    metrics = {"width": width, "height": 740, "pixelRatio": 2.0, "mobile": True, "touch": True}
    options.add_experimental_option("mobileEmulation", {"deviceMetrics": metrics})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    # about:blank has no viewport meta (a 980 px layout): the screen tells whether the emulation took.
    assert driver.execute_script("return screen.width") == width
    return driver


def every_page(d, base) -> list[tuple[str, str]]:
    """(name, url) of every customer page in every language, in the states a customer sees them."""
    urls = []
    for language in LANGUAGES:
        _, open_one = send(d, language=language)
        _, done_one = send(d, language=language)
        _, locked = send(d, "price_change", language=language, marketing_blocked=True)
        assert request(d.links.unsubscribe_url(done_one.message_id), {"List-Unsubscribe": "One-Click"})[0] == 200
        prefs = d.links.preferences_url(open_one.message_id)
        expired = d.links.preferences_token(open_one.message_id, datetime.now(UTC) - timedelta(days=91))
        urls += [
            (f"{language} preferences", f"{prefs}?lang={language}"),
            (f"{language} preferences saved", f"{prefs}?lang={language}&saved=1"),
            (f"{language} preferences locked", f"{d.links.preferences_url(locked.message_id)}?lang={language}"),
            (f"{language} unsubscribe", d.links.unsubscribe_url(open_one.message_id)),
            (f"{language} unsubscribed", d.links.unsubscribe_url(done_one.message_id)),
            (f"{language} expired", f"{base}/preferences/{expired}"),
            (f"{language} code", f"{base}/p?lang={language}"),
            (f"{language} code error", f"{base}/p?lang={language}&code=NOTACODE"),
        ]
    return urls


LAYOUT = """
const root = document.documentElement;
const out = {lang: root.lang, inner: window.innerWidth, scroll: root.scrollWidth, client: root.clientWidth,
             wide: [], masked: [], small: []};
for (const el of document.body.querySelectorAll('*')) {
  const r = el.getBoundingClientRect();
  if (r.width && (r.right > window.innerWidth + 0.5 || r.left < -0.5) && !el.classList.contains('sr-only'))
    out.wide.push(el.tagName + '#' + el.id + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
}
for (const el of document.querySelectorAll('.masked [aria-hidden]')) out.masked.push(el.getClientRects().length);
for (const el of document.querySelectorAll('nav a')) {
  const r = el.getBoundingClientRect();
  if (r.height < 24) out.small.push(el.textContent + ' ' + r.height);
}
return out;
"""


@pytest.mark.parametrize("width", PHONE_WIDTHS)
def test_no_page_scrolls_sideways_on_a_phone(site, width):
    d, base = site
    pages = every_page(d, base)
    browser = phone(width)
    try:
        for name, url in pages:
            browser.get(url)
            got = browser.execute_script(LAYOUT)
            assert got["lang"] == name.split()[0], name
            assert got["inner"] == width, name
            assert got["scroll"] <= got["client"] and got["wide"] == [], (name, width, got)
            assert all(rects == 1 for rects in got["masked"]), (name, "a masked address wraps")
            assert got["small"] == [], (name, "language links under 24 px tall")
    finally:
        browser.quit()


def test_every_page_is_axe_clean_on_a_phone_and_on_a_desktop(site):
    if not AXE.is_file():
        message = "axe-core is not installed: npm install --prefix tests/node (scripts/test does it)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    d, base = site
    pages = every_page(d, base)
    axe = AXE.read_text(encoding="utf-8")
    for browser in (phone(360), chromium()):
        try:
            for name, url in pages:
                browser.get(url)
                browser.execute_script(axe)
                violations = browser.execute_async_script(
                    "const done = arguments[arguments.length - 1];"
                    "axe.run(document, {resultTypes: ['violations']})"
                    ".then(r => done(r.violations.map(v => [v.id, v.impact, v.nodes.map(n => n.target.join(' '))])))"
                    ".catch(e => done([['axe failed: ' + e, 'critical', []]]));"
                )
                assert violations == [], (name, violations)
        finally:
            browser.quit()


def keyboard(browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    def press(*keys):
        chain = ActionChains(browser)
        for key in keys:
            chain.send_keys(key)
        chain.perform()
        return browser.execute_script("return document.activeElement.id || document.activeElement.tagName")

    def tab_to(element_id: str, limit: int = 30) -> None:
        for _ in range(limit):
            if press(Keys.TAB) == element_id:
                return
        raise AssertionError(f"Tab never reached #{element_id}")

    return press, tab_to, Keys


def wait_for(browser, css: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, 20).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))


def test_unsubscribe_with_the_keyboard_alone(site):
    d, _ = site
    person, receipt = send(d, language="nb")
    browser = phone(360)
    try:
        press, tab_to, keys = keyboard(browser)
        browser.get(d.links.unsubscribe_url(receipt.message_id))
        tab_to("confirm")
        press(keys.ENTER)
        assert wait_for(browser, "h1#done").text == "Du er meldt av markedsføring på e-post"
        assert [(e["channel"], e["granted"]) for e in d.consents.history(person["id"])] == [("email", False)]
        tab_to("preferences-link")
        press(keys.ENTER)
        wait_for(browser, "form#preferences")
        assert browser.execute_script("return location.hash") == "#stop-all"
        assert not browser.find_element("id", "marketing-email").is_selected()  # the page shows what was done
    finally:
        browser.quit()


def test_preferences_and_stop_all_with_the_keyboard_alone(site):
    d, _ = site
    person, receipt = send(d, language="sv")
    browser = phone(390)
    try:
        press, tab_to, keys = keyboard(browser)
        browser.get(d.links.preferences_url(receipt.message_id))
        tab_to("survey")
        press(keys.SPACE)
        tab_to("save")
        press(keys.ENTER)
        saved = wait_for(browser, "#saved")
        assert browser.title.startswith("Sparat – ")  # the outcome is in the title a screen reader reads ...
        assert browser.execute_script("return document.activeElement.id") == "saved"  # ... and focused
        assert saved.text.startswith("Dina val har sparats")
        tab_to("save")
        press(keys.ENTER)
        unchanged = wait_for(browser, "#saved[data-unchanged]")
        assert unchanged.text.startswith("Du ändrade inga val") and browser.title.startswith("Inga ändringar – ")
        tab_to("stop-marketing")
        press(keys.ENTER)
        wait_for(browser, "#saved:not([data-unchanged])")
        assert browser.find_element("id", "marketing-ban").is_selected()
        assert browser.find_elements("id", "stop-marketing") == []
    finally:
        browser.quit()
    assert [(e["purpose"], e["channel"], e["granted"]) for e in d.consents.history(person["id"])] == [
        ("survey", "all", False),
        ("marketing", "all", False),
    ]


def test_the_short_code_page_with_the_keyboard_alone(site):
    d, base = site
    _, receipt = send(d, language="fi")
    code = d.short_codes.issue(receipt.message_id)
    browser = phone(320)
    try:
        press, tab_to, keys = keyboard(browser)
        browser.get(f"{base}/p?lang=fi")
        tab_to("code")
        press(*"wrong code")
        press(keys.ENTER)
        wait_for(browser, "#error")
        assert CODE_ERROR["fi"] in browser.find_element("id", "error").text
        assert browser.execute_script("return document.activeElement.id") == "code"  # straight back to the field
        assert browser.find_element("id", "code").get_attribute("value") == "wrong code"  # kept to correct
        press(keys.END, *[keys.BACKSPACE] * len("wrong code"), *f"{code[:5].lower()} {code[5:].lower()}", keys.ENTER)
        wait_for(browser, "form#preferences")
        assert browser.find_element("tag name", "h1").text == "Viestintäasetukset"
    finally:
        browser.quit()
