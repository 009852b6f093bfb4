"""Helpers for the policy tests: ``decide()`` with the default configuration.

``kit.decide("marketing", person("SE", status="prospect"), at("SE", 2026, 3, 2, 10))``
parses the recipient mapping with :func:`parse_recipient`, validates the type's
sample data (with overrides) and calls the pure :func:`dispatch.policy.decide` with
settings from the default :class:`PolicyConfig`, language chains from the default
:class:`LanguagesConfig`, the built-in registers, an address probe like the
channels' and a template probe that finds every template.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dispatch.config import LanguagesConfig, PolicyConfig
from dispatch.messages import BUILTIN_TYPES, MessageType, validate_data
from dispatch.models import Consent, Decision, Recipient
from dispatch.policy import Contact, Facts, LanguageChains, PolicySettings, RegisterInfo, decide
from dispatch.recipients import parse_recipient
from dispatch.samples import sample_data
from dispatch_registers import BUILTIN_REGISTERS

TZ = {"FI": ZoneInfo("Europe/Helsinki"), "SE": ZoneInfo("Europe/Stockholm"), "NO": ZoneInfo("Europe/Oslo")}
TYPES: dict[str, MessageType] = {t.name: t for t in BUILTIN_TYPES}
MARKETING_TYPES = ("marketing",)
STATUTORY_TYPES = ("contract_confirmation", "price_change", "terms_change")

#: One complete recipient per country: email, a mobile phone and a postal address.
_BASE: dict[str, dict[str, Any]] = {
    "FI": {
        "id": "C-FI",
        "country": "FI",
        "status": "active",
        "email": "matti@example.fi",
        "phone": "+358401234567",
        "address": {
            "name": "Matti Meikäläinen",
            "street": "Mannerheimintie 1",
            "postal_code": "00100",
            "city": "Helsinki",
        },
    },
    "SE": {
        "id": "C-SE",
        "country": "SE",
        "status": "active",
        "email": "karin@example.se",
        "phone": "+46701234567",
        "address": {"name": "Karin Andersson", "street": "Storgatan 5", "postal_code": "11451", "city": "Stockholm"},
    },
    "NO": {
        "id": "C-NO",
        "country": "NO",
        "status": "active",
        "email": "ola@example.no",
        "phone": "+4741234567",
        "address": {"name": "Ola Nordmann", "street": "Karl Johans gate 22", "postal_code": "0159", "city": "Oslo"},
    },
}
#: Fixed-line numbers (no SMS).
LANDLINE = {"FI": "+358921234567", "SE": "+4681234567", "NO": "+4722123456"}


def at(country: str, year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    """A moment in the country's time zone."""
    return datetime(year, month, day, hour, minute, tzinfo=TZ[country])


def person(country: str = "FI", **fields: Any) -> dict[str, Any]:
    """The country's base recipient mapping with ``fields`` replaced (``None`` clears a field)."""
    mapping = dict(_BASE[country])
    mapping.update(fields)
    return mapping


def consent(
    channel: str, granted: bool, when: datetime | str, purpose: str = "marketing", source: str = "import"
) -> dict[str, Any]:
    """A consent entry as a recipient mapping carries it."""
    moment = when.isoformat() if isinstance(when, datetime) else when
    return {"purpose": purpose, "channel": channel, "granted": granted, "at": moment, "source": source}


def ledger(channel: str, granted: bool, when: datetime, purpose: str = "marketing") -> Consent:
    """A consent ledger entry (preference centre, one-click unsubscribe, SMS STOP)."""
    return Consent(purpose=purpose, channel=channel, granted=granted, at=when, source="ledger")


def contacts(*moments: datetime, category: str = "marketing", channel: str = "email") -> tuple[Contact, ...]:
    """Earlier messages of ``category`` at ``moments``."""
    return tuple(Contact(at=m, message_type=category, channel=channel, category=category) for m in moments)


def days_before(moment: datetime, *days: float) -> tuple[datetime, ...]:
    return tuple(moment - timedelta(days=d) for d in days)


def address_probe(channel: str, recipient: Recipient) -> Any:
    """Like the built-in channels: email address, mobile number, any number, postal address."""
    if channel == "email":
        return recipient.email
    if channel == "sms":
        return recipient.phone if recipient.phone_is_mobile else None
    if channel == "phone":
        return recipient.phone
    if channel == "letter":
        return recipient.address.as_dict() if recipient.address else None
    return None


def all_parts(message_type: str, channel: str, language: str) -> bool:
    return True


def parts_only_in(*languages: str) -> Callable[[str, str, str], bool]:
    """A template probe that finds templates in ``languages`` only."""
    return lambda message_type, channel, language: language in languages


def default_settings() -> PolicySettings:
    return PolicySettings.from_config(PolicyConfig())


def default_chains() -> LanguageChains:
    languages = LanguagesConfig()
    return LanguageChains(
        fallback={k: tuple(v) for k, v in languages.fallback.items()},
        statutory={k: tuple(v) for k, v in languages.statutory.items()},
    )


REGISTERS: dict[str, RegisterInfo] = {
    cls.name: RegisterInfo(cls.name, cls.country, tuple(cls.channels)) for cls in BUILTIN_REGISTERS
}


class Kit:
    """Calls ``decide()`` with the default settings; everything can be overridden per call."""

    def __init__(self, settings: PolicySettings | None = None) -> None:
        self.settings = settings or default_settings()
        self.chains = default_chains()
        self.registers = REGISTERS

    def data(self, type_name: str, country: str = "FI", **overrides: Any):
        values = dict(sample_data(type_name, country))
        values.update(overrides)
        return validate_data(TYPES[type_name], values)

    def decide(
        self,
        type_name: str,
        recipient: Mapping[str, Any] | Recipient,
        now: datetime,
        *,
        data: Mapping[str, Any] | None = None,
        history: Iterable[Contact] = (),
        ledger: Iterable[Consent] = (),
        listed_on: Iterable[str] = (),
        registers_as_of: Mapping[str, datetime] | None = None,
        suppressed: Iterable[str] = (),
        has_parts: Callable[[str, str, str], bool] = all_parts,
        address: Callable[[str, Recipient], Any] = address_probe,
    ) -> Decision:
        """Decide; ``registers_as_of`` defaults to every built-in register loaded fresh at ``now``."""
        who = parse_recipient(recipient)
        overrides = dict(data or {})
        if type_name == "renewal_offer" and "current_ends_on" not in overrides:
            # Within Sweden's 90-to-60-day renewal window (issue 20), so timing tests test only timing.
            overrides["current_ends_on"] = (now.date() + timedelta(days=75)).isoformat()
            overrides.setdefault("respond_by", (now.date() + timedelta(days=60)).isoformat())
        values = self.data(type_name, who.country, **overrides)
        loaded = {name: now for name in self.registers} if registers_as_of is None else registers_as_of
        return decide(
            TYPES[type_name],
            who,
            values,
            now,
            settings=self.settings,
            chains=self.chains,
            address=address,
            has_parts=has_parts,
            facts=Facts(tuple(history), tuple(ledger), frozenset(listed_on), loaded, frozenset(suppressed)),
            registers=self.registers,
        )


def iso(day: date) -> str:
    return day.isoformat()
