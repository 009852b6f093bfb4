"""Emails on a phone: price tables readable at 320-360 px in headless Chromium with mobile emulation.

A price notice must be "transparent and comprehensible" (Dir. 2019/944 Art 10): no clipped column and
no horizontal scroll, both as sent (CSS inlined, @media rules kept) and in clients that drop <style>.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from web_helpers import chromium

from dispatch.samples import sample_data, sample_recipient
from dispatch_email.channel import inline_css

NOW = datetime(2027, 1, 11, 10, 0, tzinfo=UTC)
READERS = [("fi", "FI"), ("sv", "FI"), ("sv", "SE"), ("nb", "NO"), ("en", "FI"), ("en", "SE"), ("en", "NO")]
TYPES = ["price_change", "renewal_offer", "marketing", "contract_confirmation"]

#: Everything that sticks out: the page's horizontal overflow, and every table cell whose box ends
#: right of its table or of the viewport (a clipped column), or whose content is wider than the cell.
MEASURE = """
const vw = window.innerWidth;
const out = {vw: vw, scroll: document.documentElement.scrollWidth, body: document.body.scrollWidth, bad: []};
for (const table of document.querySelectorAll('table')) {
  const t = table.getBoundingClientRect();
  for (const cell of table.querySelectorAll('td, th')) {
    const r = cell.getBoundingClientRect();
    if (r.right > Math.min(t.right, vw) + 0.5 || r.left < -0.5 || cell.scrollWidth > cell.clientWidth + 1) {
      out.bad.push(cell.textContent.trim().slice(0, 40) + ' @' + Math.round(r.left) + '-' + Math.round(r.right));
    }
  }
}
return out;
"""


@pytest.fixture(scope="module")
def phone():
    browser = chromium()
    try:
        yield browser
    finally:
        browser.quit()


def emulate(browser, width: int) -> None:
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 780, "deviceScaleFactor": 3, "mobile": True},
    )


def without_style_blocks(html: str) -> str:
    """As a client that drops <style> (and so the @media rules) shows it: inline styles only."""
    return re.sub(r"<style[^>]*>.*?</style>", "", html, flags=re.S)


def show(browser, tmp_path, html: str, width: int) -> dict:
    page = tmp_path / f"mail-{width}.html"
    page.write_text(html, encoding="utf-8")
    emulate(browser, width)
    browser.get(page.as_uri())
    return browser.execute_script(MEASURE)


def html_of(dispatcher, message_type, language, country, kind="household"):
    recipient = {**sample_recipient(language, country), "language": language, "kind": kind}
    data = sample_data(message_type, country, language)
    parts = dispatcher.preview(message_type, recipient, data, channel="email", language=language, now=NOW)
    return parts["html"]


@pytest.mark.parametrize("width", [320, 360])
@pytest.mark.parametrize(("language", "country"), READERS)
def test_price_tables_fit_a_phone_without_clipping_or_scrolling(dispatcher, phone, tmp_path, language, country, width):
    for message_type in TYPES:
        sent = inline_css(html_of(dispatcher, message_type, language, country))
        for label, html in (("as sent", sent), ("without <style>", without_style_blocks(sent))):
            seen = show(phone, tmp_path, html, width)
            assert seen["vw"] == width  # the emulation is in effect (a desktop window is never this narrow)
            assert seen["scroll"] <= width and seen["body"] <= width, (message_type, label, seen)
            assert seen["bad"] == [], (message_type, label, seen)


def test_the_old_table_css_clipped_the_new_price_column(dispatcher, phone, tmp_path):
    """The measurement itself: the CSS before issue 20 (nowrap amounts, 28 px padding) fails it at 360 px."""
    html = inline_css(html_of(dispatcher, "price_change", "en", "NO"))
    old = html.replace("white-space: normal", "white-space: nowrap")
    old = old.replace("padding: 24px 28px", "padding: 24px 28px; min-width: 0")
    old = without_style_blocks(old)
    seen = show(phone, tmp_path, old, 320)
    assert seen["scroll"] > 320 or seen["bad"], seen
