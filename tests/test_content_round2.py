"""Issue 20, legal content round 2: each error of the review, rendered and asserted per country and kind.

Every test here fails on the templates and code as they were before the issue.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from dispatch.checks import check_templates
from dispatch.errors import InvalidData
from dispatch.samples import sample_data, sample_recipient

NOW = datetime(2027, 1, 11, 10, 0, tzinfo=UTC)
TEMPLATES = Path(__file__).parents[1] / "templates"


def person(language: str, country: str, **changes):
    recipient = sample_recipient(language, country)
    recipient["language"] = language
    recipient.update(changes)
    return recipient


def render(d, message_type, recipient, data=None, *, channel="email", part=None):
    if data is None:
        data = sample_data(message_type, recipient["country"], recipient["language"])
    parts = d.preview(message_type, recipient, data, channel=channel, language=recipient["language"], now=NOW)
    return parts[part] if part else parts


#: (language, country) pairs that cover every language and every country a language is used in.
READERS = [("fi", "FI"), ("sv", "FI"), ("sv", "SE"), ("nb", "NO"), ("en", "FI"), ("en", "SE"), ("en", "NO")]
#: What every phone script must say up front: nothing is agreed on the call; a written offer follows.
UP_FRONT = {
    "fi": "Puhelimessa ei sovita mitään sitovasti.",
    "sv": "Inget avtal ingås under det här samtalet.",
    "nb": "Vi avtaler ikke noe bindende i denne samtalen.",
    "en": "Nothing is agreed on this call.",
}
ACCEPT_IN_WRITING = {
    "fi": "sopimus syntyy vasta, kun hyväksyt tarjouksen kirjallisesti",
    "sv": "avtalet gäller först när du har godkänt det skriftligt",
    "nb": "avtalen gjelder først når du har akseptert det skriftlig",
    "en": "there is a contract only once you have accepted it in writing",
}
#: Words of the 14-day withdrawal right, per language (businesses never get them).
WITHDRAWAL = {"fi": "peruuttamisoikeus", "sv": "ångerrätt", "nb": "angrerett", "en": "14 days"}


# -- 1. phone sales: written offer, accepted in writing, in every country ------------------------------


@pytest.mark.parametrize("message_type", ["marketing", "renewal_offer"])
@pytest.mark.parametrize(("language", "country"), READERS)
@pytest.mark.parametrize("kind", ["household", "business"])
def test_every_phone_script_says_up_front_that_nothing_is_agreed_on_the_call(
    dispatcher, message_type, language, country, kind
):
    script = render(dispatcher, message_type, person(language, country, kind=kind), channel="phone", part="script")
    opening = script[: script.index("\n2. ")]  # section 1: the opening of the call
    assert UP_FRONT[language] in opening
    assert ACCEPT_IN_WRITING[language] in script
    if language == "fi":  # the old Finnish branch told the agent to record the contract on the call
        assert "kirjaa hyväksyntä ja uusi sopimus" not in script
        assert "tee sopimus sopimuksen tekemisen ohjeiden mukaan" not in script
    if language == "en":
        assert "Record the acceptance and the contract in the customer record." not in script


# -- 4. businesses are never told of a 14-day withdrawal right ----------------------------------------


@pytest.mark.parametrize(("language", "country"), READERS)
def test_marketing_tells_households_not_businesses_of_the_withdrawal_right(dispatcher, language, country):
    word = WITHDRAWAL[language]
    for channel, part in (("email", "text"), ("email", "html"), ("letter", "html"), ("phone", "script")):
        business = render(dispatcher, "marketing", person(language, country, kind="business"), channel=channel)
        assert word not in business[part].lower(), (channel, part)
        household = render(dispatcher, "marketing", person(language, country), channel=channel)
        assert word in household[part].lower(), (channel, part)


@pytest.mark.parametrize(("language", "country"), READERS)
def test_renewal_scripts_tell_only_households_of_the_withdrawal_right(dispatcher, language, country):
    word = WITHDRAWAL[language]
    business = render(dispatcher, "renewal_offer", person(language, country, kind="business"), channel="phone")
    household = render(dispatcher, "renewal_offer", person(language, country), channel="phone")
    assert word not in business["script"].lower()
    assert word in household["script"].lower()


# -- 5. Swedish withdrawal: pay for delivered electricity only if delivery was asked to start ------------


@pytest.mark.parametrize("country", ["SE", "FI"])
def test_swedish_withdrawal_text_keeps_its_condition(dispatcher, country):
    for channel, part in (("email", "text"), ("email", "html"), ("letter", "html")):
        text = render(dispatcher, "contract_confirmation", person("sv", country), channel=channel)[part]
        assert "Om du har begärt att elleveransen ska börja under ångerfristen betalar du" in text, (channel, part)
        assert "Om elleveransen redan har börjat när du ångrar dig" not in text


# -- 2, 6. country data of marketing: the jämförpris (SE), contract type and binding (NO) ------------------


@pytest.mark.parametrize(("language", "country"), [("sv", "SE"), ("en", "SE")])
def test_swedish_marketing_shows_the_comparison_price(dispatcher, language, country):
    for kind in ("household", "business"):
        for channel, part in (("email", "text"), ("email", "html"), ("letter", "html"), ("phone", "script")):
            text = render(dispatcher, "marketing", person(language, country, kind=kind), channel=channel)[part]
            for amount in ("104,50", "80,80", "72,00") if language == "sv" else ("104.50", "80.80", "72.00"):
                assert f"{amount} öre/kWh" in text, (kind, channel, part)
            assert ("Nätkostnaden ingår inte" if language == "sv" else "Network charges are not included") in text


@pytest.mark.parametrize(
    ("language", "expected"), [("nb", "Bindingstid: 24 måneder"), ("en", "Binding period: 24 months")]
)
def test_norwegian_marketing_shows_contract_type_binding_and_exit_fee(dispatcher, language, expected):
    for channel, part in (("email", "text"), ("email", "html"), ("letter", "html"), ("phone", "script")):
        text = render(dispatcher, "marketing", person(language, "NO"), channel=channel)[part]
        assert expected in text, (channel, part)
        if language == "nb":
            assert "Avtaletype:" in text and "variabel pris" in text and "Bruddgebyr:" in text
            assert "299,00 kr" in text
    none = {**sample_data("marketing", "NO"), "binding_months": 0, "exit_fee": "0"}
    text = render(dispatcher, "marketing", person("nb", "NO"), none, part="text")
    assert "Bindingstid: ingen" in text and "Bruddgebyr: ingen" in text


def test_marketing_to_sweden_without_the_comparison_price_is_refused_naming_it(dispatcher):
    data = {k: v for k, v in sample_data("marketing", "SE").items() if k != "comparison_prices"}
    dispatcher.validate_data("marketing", data)  # the data alone is fine: it could go to Finland
    with pytest.raises(InvalidData, match="comparison_prices is missing") as raised:
        dispatcher.decide("marketing", person("sv", "SE"), data, now=NOW)
    assert "SE" in str(raised.value)
    fi = dispatcher.decide("marketing", person("fi", "FI"), sample_data("marketing", "FI"), now=NOW)
    assert "comparison_prices" not in " ".join(fi.reasons)


def test_marketing_to_norway_needs_contract_type_binding_and_exit_fee(dispatcher):
    data = sample_data("marketing", "FI")  # none of the Norwegian fields
    with pytest.raises(InvalidData) as raised:
        dispatcher.decide("marketing", person("nb", "NO"), data, now=NOW)
    text = str(raised.value)
    for name in ("contract_type is missing", "binding_months is missing", "exit_fee is missing"):
        assert name in text
    bad = {**sample_data("marketing", "NO"), "contract_type": "cheap", "binding_months": -1, "exit_fee": 2.5}
    with pytest.raises(InvalidData) as raised:
        dispatcher.validate_data("marketing", bad)
    text = str(raised.value)
    assert "contract_type" in text and "binding_months" in text and "exit_fee" in text


def test_comparison_prices_are_checked_when_given(dispatcher):
    data = {**sample_data("marketing", "SE"), "comparison_prices": {"period": "2027", "at_2000": 104.5}}
    with pytest.raises(InvalidData) as raised:
        dispatcher.validate_data("marketing", data)
    text = str(raised.value)
    assert "comparison_prices.at_2000" in text and "float" in text
    assert "comparison_prices.at_5000 is missing" in text and "comparison_prices.at_20000 is missing" in text


def test_a_campaign_with_swedish_recipients_and_no_comparison_price_fails_clearly(make_dispatcher):
    d = make_dispatcher()
    data = {k: v for k, v in sample_data("marketing", "SE").items() if k != "comparison_prices"}
    people = [{**sample_recipient("sv", "SE"), "id": f"S{i}"} for i in range(3)]
    with pytest.raises(InvalidData, match=r"SE: comparison_prices is missing"):
        d.campaign("marketing", people, data, now=NOW)
    assert d.store.status_counts() == {}  # nothing of the failing batch was written
    finns = [{**sample_recipient("fi", "FI"), "id": f"F{i}"} for i in range(3)]
    summary = d.campaign("marketing", finns, sample_data("marketing", "FI"), now=NOW)
    assert summary.total == 3 and summary.invalid == 0
    summary = d.campaign("marketing", people, sample_data("marketing", "SE"), now=NOW)  # with the jämförpris
    assert summary.total == 3 and summary.invalid == 0 and summary.queued + summary.suppressed == 3


def write_template(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_templates_check_fails_a_swedish_marketing_email_without_the_comparison_price(make_dispatcher, tmp_path):
    source = (TEMPLATES / "sv/marketing/email.txt").read_text(encoding="utf-8")
    assert '{% include "_partials/marketing_terms.txt" %}\n' in source
    write_template(
        tmp_path / "custom",
        "sv/marketing/email.txt",
        source.replace('{% include "_partials/marketing_terms.txt" %}\n', ""),
    )
    d = make_dispatcher({"templates": {"paths": [str(tmp_path / "custom")]}})
    problems = [str(p) for p in check_templates(d, languages=["sv"], types=["marketing"]).problems]
    assert any("(SE) does not show the jämförpris at 2000 kWh/year" in p for p in problems), problems
    assert not any("(FI)" in p for p in problems)  # Finland has no jämförpris


def test_templates_check_fails_a_norwegian_marketing_letter_without_the_binding_period(make_dispatcher, tmp_path):
    source = (TEMPLATES / "nb/marketing/letter.html").read_text(encoding="utf-8")
    write_template(
        tmp_path / "custom",
        "nb/marketing/letter.html",
        source.replace('{% include "_partials/marketing_terms.html" %}\n', ""),
    )
    d = make_dispatcher({"templates": {"paths": [str(tmp_path / "custom")]}})
    problems = [str(p) for p in check_templates(d, languages=["nb"], types=["marketing"]).problems]
    assert any("letter.html" in p and "binding period (NO binding_months)" in p for p in problems), problems


# -- 3. Swedish renewals: what doing nothing gets, with prices, binding and notice period --------------------


def test_a_swedish_renewal_needs_if_no_action_with_prices_and_notice_period(dispatcher):
    data = {k: v for k, v in sample_data("renewal_offer", "SE").items() if k != "if_no_action"}
    with pytest.raises(InvalidData, match="if_no_action is missing"):
        dispatcher.decide("renewal_offer", person("sv", "SE"), data, now=NOW)
    data = sample_data("renewal_offer", "SE")
    data["if_no_action"] = {k: v for k, v in data["if_no_action"].items() if k != "notice_months"}
    with pytest.raises(InvalidData, match=r"if_no_action\.notice_months is missing"):
        dispatcher.decide("renewal_offer", person("sv", "SE"), data, now=NOW)
    dispatcher.decide("renewal_offer", person("fi", "FI"), data, now=NOW)  # Finland: not required


@pytest.mark.parametrize("language", ["sv", "en"])
def test_a_swedish_renewal_states_binding_and_notice_of_both_contracts(dispatcher, language):
    expected = {
        "sv": ("Villkor för Fast 24: bindningstid 24 månader", "ingen bindningstid, uppsägningstid 1 månad"),
        "en": ("Fast 24: fixed term 24 months", "no binding period, notice period 1 month"),
    }[language]
    for channel, part in (("email", "text"), ("email", "html"), ("letter", "html"), ("phone", "script")):
        text = render(dispatcher, "renewal_offer", person(language, "SE"), channel=channel)[part]
        for needle in expected:
            assert needle in text, (channel, part, needle)


# -- 7. renewal SMS give the default product's prices -----------------------------------------------


@pytest.mark.parametrize(
    ("language", "country", "price"),
    [
        ("fi", "FI", "9,49 c/kWh"),
        ("sv", "FI", "9,49 c/kWh"),
        ("sv", "SE", "94,00 öre/kWh"),
        ("en", "NO", "84.90 øre/kWh"),
    ],
)
def test_renewal_sms_give_the_prices_of_doing_nothing(dispatcher, language, country, price):
    for product in (None, "Tuuli 24"):
        data = sample_data("renewal_offer", country, language)
        if product:
            data["product"] = product
        text = render(dispatcher, "renewal_offer", person(language, country), data, channel="sms", part="text")
        assert price in text
        meta = dispatcher.channels["sms"].prepare(dispatcher.message_type("renewal_offer"), {"text": text})
        assert meta["encoding"] == "GSM-7" and meta["segments"] <= 4


# -- 10. wording ----------------------------------------------------------------------------------------


def test_finnish_hyphen_follows_the_length_of_the_name(dispatcher):
    text = render(dispatcher, "renewal_offer", person("fi", "FI"), part="text")
    assert "Perussähkö-sopimuksena" in text and "Perussähkö -sopimuksena" not in text
    assert "Kiinteä 24 -sähkösopimuksesi" in text


def test_swedish_finns_get_swedish_products_links_and_service_address(dispatcher):
    for message_type in ("renewal_offer", "marketing", "contract_confirmation"):
        text = render(dispatcher, message_type, person("sv", "FI"), part="text")
        assert "asiakaspalvelu@" not in text, message_type
        assert "Kiinteä" not in text and "Tuuli" not in text, message_type
        assert "kundservice@example.fi" in text or message_type == "marketing"
    renewal = render(dispatcher, "renewal_offer", person("sv", "FI"), part="text")
    assert "https://energia.example.fi/sv/fortsatt/R-77120" in renewal and "/jatko/" not in renewal
    fi = render(dispatcher, "renewal_offer", person("fi", "FI"), part="text")
    assert "asiakaspalvelu@example.fi" in fi and "https://energia.example.fi/jatko/R-77120" in fi


def test_finnish_survey_sms_asks_etko_and_swedish_confirmation_says_bekraftelse_pa(dispatcher):
    sms = render(dispatcher, "survey", person("fi", "FI"), channel="sms", part="text")
    assert "Etkö halua kyselyjä jatkossa?" in sms and "Et halua" not in sms
    for channel, part in (("email", "subject"), ("email", "text"), ("letter", "html")):
        text = render(dispatcher, "contract_confirmation", person("sv", "SE"), channel=channel)[part]
        assert "ekräftelse på ditt" in text and "ekräftelse av ditt" not in text, (channel, part)


def test_english_phrasing(dispatcher):
    marketing = render(dispatcher, "marketing", person("en", "NO"), part="text")
    assert "You are receiving this email because" in marketing and "You receive this" not in marketing
    assert "The offer is open up to and including 30 April 2027." in marketing
    confirmation = render(dispatcher, "contract_confirmation", person("en", "NO"), part="text")
    assert "without giving a reason up to and including" in confirmation


@pytest.mark.parametrize(
    ("language", "country", "zero"),
    [
        ("fi", "FI", "Perusmaksu: 0 €/kk"),
        ("sv", "SE", "Fast avgift: 0 kr/mån"),
        ("en", "FI", "Standing charge: €0 per month"),
    ],
)
def test_a_zero_fee_is_written_without_decimals(dispatcher, language, country, zero):
    text = render(dispatcher, "marketing", person(language, country), part="text")
    assert zero in text and "0,00" not in text.replace("10,00", "") and "0.00 per" not in text


@pytest.mark.parametrize(("language", "country"), READERS)
def test_offer_subjects_name_the_company(dispatcher, language, country):
    company = dispatcher.company(country, language)["name"]
    for message_type in ("marketing", "renewal_offer"):
        subject = render(dispatcher, message_type, person(language, country), part="subject")
        assert subject.startswith(f"{company}: "), subject


@pytest.mark.parametrize(
    ("language", "country", "change"), [("fi", "FI", "(+18,8 %)"), ("sv", "SE", "(+13,3 %)"), ("en", "NO", "(+14.3%)")]
)
def test_a_price_notice_gives_the_size_of_each_change_as_a_percentage(dispatcher, language, country, change):
    for channel, part in (("email", "text"), ("letter", "html")):
        assert change in render(dispatcher, "price_change", person(language, country), channel=channel)[part]
    html = render(dispatcher, "price_change", person(language, country), part="html")
    assert change.strip("()") in html


@pytest.mark.parametrize(
    ("language", "short"), [("nb", "Uten mva. (Nord-Norge)."), ("en", "No VAT (Northern Norway).")]
)
def test_the_northern_norway_vat_sentence_is_short_in_sms(dispatcher, language, short):
    tromso = person(language, "NO")
    tromso["address"] = {**tromso["address"], "postal_code": "9008", "city": "Tromsø"}
    sms = render(dispatcher, "price_change", tromso, channel="sms", part="text")
    assert short in sms and "fritatt for merverdiavgift" not in sms and "exempt from VAT" not in sms
    email = render(dispatcher, "price_change", tromso, part="text")
    assert short not in email


def test_finnish_text_can_write_sentit_as_the_retailer_chooses(make_dispatcher):
    d = make_dispatcher({"languages": {"unit_labels": {"fi": {"c/kWh": "snt/kWh"}}}})
    fi = render(d, "price_change", person("fi", "FI"), part="text")
    assert "Energia: 7,49 snt/kWh -> 8,90 snt/kWh" in fi and "c/kWh" not in fi
    sv = render(d, "price_change", person("sv", "FI"), part="text")
    assert "8,90 c/kWh" in sv
    assert check_templates(d, languages=["fi"], types=["price_change", "marketing"]).ok
    default = make_dispatcher()
    assert "8,90 c/kWh" in render(default, "price_change", person("fi", "FI"), part="text")
