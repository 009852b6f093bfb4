"""Sample recipients and message data: for ``templates check``, ``preview`` and the demo.

The data is realistic for each country (units and currencies differ) and uses
per-language texts where a company would give them.
"""

from __future__ import annotations

from typing import Any

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
_ENERGY = {"fi": "Energia", "sv": "Energi", "nb": "Strømpris", "en": "Energy"}
_FEE = {"fi": "Perusmaksu", "sv": "Fast avgift", "nb": "Fastbeløp", "en": "Standing charge"}

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
    ("nb", "NO"): {
        "id": "C-3002",
        "country": "NO",
        "language": "nb",
        "status": "active",
        "email": "kari.nordmann@example.no",
        "phone": "987 65 432",
        "address": {"name": "Kari Nordmann", "street": "Storgata 14", "postal_code": "0184", "city": "Oslo"},
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


def sample_recipient(language: str, country: str) -> dict[str, Any]:
    """A sample recipient in ``country`` reading ``language``."""
    base = SAMPLE_RECIPIENTS.get((language, country))
    if base is None:
        base = dict(next(r for (lang, c), r in SAMPLE_RECIPIENTS.items() if c == country))
        base["language"] = language
    return dict(base)


def _elements(country: str, *, with_old: bool) -> list[dict[str, Any]]:
    energy_unit, fee_unit = _UNITS[country]
    e_old, e_new, f_old, f_new = _PRICES[country]
    energy: dict[str, Any] = {"name": dict(_ENERGY), "unit": energy_unit, "new": e_new}
    fee: dict[str, Any] = {"name": dict(_FEE), "unit": fee_unit, "new": f_new}
    if with_old:
        energy["old"] = e_old
        fee["old"] = f_old
    return [energy, fee]


def sample_data(message_type: str, country: str = "FI") -> dict[str, Any]:
    """Realistic data for a built-in message type sent in ``country``."""
    samples: dict[str, dict[str, Any]] = {
        "contract_confirmation": {
            "signed_on": "2027-02-15",
            "product": "Kiinteä 24" if country == "FI" else ("Fast 24" if country == "SE" else "Fastpris 24"),
            "starts_on": "2027-03-01",
            "price_elements": _elements(country, with_old=False),
            "contract_number": "S-448812",
        },
        "price_change": {
            "effective_on": "2027-05-01",
            "reason": {
                "fi": "sähkön hankintakustannukset ovat nousseet",
                "sv": "kostnaderna för att köpa in el har stigit",
                "nb": "kostnadene ved innkjøp av strøm har økt",
                "en": "the cost of buying electricity has risen",
            },
            "price_elements": _elements(country, with_old=True),
        },
        "terms_change": {
            "effective_on": "2027-06-01",
            "reason": {
                "fi": "lainsäädäntö muuttuu",
                "sv": "lagstiftningen ändras",
                "nb": "regelverket endres",
                "en": "the law is changing",
            },
            "changes": [
                {
                    "fi": "Laskutusväli muuttuu kahdesta kuukaudesta yhteen kuukauteen.",
                    "sv": "Faktureringsperioden ändras från två månader till en månad.",
                    "nb": "Du får faktura hver måned i stedet for annenhver måned.",
                    "en": "You will be billed every month instead of every two months.",
                },
                {
                    "fi": "Paperilaskun lisämaksu poistuu.",
                    "sv": "Tillägget för pappersfaktura tas bort.",
                    "nb": "Gebyret for papirfaktura fjernes.",
                    "en": "The paper invoice fee is removed.",
                },
            ],
        },
        "renewal_offer": {
            "current_ends_on": "2027-08-31",
            "current_product": "Kiinteä 24" if country == "FI" else ("Fast 24" if country == "SE" else "Fastpris 24"),
            "product": "Kiinteä 24" if country == "FI" else ("Fast 24" if country == "SE" else "Fastpris 24"),
            "respond_by": "2027-08-15",
            "price_elements": _elements(country, with_old=False),
        },
        "newsletter": {
            "title": {
                "fi": "Kevään energiauutiset",
                "sv": "Vårens energinyheter",
                "nb": "Strømnytt for våren",
                "en": "Spring energy news",
            },
            "sections": [
                {
                    "heading": {
                        "fi": "Säästä sähköä keväällä",
                        "sv": "Spara el i vår",
                        "nb": "Spar strøm i vår",
                        "en": "Save energy this spring",
                    },
                    "body": {
                        "fi": "Pienillä muutoksilla voit pienentää sähkölaskuasi.",
                        "sv": "Med små förändringar kan du sänka din elräkning.",
                        "nb": "Med små grep kan du få ned strømregningen.",
                        "en": "Small changes can lower your electricity bill.",
                    },
                },
                {
                    "heading": {"fi": "Uusi sovellus", "sv": "Ny app", "nb": "Ny app", "en": "A new app"},
                    "body": {
                        "fi": "Seuraa kulutustasi tunneittain uudessa sovelluksessamme.",
                        "sv": "Följ din förbrukning timme för timme i vår nya app.",
                        "nb": "Følg strømforbruket ditt time for time i den nye appen vår.",
                        "en": "Follow your consumption hour by hour in our new app.",
                    },
                },
            ],
        },
        "marketing": {
            "campaign": "spring-2027",
            "product": "Tuuli 12" if country == "FI" else "Vind 12",
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
            "survey_url": "https://energia.example.fi/kysely/abc123",
        },
    }
    try:
        return samples[message_type]
    except KeyError:
        raise KeyError(f"no sample data for message type {message_type!r}") from None
