"""Sample recipients and message data: for ``templates check``, ``preview`` and the demo.

The data is realistic for each country (units and currencies differ) and uses
per-language texts where a company would give them.
"""

from __future__ import annotations

from typing import Any

from .models import LANGUAGES

_UNITS = {
    "FI": ("c/kWh", "EUR/month"),
    "SE": ("öre/kWh", "SEK/month"),
    "NO": ("øre/kWh", "NOK/month"),
}
_PRICES = {
    # energy old, energy new, fee old, fee new
    "FI": ("7.49", "8.90", "3.95", "4.90"),
    "SE": ("79.00", "89.50", "39.00", "49.00"),
    "NO": ("69.90", "79.90", "39.00", "49.00"),
}
#: Campaign prices (energy, monthly fee) during the offer.
_PROMO = {"FI": ("6.99", "0.00"), "SE": ("69.00", "0.00"), "NO": ("59.90", "0.00")}
#: What a customer pays after a fixed-term contract ends if they choose nothing (energy, monthly fee).
_DEFAULT_AFTER = {"FI": ("9.49", "4.90"), "SE": ("94.00", "49.00"), "NO": ("84.90", "49.00")}


def _texts(**texts: str) -> dict[str, str]:
    """A per-language text, keeping only the languages this installation knows."""
    return {lang: text for lang, text in texts.items() if lang in LANGUAGES}


#: Price element names; Finland-Swedish says "grundavgift" where Sweden says "fast avgift".
_ENERGY = _texts(fi="Energia", sv="Energi", en="Energy", nb="Strømpris")
_FEE = {
    "FI": _texts(fi="Perusmaksu", sv="Grundavgift", en="Standing charge", nb="Fastbeløp"),
    "SE": _texts(fi="Perusmaksu", sv="Fast avgift", en="Standing charge", nb="Fastbeløp"),
    "NO": _texts(fi="Perusmaksu", sv="Fast avgift", en="Standing charge", nb="Fastbeløp"),
}
_FIXED = {"FI": "Kiinteä 24", "SE": "Fast 24", "NO": "Fastpris 24"}
_OTHER = {"FI": "Tuuli 24", "SE": "Vind 24", "NO": "Vind 24"}
_CAMPAIGN = {"FI": "Tuuli 12", "SE": "Vind 12", "NO": "Vind 12"}
#: A Finnish retailer names its products in Swedish for its Swedish-speaking customers too.
_SWEDISH_IN_FI = {"Kiinteä 24": "Fast 24", "Tuuli 24": "Vind 24", "Tuuli 12": "Vind 12"}
_DEFAULT_PRODUCT = {
    "FI": _texts(fi="Perussähkö", sv="Bas-el", en="Basic electricity", nb="Basisstrøm"),
    "SE": _texts(fi="Tillsvidarepris", sv="Tillsvidarepris", en="Standard variable price", nb="Tillsvidarepris"),
    "NO": _texts(fi="Spotpris", sv="Spotpris", en="Spot price", nb="Spotpris"),
}
_SITE = {"FI": "https://energia.example.fi", "SE": "https://energi.example.se", "NO": "https://energi.example.no"}
#: The Swedish-language pages of the Finnish site (sv-FI readers get them, not the Finnish ones).
_SITE_SV_FI = "https://energia.example.fi/sv"
_RENEW_PATH = {"FI": "jatko", "SE": "fornya", "NO": "forny"}
_SURVEY_PATH = {"FI": "kysely", "SE": "enkat", "NO": "undersokelse"}
#: The Swedish jämförpris of the campaign (öre/kWh at 2,000, 5,000 and 20,000 kWh a year; SPEC §2).
_COMPARISON_SE = {"at_2000": "104.5", "at_5000": "80.8", "at_20000": "72.0"}
#: Norwegian marketing: contract type, binding period and exit fee (SPEC §2).
_TERMS_NO = {"contract_type": "variable", "binding_months": 24, "exit_fee": "299"}

SAMPLE_RECIPIENTS: dict[tuple[str, str], dict[str, Any]] = {
    ("fi", "FI"): {
        "id": "C-1001",
        "country": "FI",
        "language": "fi",
        "status": "active",
        "email": "matti.meikalainen@example.fi",
        "phone": "040 123 4567",
        "address": {
            "name": "Matti Meikäläinen",
            "street": "Mannerheimintie 12 B 7",
            "postal_code": "00100",
            "city": "Helsinki",
        },
        "newsletter": True,
    },
    ("sv", "FI"): {
        "id": "C-1002",
        "country": "FI",
        "language": "sv",
        "status": "active",
        "email": "anna.lindqvist@example.fi",
        "phone": "050 765 4321",
        "address": {"name": "Anna Lindqvist", "street": "Strandgatan 4", "postal_code": "65100", "city": "Vasa"},
        "newsletter": True,
    },
    ("sv", "SE"): {
        "id": "C-2001",
        "country": "SE",
        "language": "sv",
        "status": "active",
        "email": "karin.andersson@example.se",
        "phone": "070-123 45 67",
        "address": {"name": "Karin Andersson", "street": "Storgatan 5", "postal_code": "114 51", "city": "Stockholm"},
        "newsletter": True,
    },
    ("en", "NO"): {
        "id": "C-3001",
        "country": "NO",
        "language": "en",
        "status": "active",
        "email": "ola.nordmann@example.no",
        "phone": "412 34 567",
        "address": {"name": "Ola Nordmann", "street": "Karl Johans gate 22", "postal_code": "0159", "city": "Oslo"},
        "newsletter": True,
    },
    ("en", "FI"): {
        "id": "C-1003",
        "country": "FI",
        "language": "en",
        "status": "active",
        "email": "john.smith@example.fi",
        "phone": "+358 44 987 6543",
        "address": {"name": "John Smith", "street": "Hämeenkatu 3 A 5", "postal_code": "33100", "city": "Tampere"},
        "newsletter": True,
    },
}


if "nb" in LANGUAGES:
    SAMPLE_RECIPIENTS[("nb", "NO")] = {
        "id": "C-3002",
        "country": "NO",
        "language": "nb",
        "status": "active",
        "email": "kari.nordmann@example.no",
        "phone": "412 34 568",
        "address": {"name": "Kari Nordmann", "street": "Storgata 12", "postal_code": "0155", "city": "Oslo"},
        "newsletter": True,
    }


def sample_recipient(language: str, country: str) -> dict[str, Any]:
    """A sample recipient in ``country`` reading ``language``."""
    base = SAMPLE_RECIPIENTS.get((language, country))
    if base is None:
        base = dict(next(r for (lang, c), r in SAMPLE_RECIPIENTS.items() if c == country))
        base["language"] = language
    return dict(base)


def _elements(country: str, *, with_old: bool, prices: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    energy_unit, fee_unit = _UNITS[country]
    e_old, e_new, f_old, f_new = _PRICES[country]
    if prices is not None:
        e_new, f_new = prices
    energy: dict[str, Any] = {"name": dict(_ENERGY), "unit": energy_unit, "new": e_new}
    fee: dict[str, Any] = {"name": dict(_FEE[country]), "unit": fee_unit, "new": f_new}
    if with_old:
        energy["old"] = e_old
        fee["old"] = f_old
    return [energy, fee]


def sample_data(message_type: str, country: str = "FI", language: str | None = None) -> dict[str, Any]:
    """Realistic data for a built-in message type sent in ``country`` (to a reader of ``language``:
    Swedish-speaking Finns get the Swedish product names and pages)."""
    data = _sample_data(message_type, country)
    if language == "sv" and country == "FI":
        data = _in_swedish(data)
    return data


def _in_swedish(data: dict[str, Any]) -> dict[str, Any]:
    """Finnish sample data as a Finnish retailer gives it to its Swedish-speaking customers."""
    out = dict(data)
    for key in ("product", "current_product"):
        if key in out:
            out[key] = _SWEDISH_IN_FI.get(out[key], out[key])
    for key in ("offer_url", "survey_url", "terms_url"):
        if isinstance(out.get(key), str):
            out[key] = out[key].replace(_SITE["FI"], _SITE_SV_FI, 1)
    if "offer_url" in out:
        out["offer_url"] = out["offer_url"].replace("/jatko/", "/fortsatt/")
    if "survey_url" in out:
        out["survey_url"] = out["survey_url"].replace("/kysely/", "/enkat/")
    return out


def _sample_data(message_type: str, country: str) -> dict[str, Any]:
    samples: dict[str, dict[str, Any]] = {
        "contract_confirmation": {
            "signed_on": "2027-02-15",
            "product": _FIXED[country],
            "starts_on": "2027-03-01",
            "price_elements": _elements(country, with_old=False),
            "contract_number": "S-448812",
            "duration": 24,
            "ends_on": "2029-02-28",
        },
        "price_change": {
            "effective_on": "2027-05-01",
            "reason": _texts(
                fi="sähkön hankintakustannukset ovat nousseet",
                sv="kostnaderna för att köpa in el har stigit",
                en="the cost of buying electricity has risen",
                nb="kostnadene ved å kjøpe inn strøm har økt",
            ),
            "price_elements": _elements(country, with_old=True),
        },
        "terms_change": {
            "effective_on": "2027-06-01",
            "reason": _texts(
                fi="lainsäädäntö muuttuu",
                sv="lagstiftningen ändras",
                en="the law is changing",
                nb="regelverket endres",
            ),
            "changes": [
                _texts(
                    fi="Laskutusväli muuttuu kahdesta kuukaudesta yhteen kuukauteen.",
                    sv="Faktureringsperioden ändras från två månader till en månad.",
                    en="You will be billed every month instead of every two months.",
                    nb="Du får faktura hver måned i stedet for annenhver måned.",
                ),
                _texts(
                    fi="Paperilaskun lisämaksu poistuu.",
                    sv="Avgiften för pappersfaktura tas bort.",
                    en="The paper invoice fee is removed.",
                    nb="Gebyret for papirfaktura fjernes.",
                ),
            ],
        },
        "renewal_offer": {
            "current_ends_on": "2027-08-31",
            "current_product": _FIXED[country],
            "product": _FIXED[country],
            "respond_by": "2027-08-15",
            "price_elements": _elements(country, with_old=False),
            "duration": 24,
            "if_no_action": {
                "product": dict(_DEFAULT_PRODUCT[country]),
                "price_elements": _elements(country, with_old=False, prices=_DEFAULT_AFTER[country]),
                # An open-ended contract: no binding period, one month's notice.
                "binding_months": 0,
                "notice_months": 1,
            },
            "offer_url": f"{_SITE[country]}/{_RENEW_PATH[country]}/R-77120",
        },
        "newsletter": {
            "title": _texts(
                fi="Kevään energiauutiset", sv="Vårens energinyheter", en="Spring energy news", nb="Vårens energinytt"
            ),
            "sections": [
                {
                    "heading": _texts(
                        fi="Säästä sähköä keväällä",
                        sv="Spara el i vår",
                        en="Save energy this spring",
                        nb="Spar strøm i vår",
                    ),
                    "body": _texts(
                        fi="Pienillä muutoksilla voit pienentää sähkölaskuasi.",
                        sv="Med små förändringar kan du sänka din elräkning.",
                        en="Small changes can lower your electricity bill.",
                        nb="Små endringer kan gi lavere strømregning.",
                    ),
                },
                {
                    "heading": _texts(fi="Uusi sovellus", sv="Ny app", en="A new app", nb="Ny app"),
                    "body": _texts(
                        fi="Seuraa kulutustasi tunneittain uudessa sovelluksessamme.",
                        sv="Följ din förbrukning timme för timme i vår nya app.",
                        en="Follow your consumption hour by hour in our new app.",
                        nb="Følg forbruket ditt time for time i den nye appen vår.",
                    ),
                },
            ],
        },
        "marketing": {
            "campaign": "spring-2027",
            "product": _CAMPAIGN[country],
            "duration": 12,
            "offer_ends_on": "2027-04-30",
            "after_offer": _elements(country, with_old=False),
            "price_elements": [
                {**e, "new": promo}
                for e, promo in zip(_elements(country, with_old=False), _PROMO[country], strict=True)
            ],
        },
        "survey": {
            "contact_on": "2027-03-10",
            "survey_url": f"{_SITE[country]}/{_SURVEY_PATH[country]}/abc123",
        },
        "sales_offer": {
            "sold_on": "2027-01-08",
            "product": _FIXED[country],
            "price_elements": _elements(country, with_old=False),
            "duration": 24,
            "terms_url": f"{_SITE[country]}/terms",
            "valid_until": "2027-01-25",
            "offer_id": "01KA7Z3W5Q8N2M4R6T9V1X3Z5B",  # Dispatcher.offer() adds these three
            "accept_url": f"{_SITE[country]}/offer/01KA7Z3W5Q8N2M4R6T9V1X3Z5B.1bq2k3x.Ab3dEf5hIj7lMn9p",
            "accept_code_url": f"{_SITE[country]}/o/K7MQ2XWD9H",
        },
    }
    samples["marketing"].update(_marketing_country_data(country))
    try:
        return samples[message_type]
    except KeyError:
        raise KeyError(f"no sample data for message type {message_type!r}") from None


def _marketing_country_data(country: str) -> dict[str, Any]:
    """What marketing needs in ``country`` on top of the common fields (SPEC §2)."""
    if country == "SE":
        period = _texts(
            fi="toukokuu 2027 – huhtikuu 2028",
            sv="maj 2027–april 2028",
            en="May 2027 to April 2028",
            nb="mai 2027–april 2028",
        )
        return {"comparison_prices": {"period": period, **_COMPARISON_SE}}
    if country == "NO":
        return dict(_TERMS_NO)
    return {}


def sample_variants(
    message_type: str, country: str = "FI", language: str | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """Sample data sets that exercise a type's different cases, labelled.

    A renewal offering another product is decided as marketing (SPEC §2), so it is
    checked as well as the renewal of the same product.
    """
    data = sample_data(message_type, country, language)
    variants = [("sample", data)]
    if message_type == "renewal_offer":
        other = _OTHER[country]
        if language == "sv" and country == "FI":
            other = _SWEDISH_IN_FI.get(other, other)
        variants.append(("another product", {**data, "product": other}))
    if message_type == "sales_offer":
        variants.append(("fixed end", {**data, "duration": {"until": "2029-02-28"}, "starts_on": "2027-03-01"}))
    return variants


#: The variants of a sample message that change its legal text (SPEC §5 ``dispatch preview``).
PREVIEW_VARIANTS: dict[str, str] = {
    "business": "a business customer (prices without VAT, no withdrawal right)",
    "northern-norway": "a household in Northern Norway (no VAT on household electricity)",
    "other-product": "a renewal offering another product (decided as marketing: opt-out, jämförpris...)",
    "no-name": "a recipient whose name is not known",
}
#: A Northern Norway address (Tromsø: household electricity there is VAT-exempt).
_NORTH = {"street": "Storgata 1", "postal_code": "9008", "city": "Tromsø", "country": "NO"}


def apply_variant(
    variant: str, message_type: str, recipient: dict[str, Any], data: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``recipient`` and ``data`` changed as ``variant`` (a key of :data:`PREVIEW_VARIANTS`) says.

    Raises :class:`ValueError` naming the problem for an unknown variant, or one that does
    not apply to the type (another product for a type that has no current product).
    """
    recipient, data = dict(recipient), dict(data)
    if variant == "business":
        recipient["kind"] = "business"
    elif variant == "northern-norway":
        if recipient.get("country") != "NO":
            recipient["phone"] = "412 34 569"  # a Norwegian number for the Norwegian address
        recipient["country"] = "NO"
        recipient["address"] = {**(recipient.get("address") or {}), **_NORTH}
    elif variant == "other-product":
        if "current_product" not in data:
            raise ValueError(f"variant 'other-product' needs a type with current_product ({message_type} has none)")
        country = str(recipient.get("country") or "FI")
        other = _OTHER.get(country, "Tuuli 24")
        if recipient.get("language") == "sv" and country == "FI":
            other = _SWEDISH_IN_FI.get(other, other)
        data["product"] = other
    elif variant == "no-name":
        # The name comes with the postal address (SPEC §3): without one there is no name to greet.
        recipient["address"] = None
        recipient.pop("name", None)
    else:
        raise ValueError(f"unknown variant {variant!r} (known: {', '.join(PREVIEW_VARIANTS)})")
    return recipient, data
