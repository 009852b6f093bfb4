"""``dispatch preview`` (issue 9 §15): every language side by side, as the customer sees it."""

from __future__ import annotations

import base64
import json
import os
import re
import struct
import subprocess
import sys
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from web_helpers import LiveServer, chromium, request

from dispatch import Dispatcher
from dispatch.cli import cli
from dispatch.models import LANGUAGES
from dispatch.preview_page import HOME_COUNTRY
from dispatch.samples import sample_data, sample_recipient
from dispatch.segments import count_segments
from dispatch.web import create_app

BIN = Path(sys.executable).parent / "dispatch"


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


class Cells(HTMLParser):
    """The page's cells by (channel, language): their text, email srcdoc, images, subject and segment count."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.cells: dict[tuple[str, str], dict] = {}
        self._cell: dict | None = None
        self._depth = 0
        self._capture: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section" and "data-channel" in a:
            self._cell = {"text": "", "srcdoc": [], "images": [], "subject": "", "segments": ""}
            self.cells[(a["data-channel"], a["data-language"])] = self._cell
            self._depth = 0
        if self._cell is None:
            return
        if tag == "section":
            self._depth += 1
        if tag == "iframe":
            self._cell["srcdoc"].append(a.get("srcdoc", ""))
            self._cell["sandbox"] = a.get("sandbox")
        if tag == "img":
            self._cell["images"].append(a["src"])
        classes = (a.get("class") or "").split()
        self._capture = "subject" if "subject" in classes else "segments" if "segments" in classes else None

    def handle_endtag(self, tag):
        if self._cell is not None and tag == "section":
            self._depth -= 1
            if self._depth == 0:
                self._cell = None
        self._capture = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data
            if self._capture:
                self._cell[self._capture] += data


def parse(page: str) -> dict[tuple[str, str], dict]:
    parser = Cells()
    parser.feed(page)
    return parser.cells


def png_size(data_uri: str) -> tuple[int, int]:
    """Width and height of a PNG data URI, after checking the signature and every chunk's CRC."""
    prefix = "data:image/png;base64,"
    assert data_uri.startswith(prefix)
    png = base64.b64decode(data_uri[len(prefix) :], validate=True)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, kinds, idat = 8, [], b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        kinds.append(kind)
        if kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and zlib.decompress(idat)
    return struct.unpack(">II", png[16:24])


def expected_prices(d, language: str, country: str, data: dict) -> list[str]:
    fmt = d.renderer.formatter(language, country)
    values = dict(d.validate_data("price_change", data).localized((language, "en")))
    return [fmt.price(element) for element in values["price_elements"]]


@pytest.fixture
def cli_dispatcher():
    """A dispatcher on the configuration the command line uses here (the embedded defaults)."""
    d = Dispatcher.from_config()
    yield d
    d.close()


def test_the_page_shows_every_language_as_the_customer_sees_it(cli_dispatcher):
    d = cli_dispatcher
    result = run("preview", "price_change", "--all-languages", "--out", "page.html")
    assert result.exit_code == 0, result.output
    page = Path("page.html").read_text(encoding="utf-8")
    for loads in ('src="http', "<link", "<script", "url("):  # self-contained, no JavaScript
        assert loads not in page
    cells = parse(page)
    assert {language for _, language in cells} == set(LANGUAGES)
    assert {channel for channel, _ in cells} == {"email", "sms", "letter"}
    for language in LANGUAGES:
        country = HOME_COUNTRY[language]
        person = sample_recipient(language, country)
        data = sample_data("price_change", country)
        email = d.preview("price_change", person, data, channel="email", language=language)
        sms = d.preview("price_change", person, data, channel="sms", language=language)["text"]
        cell = cells[("email", language)]
        assert cell["subject"].strip() == email["subject"].strip()
        assert cell["sandbox"] == ""  # the email's own HTML cannot run scripts or reach the page
        [srcdoc] = cell["srcdoc"]
        assert srcdoc == email["html"]
        prices = expected_prices(d, language, country, data)
        for price in prices:
            assert price in srcdoc and price in cells[("sms", language)]["text"]
            assert price in cells[("letter", language)]["text"]  # the letter's source under its images
        count = count_segments(sms)
        assert cells[("sms", language)]["segments"].strip() == f"{count.segments} segments"
        assert f"· {count.encoding} ·" in cells[("sms", language)]["text"]
        [image] = cells[("letter", language)]["images"]
        width, height = png_size(image)
        assert abs(height / width - 297 / 210) < 0.01 and width > 500


def test_a_data_file_and_a_country_are_used(tmp_path):
    data = sample_data("price_change", "FI")
    data["price_elements"][0]["new"] = "12.34"
    (tmp_path / "prices.json").write_text(json.dumps(data), encoding="utf-8")
    result = run(
        "preview", "price_change", "--lang", "sv", "--lang", "fi", "--channel", "sms",
        "--country", "FI", "--data", "prices.json", "--out", "page.html",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    page = Path("page.html").read_text(encoding="utf-8")
    cells = parse(page)
    assert set(cells) == {("sms", "sv"), ("sms", "fi")}
    assert "12,34 c/kWh" in cells[("sms", "sv")]["text"] and "12,34 c/kWh" in cells[("sms", "fi")]["text"]
    assert "8,90 c/kWh" not in page  # not the sample's price
    assert "data from prices.json" in page and "sv · FI · sv_FI" in page


def test_a_recipient_file_replaces_the_sample_customer(tmp_path):
    person = sample_recipient("fi", "FI")
    person["address"] = {**person["address"], "name": "Liisa Virtanen"}
    (tmp_path / "person.json").write_text(json.dumps(person), encoding="utf-8")
    args = ["preview", "price_change", "--lang", "fi", "--lang", "sv", "--channel", "email", "--channel", "letter"]
    result = run(*args, "--recipient", "person.json", "--out", "page.html")
    assert result.exit_code == 0, result.output
    cells = parse(Path("page.html").read_text(encoding="utf-8"))
    for language in ("fi", "sv"):
        [srcdoc] = cells[("email", language)]["srcdoc"]
        assert "Liisa Virtanen" in srcdoc and "Meikäläinen" not in srcdoc
    assert run(*args, "--recipient", "person.json", "--country", "SE").output.startswith("error: give --country")


def test_without_out_the_parts_are_printed(cli_dispatcher):
    result = run("preview", "price_change", "--lang", "sv", "--channel", "sms", "--country", "SE")
    assert result.exit_code == 0 and "89,50 öre/kWh" in result.output
    text = cli_dispatcher.preview(
        "price_change", sample_recipient("sv", "SE"), sample_data("price_change", "SE"), channel="sms"
    )["text"]
    count = count_segments(text)
    assert f"{len(text)} characters, {count.encoding}, {count.segments} segment(s)" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["preview", "nonsense"], "unknown message type 'nonsense'"),
        (["preview", "price_change", "--channel", "fax"], "unknown channel 'fax'"),
        (["preview", "price_change", "--channel", "phone"], "price_change is not sent by phone"),
        (["preview", "price_change", "--lang", "de"], "unknown language 'de'"),
        (["preview", "price_change", "--country", "DK"], "unknown country 'DK'"),
        (["preview", "price_change", "--data", "bad.json"], "data file 'bad.json' is not valid JSON"),
        (["preview", "price_change", "--data", "short.json"], "effective_on"),
        (["preview", "price_change", "--lang", "fi", "--all-languages"], "not both"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, args, message):
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    (tmp_path / "short.json").write_text(json.dumps({"reason": "x"}), encoding="utf-8")
    result = run(*args, "--out", "page.html")
    assert result.exit_code == 2, result.output
    assert message in result.output and result.output.count("\n") == 1
    assert "Traceback" not in result.output
    assert not Path("page.html").exists()


def test_open_without_a_browser_prints_where_the_page_is(tmp_path):
    env = {**os.environ, "BROWSER": "false", "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    done = subprocess.run(
        [str(BIN), "preview", "survey", "--lang", "fi", "--channel", "sms", "--open"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.split("preview written to", 1)[1].strip())
    try:
        assert path.is_file() and "survey" in path.read_text(encoding="utf-8")
    finally:
        path.unlink()


def test_dispatch_serve_shows_the_page_only_with_the_operator_token(make_dispatcher):
    d = make_dispatcher({"web": {"operator_token": "op-token-1"}})
    server = LiveServer(create_app(d)).start()
    try:
        url = f"{server.base}/preview/price_change?lang=fi&lang=nb&channel=email&channel=sms"
        status, page, headers = request(url)
        assert status == 401 and headers["www-authenticate"].startswith("Basic") and "Hinnat" not in page
        assert request(url, headers={"Authorization": "Bearer wrong"})[0] == 401
        status, page, headers = request(url, headers={"Authorization": "Bearer op-token-1"})
        assert status == 200 and "img-src data:" in headers["content-security-policy"]
        cells = parse(page)
        assert set(cells) == {("email", "fi"), ("sms", "fi"), ("email", "nb"), ("sms", "nb")}
        subject = d.preview("price_change", sample_recipient("fi", "FI"), sample_data("price_change"), channel="email")
        assert cells[("email", "fi")]["subject"].strip() == subject["subject"].strip()
        assert 'action="/dispatch/preview/price_change"' in page  # the form to choose languages and channels
        auth = {"Authorization": "Bearer op-token-1"}
        assert request(f"{server.base}/preview/nonsense", headers=auth)[0] == 404
        status, page, _ = request(f"{server.base}/preview/price_change?lang=xx", headers=auth)
        assert status == 400 and page == "error: unknown language 'xx' (known: fi, sv, nb, en)\n"
    finally:
        server.stop()


def test_without_an_operator_token_there_is_no_preview_page(make_dispatcher):
    server = LiveServer(create_app(make_dispatcher())).start()
    try:
        status, page, _ = request(f"{server.base}/preview/price_change", headers={"Authorization": "Bearer "})
        assert status == 404 and "Hinnat" not in page
    finally:
        server.stop()


def test_the_page_reads_well_in_a_browser(tmp_path, make_dispatcher):
    """Chromium shows each email, phone bubble and letter page; the screenshot stays in tmp_path."""
    from selenium.webdriver.common.by import By

    assert run("preview", "price_change", "--out", "page.html").exit_code == 0
    browser = chromium()
    try:
        browser.set_window_size(1800, 2400)
        browser.get((tmp_path / "page.html").as_uri())
        frames = browser.find_elements(By.CSS_SELECTOR, "section[data-channel=email] iframe")
        assert len(frames) == len(LANGUAGES)
        browser.switch_to.frame(frames[0])
        assert "Sähkösopimuksesi hinnat muuttuvat" in browser.find_element(By.TAG_NAME, "body").text
        browser.switch_to.default_content()
        for image in browser.find_elements(By.CSS_SELECTOR, "img.page"):
            assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image) > 500
        bubble = browser.find_element(By.CSS_SELECTOR, "section[data-language=sv] .bubble")
        assert bubble.is_displayed() and "89,50 öre/kWh" in bubble.text
        # The text part is folded away until asked for, without JavaScript.
        details = browser.find_element(By.CSS_SELECTOR, "section[data-channel=email][data-language=en] details")
        assert not details.find_element(By.TAG_NAME, "pre").is_displayed()
        details.find_element(By.TAG_NAME, "summary").click()
        assert details.find_element(By.TAG_NAME, "pre").is_displayed()
        browser.save_screenshot(str(tmp_path / "preview.png"))
        assert (tmp_path / "preview.png").stat().st_size > 10_000
        # Served by dispatch serve, under its Content-Security-Policy, the emails and letters still show.
        d = make_dispatcher({"web": {"operator_token": "op-token-1"}})
        server = LiveServer(create_app(d)).start()
        try:
            browser.get(
                f"http://op:op-token-1@127.0.0.1:{server.port}/preview/price_change?lang=sv&channel=email&channel=letter"
            )
            browser.switch_to.frame(browser.find_element(By.CSS_SELECTOR, "iframe"))
            assert "Priserna i ditt elavtal ändras" in browser.find_element(By.TAG_NAME, "body").text
            browser.switch_to.default_content()
            image = browser.find_element(By.CSS_SELECTOR, "img.page")
            assert browser.execute_script("return arguments[0].naturalWidth", image) > 500
        finally:
            server.stop()
    finally:
        browser.quit()


# -- variants that change the legal text (issue 20) ----------------------------------------------------


def test_variants_change_the_legal_text_without_hand_made_files(cli_dispatcher):
    def email_text(*variants: str, message_type: str = "price_change", lang: str = "en") -> str:
        args = ["preview", message_type, "--lang", lang, "--channel", "email"]
        for variant in variants:
            args += ["--variant", variant]
        result = run(*args)
        assert result.exit_code == 0, result.output
        return result.output

    household = email_text()
    assert "Prices include VAT at 25%." in household
    assert "Prices exclude VAT." in email_text("business")
    north = email_text("northern-norway")
    assert "exempt from VAT" in north and "VAT at 25%" not in north
    assert "Hello,\n" in email_text("no-name")
    assert "Ola Nordmann" in household and "Ola Nordmann" not in email_text("no-name")
    same = email_text(message_type="renewal_offer")
    other = email_text("other-product", message_type="renewal_offer")
    assert "/u/" not in same and "/u/" in other  # another product is marketing: it carries the opt-out
    fi_business = email_text("business", message_type="marketing", lang="fi")
    assert "peruuttamisoikeus" not in fi_business and "peruuttamisoikeus" in email_text(
        message_type="marketing", lang="fi"
    )
    bad = run("preview", "price_change", "--variant", "nonsense")
    assert bad.exit_code == 2 and "unknown variant 'nonsense'" in bad.output
    bad = run("preview", "price_change", "--variant", "other-product")
    assert bad.exit_code == 2 and "needs a type with current_product" in bad.output


def test_the_served_page_links_every_variant_one_click_away(make_dispatcher):
    d = make_dispatcher({"web": {"operator_token": "op-token-1"}})
    server = LiveServer(create_app(d)).start()
    auth = {"Authorization": "Bearer op-token-1"}
    try:
        status, page, _ = request(f"{server.base}/preview/renewal_offer?lang=sv&channel=email", headers=auth)
        assert status == 200
        links = dict(re.findall(r'<a href="([^"]+)"[^>]*>([a-z -]+)</a>', page))
        by_name = {name: href.replace("&amp;", "&") for href, name in links.items()}
        assert set(by_name) == {"as sampled", "business", "northern-norway", "other-product", "no-name"}
        status, other, _ = request(server.base + by_name["other-product"].removeprefix("/dispatch"), headers=auth)
        assert status == 200 and "/u/" in other and 'aria-current="page">other-product' in other
        status, page, _ = request(f"{server.base}/preview/price_change?lang=sv&channel=email", headers=auth)
        assert "other-product" not in page  # price notices have no current product
    finally:
        server.stop()
