"""What the shipped messages say (SPEC §2, §5): VAT, opt-outs, withdrawal, renewals, phone scripts, wording."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from dispatch.checks import check_templates
from dispatch.config import ConfigError, VatConfig
from dispatch.context import build_context, vat_for
from dispatch.errors import InvalidData
from dispatch.models import Decision
from dispatch.recipients import parse_recipient
from dispatch.render_cache import VariantRenderer
from dispatch.samples import sample_data, sample_recipient

NOW = datetime(2027, 1, 11, 10, 0, tzinfo=UTC)


def render(d, message_type, recipient, data=None, *, channel="email", language=None, part=None):
    """The rendered parts (or one part) of a message, as the customer would get it."""
    recipient = dict(recipient)
    language = language or recipient["language"]
    recipient["language"] = language
    if data is None:
        data = sample_data(message_type, recipient["country"])
    parts = d.preview(message_type, recipient, data, channel=channel, language=language, now=NOW)
    return parts[part] if part else parts


def person(language="fi", country="FI", **changes):
    recipient = sample_recipient(language, country)
    recipient["language"] = language
    if "postal_code" in changes:
        recipient["address"] = {**recipient["address"], "postal_code": changes.pop("postal_code")}
    recipient.update(changes)
    return recipient


# -- VAT ----------------------------------------------------------------------------------------


def test_household_prices_say_they_include_vat_at_the_country_rate(dispatcher):
    fi = render(dispatcher, "price_change", person("fi", "FI"), part="text")
    assert "Hinnat sisältävät arvonlisäveron 25,5 %." in fi
    se = render(dispatcher, "price_change", person("sv", "SE"), part="text")
    assert "Priserna är inklusive moms (25 %)." in se
    oslo = render(dispatcher, "price_change", person("en", "NO"), part="text")
    assert "Prices include VAT at 25%." in oslo


def test_business_prices_do_not_claim_to_include_vat(dispatcher):
    text = render(dispatcher, "price_change", person("fi", "FI", kind="business"), part="text")
    assert "sisältävät arvonlisäveron" not in text
    assert "Hinnat eivät sisällä arvonlisäveroa." in text


@pytest.mark.parametrize("postal_code", ["9008", "8001", "9990", "7980"])  # Tromsø, Bodø, Båtsfjord, Bindal
def test_household_electricity_in_northern_norway_is_vat_exempt(dispatcher, postal_code):
    text = render(dispatcher, "price_change", person("en", "NO", postal_code=postal_code), part="text")
    assert "No VAT is charged: household electricity in Northern Norway is exempt from VAT." in text
    assert "VAT at 25%" not in text


def test_the_exemption_is_for_households_only(dispatcher):
    text = render(dispatcher, "price_change", person("en", "NO", postal_code="9008", kind="business"), part="text")
    assert "exempt" not in text
    assert "Prices exclude VAT." in text


def test_vat_follows_the_recipient_and_the_configuration():
    tromso = parse_recipient(person("en", "NO", postal_code="9008"))
    trondheim = parse_recipient(person("en", "NO", postal_code="7010"))
    assert vat_for(tromso) == vat_for(tromso, VatConfig())
    assert (vat_for(tromso).rate, vat_for(tromso).exempt, vat_for(tromso).included) == (Decimal(0), True, True)
    assert (vat_for(trondheim).rate, vat_for(trondheim).exempt) == (Decimal(25), False)
    helsinki = parse_recipient(person("fi", "FI"))
    assert vat_for(helsinki).rate == Decimal("25.5")
    assert vat_for(helsinki, VatConfig(rates={"FI": 24.0})).rate == Decimal(24)
    assert vat_for(trondheim, VatConfig(rates={"FI": 24.0})).rate == Decimal(25)  # other countries keep defaults
    assert vat_for(trondheim, VatConfig(household_exempt={"NO": ["7000-7999"]})).exempt


def test_the_vat_rate_comes_from_the_vat_section(make_dispatcher):
    d = make_dispatcher({"vat": {"rates": {"FI": 24}}})
    assert "Hinnat sisältävät arvonlisäveron 24 %." in render(d, "price_change", person("fi", "FI"), part="text")


@pytest.mark.parametrize(
    ("vat", "message"),
    [
        ({"rates": {"DK": 25}}, "vat.rates.DK: unknown country"),
        ({"rates": {"FI": 125}}, "vat.rates.FI must be a percentage"),
        ({"household_exempt": {"NO": ["Tromsø"]}}, "vat.household_exempt.NO: 'Tromsø'"),
    ],
)
def test_a_bad_vat_section_is_refused_naming_the_key(make_dispatcher, vat, message):
    with pytest.raises(ConfigError, match=message):
        make_dispatcher({"vat": vat})


def test_a_renders_vat_is_part_of_the_cached_variant(dispatcher):
    """Two people who differ only in postal code must not share a rendered variant."""
    values = dispatcher.validate_data("price_change", sample_data("price_change", "NO"))
    oslo = render(dispatcher, "price_change", person("en", "NO"), values, part="text")
    tromso = render(dispatcher, "price_change", person("en", "NO", postal_code="9008"), values, part="text")
    assert "Prices include VAT at 25%." in oslo
    assert "exempt from VAT" in tromso and "VAT at 25%" not in tromso


# -- opt-outs by decided category -----------------------------------------------------------------


def other_product(country="FI"):
    return {**sample_data("renewal_offer", country), "product": "Tuuli 24"}


@pytest.mark.parametrize(("language", "country", "word"), [("fi", "FI", "LOPETA"), ("sv", "SE", "STOPP")])
def test_a_renewal_offering_another_product_carries_an_opt_out(dispatcher, language, country, word):
    data = other_product(country)
    sms = render(dispatcher, "renewal_offer", person(language, country), data, channel="sms", part="text")
    assert "/u/" in sms and word in sms
    letter = render(dispatcher, "renewal_offer", person(language, country), data, channel="letter", part="html")
    assert "/u/" in letter
    email = render(dispatcher, "renewal_offer", person(language, country), data)
    assert "/u/" in email["text"] and "/u/" in email["html"]


def test_a_renewal_of_the_same_product_carries_no_marketing_opt_out(dispatcher):
    sms = render(dispatcher, "renewal_offer", person(), channel="sms", part="text")
    assert "/u/" not in sms and "LOPETA" not in sms
    assert "/u/" not in render(dispatcher, "renewal_offer", person(), channel="letter", part="html")


@pytest.mark.parametrize(
    ("language", "country", "word"), [("fi", "FI", "LOPETA"), ("sv", "FI", "STOPP"), ("en", "NO", "STOP")]
)
def test_marketing_sms_say_how_to_stop_them_within_the_budget(dispatcher, language, country, word):
    text = render(dispatcher, "marketing", person(language, country), channel="sms", part="text")
    assert f"{word} " in text and "/u/" in text
    meta = dispatcher.channels["sms"].prepare(dispatcher.message_type("marketing"), {"text": text})
    assert meta["encoding"] == "GSM-7" and meta["segments"] <= 3


def write_template(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_templates_check_finds_a_missing_opt_out_by_decided_category(make_dispatcher, tmp_path):
    """The renewal SMS needs no opt-out for the same product, but must have one for another product."""
    custom = tmp_path / "custom"
    write_template(
        custom,
        "fi/renewal_offer/sms.txt",
        "{{ company.name }}: {{ product }} {{ current_ends_on | date }} {{ respond_by | date }} "
        "{{ duration | months }} {{ if_no_action.product }} "
        "{% for e in if_no_action.price_elements %}{{ e | price }} {% endfor %}"
        '{% include "_partials/vat.txt" %}',
    )
    d = make_dispatcher({"templates": {"paths": [str(custom)]}})
    report = check_templates(d, languages=["fi"], types=["renewal_offer"])
    sms = [str(p) for p in report.problems if p.channel == "sms"]
    assert sms, "the check missed the opt-out"
    assert all("another product" in p for p in sms)
    assert any("the opt-out link (decided category marketing" in p for p in sms)
    assert any("reply LOPETA" in p for p in sms)


def test_templates_check_finds_a_marketing_sms_without_the_stop_word(make_dispatcher, tmp_path):
    custom = tmp_path / "custom"
    source = (Path(__file__).parents[1] / "templates/sv/marketing/sms.txt").read_text(encoding="utf-8")
    write_template(
        custom, "sv/marketing/sms.txt", source.replace('{% include "_partials/opt_out.txt" %}', "{{ unsubscribe_url }}")
    )
    d = make_dispatcher({"templates": {"paths": [str(custom)]}})
    report = check_templates(d, languages=["sv"], types=["marketing"])
    assert [p.text for p in report.problems if p.channel == "sms"] == [
        "(FI) does not show how to stop marketing SMS (reply STOPP): expected 'STOPP'",
        "(SE) does not show how to stop marketing SMS (reply STOPP): expected 'STOPP'",
    ]


def test_the_shipped_templates_pass_the_check(dispatcher):
    report = check_templates(dispatcher)
    assert report.ok, "\n".join(map(str, report.problems))
    assert report.rendered >= 138


# -- contract confirmation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "country", "expected"),
    [("fi", "FI", "1.3.2027"), ("sv", "SE", "1 mars 2027"), ("en", "NO", "1 March 2027")],
)
def test_withdrawal_right_ends_14_days_after_signing_for_households(dispatcher, language, country, expected):
    for channel, part in (("email", "text"), ("email", "html"), ("letter", "html")):
        text = render(dispatcher, "contract_confirmation", person(language, country), channel=channel, part=part)
        assert expected in text, (channel, part)


@pytest.mark.parametrize(
    ("language", "country", "words"),
    [("fi", "FI", "Peruuttamisoikeus"), ("sv", "SE", "ångerrätt"), ("en", "NO", "right to cancel")],
)
def test_businesses_are_not_offered_a_withdrawal_right(dispatcher, language, country, words):
    business = person(language, country, kind="business")
    for channel, part in (("email", "text"), ("email", "html"), ("letter", "html")):
        text = render(dispatcher, "contract_confirmation", business, channel=channel, part=part)
        assert words not in text, (channel, part)
    household = render(dispatcher, "contract_confirmation", person(language, country), part="text")
    assert words in household


def test_confirmation_shows_duration_and_terms_link(dispatcher):
    text = render(dispatcher, "contract_confirmation", person(), part="text")
    assert "Sopimuskausi: 24 kuukautta (28.2.2029 asti)" in text
    assert "https://energia.example.fi/sopimusehdot" in text
    own_terms = {**sample_data("contract_confirmation"), "terms_url": "https://energia.example.fi/ehdot/kiintea-24"}
    html = render(dispatcher, "contract_confirmation", person(), own_terms, part="html")
    assert 'href="https://energia.example.fi/ehdot/kiintea-24"' in html
    se = render(dispatcher, "contract_confirmation", person("sv", "SE"), part="text")
    assert "https://energi.example.se/avtalsvillkor" in se


def test_confirmation_with_only_an_end_date_or_neither(dispatcher):
    data = {**sample_data("contract_confirmation"), "duration": None}
    assert "Sopimus päättyy: 28.2.2029" in render(dispatcher, "contract_confirmation", person(), data, part="text")
    data = {k: v for k, v in sample_data("contract_confirmation").items() if k not in ("duration", "ends_on")}
    assert "Sopimuskausi: toistaiseksi voimassa" in render(
        dispatcher, "contract_confirmation", person(), data, part="text"
    )
    en = render(dispatcher, "contract_confirmation", person("en", "NO"), data, part="text")
    assert "Length of contract: no fixed end date" in en


def test_withdrawal_date_in_the_context():
    from dispatch.messages import BUILTIN_TYPES, validate_data

    mtype = next(t for t in BUILTIN_TYPES if t.name == "contract_confirmation")
    values = validate_data(mtype, sample_data("contract_confirmation"))

    def context(kind):
        recipient = parse_recipient(person(kind=kind))
        decision = Decision(True, mtype.name, "statutory", "email", "fi", [], "contract")
        return build_context(
            message_type=mtype,
            decision=decision,
            recipient=recipient,
            data=values,
            chain=("fi",),
            message_id="M1",
            locale="fi_FI",
            currency="EUR",
            today=date(2027, 2, 16),
            company={"terms_url": "https://example.fi/ehdot"},
            unsubscribe_url=None,
        )

    household, business = context("household"), context("business")
    assert household["withdrawal_ends_on"] == date(2027, 3, 1)
    assert business["withdrawal_ends_on"] is None
    assert household["terms_url"] == "https://example.fi/ehdot"
    assert household["preferences_url"] is None and household["unsubscribe_url"] is None


# -- renewal offer ----------------------------------------------------------------------------------


def test_renewal_says_what_happens_if_the_customer_does_nothing(dispatcher):
    text = render(dispatcher, "renewal_offer", person(), part="text")
    # Updated in issue 20: "Perussähkö -sopimuksena" was wrong (a space before the hyphen only after a multi-word name).
    assert "Sähkösopimuksesi jatkuu 31.8.2027 jälkeen Perussähkö-sopimuksena näillä hinnoilla:" in text
    assert "Energia: 9,49 c/kWh" in text
    assert "sopimuskausi on 24 kuukautta" in text
    data = {k: v for k, v in sample_data("renewal_offer").items() if k != "if_no_action"}
    text = render(dispatcher, "renewal_offer", person(), data, part="text")
    assert "toistaiseksi voimassa olevana sopimuksena" in text and "Perussähkö" not in text


def test_offer_buttons_go_to_the_offer_url_when_given(dispatcher):
    html = render(dispatcher, "renewal_offer", person(), part="html")
    assert 'href="https://energia.example.fi/jatko/R-77120"' in html
    data = {k: v for k, v in sample_data("renewal_offer").items() if k != "offer_url"}
    html = render(dispatcher, "renewal_offer", person(), data, part="html")
    assert 'class="button" href="https://energia.example.fi"' in html
    marketing = {**sample_data("marketing"), "offer_url": "https://energia.example.fi/tuuli"}
    assert 'href="https://energia.example.fi/tuuli"' in render(
        dispatcher, "marketing", person(), marketing, part="html"
    )


def test_renewal_data_needs_the_current_product_and_checks_optional_fields(dispatcher):
    data = {k: v for k, v in sample_data("renewal_offer").items() if k != "current_product"}
    data.update(duration="two years", if_no_action={"product": "Perus"}, offer_url="energia.example.fi")
    with pytest.raises(InvalidData) as raised:
        dispatcher.validate_data("renewal_offer", data)
    text = str(raised.value)
    for name in ("current_product is missing", "duration", "if_no_action.price_elements", "offer_url"):
        assert name in text


# -- phone scripts ----------------------------------------------------------------------------------


# test_phone_sales_in_sweden_and_norway_need_written_acceptance asserted the old, wrong rule (Finnish
# phone sales recorded on the call); replaced in issue 20 by tests/test_content_round2.py::test_every_phone_script_*.


def test_renewal_scripts_have_an_acceptance_step(dispatcher):
    fi = render(dispatcher, "renewal_offer", person("fi", "FI"), channel="phone", part="script")
    assert "JOS ASIAKAS HYVÄKSYY TARJOUKSEN" in fi and "Hyväksytkö tarjouksen näillä ehdoilla?" in fi
    sv = render(dispatcher, "renewal_offer", person("sv", "FI"), channel="phone", part="script")
    assert "OM KUNDEN TACKAR JA" in sv and "Godkänner du erbjudandet" in sv


# -- wording --------------------------------------------------------------------------------------


def test_swedish_for_finland_uses_finland_swedish_terms(dispatcher):
    fi = render(dispatcher, "price_change", person("sv", "FI"), part="text")
    assert "Grundavgift" in fi and "00100 Helsingfors" in fi and "FO-nummer" in fi
    assert "Helsinki" not in fi and "Fast avgift" not in fi
    se = render(dispatcher, "price_change", person("sv", "SE"), part="text")
    assert "Fast avgift" in se and "Org.nr 556677-8899" in se and "Grundavgift" not in se


def test_english_avoids_calques(dispatcher):
    for mtype in dispatcher.types:
        for channel in mtype.channels:
            for part, text in render(dispatcher, mtype.name, person("en", "NO"), channel=channel).items():
                lowered = text.lower()
                for calque in ("campaign price", "price element", "made on"):
                    assert calque not in lowered, (mtype.name, channel, part, calque)


def test_finnish_marketing_says_how_long_campaign_prices_last_and_claims_no_fixed_term(dispatcher):
    for channel in ("email", "sms", "letter", "phone"):
        for text in render(dispatcher, "marketing", person(), channel=channel).values():
            assert "määräaikainen" not in text, channel
    text = render(dispatcher, "marketing", person(), part="text")
    assert "Kampanjahinnat ovat voimassa sopimuksen ensimmäiset 12 kuukautta." in text


def test_survey_length_is_company_data(make_dispatcher):
    d = make_dispatcher({"company": {"survey_minutes": 5}})
    assert "takes about 5 minutes" in render(d, "survey", person("en", "NO"), part="text")
    assert "noin 5 minuuttia" in render(d, "survey", person(), part="text")


def test_greeting_partial_escapes_names_in_html(make_dispatcher):
    d = make_dispatcher({"templates": {"render_cache": False}})
    recipient = person()
    recipient["address"] = {**recipient["address"], "name": "Liisa <b>Laine</b> & Co"}
    parts = render(d, "price_change", recipient)
    assert "Hei Liisa &lt;b&gt;Laine&lt;/b&gt; &amp; Co," in parts["html"]
    assert "Hei Liisa <b>Laine</b> & Co," in parts["text"]
    nameless = render(d, "price_change", {**person(), "address": None})
    assert nameless["text"].startswith("Hei,\n")


# -- preference link ---------------------------------------------------------------------------------


def test_footers_link_the_preference_page_and_the_cache_keeps_links_apart(dispatcher):
    mtype = dispatcher.message_type("price_change")
    values = dispatcher.validate_data("price_change", sample_data("price_change"))
    recipient = parse_recipient(person())
    decision = Decision(True, mtype.name, "statutory", "email", "fi", [], "legal_obligation")
    parts = dispatcher.channels["email"].parts
    variants = VariantRenderer(dispatcher.renderer)
    cache: dict = {}
    company = dispatcher.company("FI", "fi")
    rendered = []
    for token in ("tokenA", "tokenB"):
        context = build_context(
            message_type=mtype,
            decision=decision,
            recipient=recipient,
            data=values,
            chain=("fi",),
            message_id=f"M-{token}",
            locale="fi_FI",
            currency="EUR",
            today=date(2027, 1, 11),
            company=company,
            unsubscribe_url=None,
            preferences_url=f"https://energia.example.fi/p/{token}",
        )
        rendered.append(variants.render(mtype.name, parts, "fi", "FI", context, cache))
    first, second = rendered
    assert 'href="https://energia.example.fi/p/tokenA"' in first["html"]
    assert "https://energia.example.fi/p/tokenA" in first["text"]
    assert "tokenB" in second["text"] and "tokenA" not in second["text"] + second["html"]
    assert len(cache) == 1  # one variant, filled in per person


def test_a_translator_changes_a_shared_text_once(make_dispatcher, tmp_path):
    """Overriding one partial changes every message of the language that uses it."""
    custom = tmp_path / "custom"
    write_template(custom, "fi/_partials/signature.txt", "Aurinkoisin terveisin\n{{ company.name }}")
    write_template(custom, "fi/_partials/signature.html", "<p>Aurinkoisin terveisin<br>{{ company.name }}</p>")
    d = make_dispatcher({"templates": {"paths": [str(custom)]}})
    for message_type in ("contract_confirmation", "price_change", "terms_change", "renewal_offer", "survey"):
        parts = render(d, message_type, person())
        assert "Aurinkoisin terveisin" in parts["text"] and "Aurinkoisin terveisin" in parts["html"], message_type
        assert "Ystävällisin terveisin" not in parts["text"] + parts["html"], message_type


def test_swedish_terms_change_sms_names_the_changes(dispatcher):
    text = render(dispatcher, "terms_change", person("sv", "SE"), channel="sms", part="text")
    assert "- Faktureringsperioden ändras från två månader till en månad." in text
    assert "- Avgiften för pappersfaktura tas bort." in text
    many = {**sample_data("terms_change", "SE"), "changes": [f"Ändring {n}." for n in range(1, 6)]}
    text = render(dispatcher, "terms_change", person("sv", "SE"), many, channel="sms", part="text")
    assert "Ändring 1." not in text and "https://energi.example.se/avtalsvillkor" in text
