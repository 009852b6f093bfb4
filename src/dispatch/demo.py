"""Generated sample customers and the demo scenario behind ``dispatch demo``.

The customers are realistic for Finland, Sweden and Norway — names, addresses,
phone numbers, languages — with a mix of statuses, consents, objections,
preferences and a few malformed rows, so that a run shows every part of the
pipeline: channels, languages, suppression reasons, and input errors.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from .policy.calendar import add_months
from .samples import sample_data

if TYPE_CHECKING:
    from .config import Config

_NAMES = {
    ("FI", "fi"): (
        [
            "Matti",
            "Anna",
            "Juha",
            "Laura",
            "Mikko",
            "Sanna",
            "Jari",
            "Tiina",
            "Ville",
            "Emilia",
            "Pekka",
            "Aino",
            "Antti",
            "Johanna",
            "Heikki",
            "Riikka",
        ],
        [
            "Virtanen",
            "Korhonen",
            "Mäkinen",
            "Nieminen",
            "Mäkelä",
            "Hämäläinen",
            "Laine",
            "Heikkinen",
            "Koskinen",
            "Järvinen",
            "Lehtonen",
            "Saarinen",
        ],
    ),
    ("FI", "sv"): (
        ["Johan", "Anna", "Erik", "Maria", "Fredrik", "Sofia", "Mikael", "Linnea"],
        ["Lindqvist", "Nyström", "Holmberg", "Sundström", "Björklund", "Eklund", "Wikström"],
    ),
    ("SE", "sv"): (
        ["Erik", "Karin", "Lars", "Eva", "Anders", "Maria", "Johan", "Sara", "Per", "Elin", "Olof", "Ingrid"],
        ["Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson", "Persson", "Svensson"],
    ),
    ("NO", "nb"): (
        ["Ola", "Kari", "Lars", "Ingrid", "Per", "Anne", "Hans", "Silje", "Jonas", "Ida", "Magnus", "Nora"],
        ["Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Kristiansen", "Jensen"],
    ),
    ("*", "en"): (
        ["John", "Emily", "James", "Olivia", "David", "Sophie", "Daniel", "Grace"],
        ["Smith", "Brown", "Taylor", "Wilson", "Evans", "Walker", "Hughes"],
    ),
}
_PLACES = {
    "FI": [
        ("Mannerheimintie", "00100", "Helsinki"),
        ("Hämeenkatu", "33100", "Tampere"),
        ("Aurakatu", "20100", "Turku"),
        ("Kauppakatu", "40100", "Jyväskylä"),
        ("Isokatu", "90100", "Oulu"),
        ("Hovioikeudenpuistikko", "65100", "Vaasa"),
        ("Länsiväylä", "02160", "Espoo"),
    ],
    "SE": [
        ("Storgatan", "11451", "Stockholm"),
        ("Kungsgatan", "41119", "Göteborg"),
        ("Södra Förstadsgatan", "21143", "Malmö"),
        ("Dragarbrunnsgatan", "75320", "Uppsala"),
        ("Rådhusgatan", "90326", "Umeå"),
    ],
    "NO": [
        ("Karl Johans gate", "0159", "Oslo"),
        ("Torgallmenningen", "5014", "Bergen"),
        ("Munkegata", "7011", "Trondheim"),
        ("Kirkegata", "4006", "Stavanger"),
        ("Storgata", "9008", "Tromsø"),
    ],
}
_DOMAINS = {"FI": "example.fi", "SE": "example.se", "NO": "example.no"}


def _phone(rng: random.Random, country: str, mobile: bool = True) -> str:
    if country == "FI":
        return (
            f"0{rng.choice(['40', '44', '45', '50'])} {rng.randint(100, 999)} {rng.randint(1000, 9999)}"
            if mobile
            else f"09 {rng.randint(2000, 8999)} {rng.randint(1000, 9999)}"
        )
    if country == "SE":
        return (
            f"07{rng.choice('0236')}-{rng.randint(100, 999)} {rng.randint(10, 99)} {rng.randint(10, 99)}"
            if mobile
            else f"08-{rng.randint(100, 999)} {rng.randint(10, 99)} {rng.randint(10, 99)}"
        )
    return (
        f"{rng.choice(['41', '46', '90', '92', '98'])}{rng.randint(0, 9)} {rng.randint(10, 99)} {rng.randint(100, 999)}"
        if mobile
        else f"22 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}"
    )


def generate_customers(count: int, *, today: date, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` customers across FI/SE/NO with a realistic mix of everything SPEC §3 holds."""
    rng = random.Random(seed)
    out = []
    for n in range(1, count + 1):
        country = rng.choices(["FI", "SE", "NO"], weights=[50, 30, 20])[0]
        language = {
            "FI": rng.choices(["fi", "sv", "en"], weights=[82, 12, 6])[0],
            "SE": rng.choices(["sv", "en"], weights=[92, 8])[0],
            "NO": rng.choices(["nb", "en"], weights=[90, 10])[0],
        }[country]
        first_names, last_names = _NAMES.get((country, language)) or _NAMES[("*", "en")]
        first, last = rng.choice(first_names), rng.choice(last_names)
        street, postal, city = rng.choice(_PLACES[country])
        status = rng.choices(["active", "former", "prospect"], weights=[75, 10, 15])[0]
        age_days = rng.randint(16 * 365, 88 * 365) if rng.random() > 0.02 else rng.randint(16 * 365, 17 * 365)
        person: dict[str, Any] = {
            "id": f"{country}-{n:06d}",
            "country": country,
            "language": language,
            "kind": "business" if rng.random() < 0.06 else "household",
            "status": status,
            "birth_date": (today - timedelta(days=age_days)).isoformat(),
            "email": None
            if rng.random() < 0.1
            else f"{first}.{last}{n}@{_DOMAINS[country]}".lower().replace("ä", "a").replace("ö", "o").replace("å", "a"),
            "phone": _phone(rng, country, mobile=rng.random() > 0.08),
            "address": None
            if rng.random() < 0.03
            else {
                "name": f"{first} {last}",
                "street": f"{street} {rng.randint(1, 80)}",
                "postal_code": postal,
                "city": city,
            },
            "newsletter": rng.random() < 0.35,
            "marketing_blocked": rng.random() < 0.05,
        }
        if n % 5:  # four in five have a national id on file (for digital mailboxes, SPEC §6); no draw from rng
            person["national_id"] = demo_national_id(country, today - timedelta(days=age_days), n)
        if status == "former":
            person["last_invoice_paid_on"] = (today - timedelta(days=rng.randint(20, 900))).isoformat()
        if status == "prospect":
            person["data_verified_on"] = (today - timedelta(days=rng.randint(5, 280))).isoformat()
        consents = []
        if rng.random() < 0.4:
            at = today - timedelta(days=rng.randint(30, 900))
            consents.append(
                {
                    "purpose": "marketing",
                    "channel": "email",
                    "granted": True,
                    "at": at.isoformat(),
                    "source": "web_form",
                }
            )
            if rng.random() < 0.1:
                consents.append(
                    {
                        "purpose": "marketing",
                        "channel": "email",
                        "granted": False,
                        "at": (at + timedelta(days=rng.randint(1, 25))).isoformat(),
                        "source": "unsubscribe_link",
                    }
                )
        if rng.random() < 0.2:
            consents.append(
                {
                    "purpose": "marketing",
                    "channel": "sms",
                    "granted": True,
                    "at": (today - timedelta(days=rng.randint(30, 600))).isoformat(),
                    "source": "web_form",
                }
            )
        if consents:
            person["consents"] = consents
        roll = rng.random()
        if roll < 0.10:
            person["preferred_channels"] = {"default": "letter"}
        elif roll < 0.18:
            person["preferred_channels"] = {"price_change": "sms", "default": "email"}
        elif roll < 0.22:
            person["preferred_channels"] = {"marketing": "sms"}
        if rng.random() < 0.002:
            person["phone"] = "12345"  # a malformed row, as real files have
        if rng.random() < 0.001:
            person["country"] = "DK"
        out.append(person)
    return out


def demo_national_id(country: str, born: date, n: int) -> str:
    """A valid (checksummed) made-up national id for a demo customer born on ``born``."""
    from stdnum import luhn
    from stdnum.no import fodselsnummer

    serial = 2 + n % 497  # 002-498: ordinary numbers in every country's range for the 1900s
    if country == "FI":
        body = f"{born:%d%m%y}{'A' if born.year >= 2000 else '-'}{serial:03d}"
        return body + "0123456789ABCDEFHJKLMNPRSTUVWXY"[int(body[:6] + body[7:]) % 31]
    if country == "SE":
        base = f"{born:%y%m%d}{serial:03d}"
        return f"{born.year // 100}{base}{luhn.calc_check_digit(base)}"
    for offset in range(500):  # NO: a check digit of 10 is never issued; take the next individual number
        base = f"{born:%d%m%y}{(serial + offset) % 500 + (500 if born.year >= 2000 else 0):03d}"
        first = fodselsnummer.calc_check_digit1(base)
        if len(first) == 1 and len(second := fodselsnummer.calc_check_digit2(base + first)) == 1:
            return base + first + second
    raise AssertionError("no valid fødselsnummer for that day")


@dataclass(frozen=True)
class DemoStep:
    """One campaign of the demo: a type, its data, and who receives it."""

    title: str
    message_type: str
    data: dict[str, Any]
    country: str | None
    select: Any  # (customer) -> bool


def demo_steps(today: date, rng_seed: int = 11) -> list[DemoStep]:
    """The demo scenario: notices per country, a campaign, a newsletter, and service messages."""
    rng = random.Random(rng_seed)
    effective = add_months(date(today.year, today.month, 1), 3)
    steps: list[DemoStep] = []
    for country in ("FI", "SE", "NO"):
        data = sample_data("price_change", country)
        data["effective_on"] = effective.isoformat()
        steps.append(
            DemoStep(
                f"Price change notice ({country})", "price_change", data, country, lambda c: c.get("status") == "active"
            )
        )
    for country in ("FI", "SE", "NO"):
        data = sample_data("marketing", country)
        data["offer_ends_on"] = (today + timedelta(days=30)).isoformat()
        steps.append(DemoStep(f"Spring campaign ({country})", "marketing", data, country, lambda c: True))
    steps.append(DemoStep("Newsletter", "newsletter", sample_data("newsletter"), None, lambda c: True))
    survey = sample_data("survey")
    survey["contact_on"] = (today - timedelta(days=1)).isoformat()
    steps.append(
        DemoStep(
            "Customer survey",
            "survey",
            survey,
            None,
            lambda c, r=rng: c.get("status") == "active" and r.random() < 0.05,
        )
    )
    for country in ("FI", "SE", "NO"):
        confirmation = sample_data("contract_confirmation", country)
        confirmation["signed_on"] = (today - timedelta(days=1)).isoformat()
        confirmation["starts_on"] = add_months(today, 1).isoformat()
        steps.append(
            DemoStep(
                f"Contract confirmations ({country})",
                "contract_confirmation",
                confirmation,
                country,
                lambda c, r=rng: c.get("status") == "active" and r.random() < 0.03,
            )
        )
        renewal = sample_data("renewal_offer", country)
        # 75 days: inside Sweden's 90-to-60-day window for telling a fixed-term customer (issue 20).
        renewal["current_ends_on"] = (today + timedelta(days=75)).isoformat()
        renewal["respond_by"] = (today + timedelta(days=61)).isoformat()
        steps.append(
            DemoStep(
                f"Renewal offers ({country})",
                "renewal_offer",
                renewal,
                country,
                lambda c, r=rng: c.get("status") == "active" and r.random() < 0.08,
            )
        )
    return steps


def run_id(now: datetime) -> str:
    return "demo-" + now.strftime("%Y%m%d%H%M%S")


#: Left in the folder by ``dispatch demo``: what it made, so the next run can start clean.
MARKER = ".dispatch-demo.json"


@dataclass(frozen=True)
class DemoFolder:
    """What a previous demo left in the folder, and what this run does about it."""

    removed: list[str]
    kept: list[str]


def prepare_folder(config: Config) -> DemoFolder:
    """Start clean: remove what an earlier demo made (its SQLite store and outbox); keep everything else.

    Only files the earlier run recorded in its marker are removed, and only a SQLite
    store — a server database is never touched (its earlier demo runs stay in it,
    under their own campaign ids). What is kept is listed, so the demo can say so.
    """
    base = Path(config.base_dir)
    store = _sqlite_file(config.store.url, base)
    outbox = config.path(config.outbox).resolve()
    marker = base / MARKER
    removed: list[str] = []
    kept: list[str] = []
    made: dict[str, Any] = {}
    if marker.is_file():
        try:
            made = json.loads(marker.read_text(encoding="utf-8"))
        except ValueError:
            made = {}
    if store is not None and made.get("store") == str(store):
        for path in (store, store.with_name(store.name + "-wal"), store.with_name(store.name + "-shm")):
            if path.exists():
                path.unlink()
        removed.append(str(store))
    elif store is not None and store.exists():
        kept.append(str(store))
    elif store is None:
        kept.append(_safe_url(config.store.url))
    if made.get("outbox") == str(outbox) and outbox.is_dir():
        shutil.rmtree(outbox)
        removed.append(str(outbox))
    elif outbox.is_dir() and any(outbox.iterdir()):
        kept.append(str(outbox))
    return DemoFolder(removed, kept)


def mark_folder(config: Config, run: str, folder: DemoFolder) -> None:
    """Record what this demo made (not what it found and kept), for :func:`prepare_folder` on the next run."""
    store = _sqlite_file(config.store.url, Path(config.base_dir))
    outbox = str(config.path(config.outbox).resolve())
    record = {
        "run": run,
        "store": str(store) if store and str(store) not in folder.kept else None,
        "outbox": outbox if outbox not in folder.kept else None,
    }
    (Path(config.base_dir) / MARKER).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _sqlite_file(url: str, base: Path) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    path = Path(parsed.database).expanduser()
    return (path if path.is_absolute() else Path.cwd() / path).resolve()


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
