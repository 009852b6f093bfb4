"""Turn a recipient mapping (SPEC §3) into a validated :class:`~dispatch.models.Recipient`.

Every problem is collected and raised at once in one :class:`InvalidRecipient`, so a
caller fixing a CSV row sees the whole list, not the first complaint.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from .errors import InvalidRecipient, UnsupportedCountry, UnsupportedLanguage
from .models import ALL_CHANNELS, COUNTRIES, KINDS, LANGUAGES, STATUSES, Address, Consent, Recipient

DEFAULT_LANGUAGE = {"FI": "fi", "SE": "sv", "NO": "nb"}

_POSTAL_CODE = {
    "FI": re.compile(r"^\d{5}$"),
    "SE": re.compile(r"^\d{5}$"),
    "NO": re.compile(r"^\d{4}$"),
}
_POSTAL_PREFIX = re.compile(r"^(FI|SE|S|NO|N)-")
_MOBILE_TYPES = frozenset({phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE})
_TRUE = {"true", "1", "yes", "y"}
_FALSE = {"false", "0", "no", "n", ""}


def parse_recipient(
    value: Mapping[str, Any] | Recipient,
    *,
    channels: Collection[str] | None = None,
    default_language: Mapping[str, str] = DEFAULT_LANGUAGE,
) -> Recipient:
    """Validate a recipient mapping and return a normalised :class:`Recipient`.

    Phone numbers are parsed for the recipient's country and stored as E.164,
    emails are checked for syntax (no DNS), dates parsed. ``channels`` (the known
    channel names) lets preferred channels be checked too. A :class:`Recipient`
    passes through unchanged.
    """
    if isinstance(value, Recipient):
        return value
    if not isinstance(value, Mapping):
        raise InvalidRecipient(f"recipient must be a mapping, not {type(value).__name__}")
    problems: list[str] = []
    rid = value.get("id")
    if rid is None or str(rid).strip() == "":
        problems.append("id is missing")
        rid = ""
    rid = str(rid).strip()
    label = f"recipient {rid!r}" if rid else "recipient"

    country = _upper(value.get("country"))
    bad_country = False
    if country is None:
        problems.append("country is missing (FI, SE or NO)")
        bad_country = True
    elif country not in COUNTRIES:
        problems.append(f"country {value.get('country')!r} is not supported (FI, SE or NO)")
        bad_country = True

    language_raw = value.get("language")
    bad_language = False
    language_given = language_raw not in (None, "")
    if language_given:
        language = str(language_raw).strip().lower()
        if language not in LANGUAGES:
            problems.append(f"language {language_raw!r} is not supported (fi, sv, nb or en)")
            bad_language = True
    else:
        language = default_language.get(country or "", "en")

    kind = value.get("kind") or "household"
    if kind not in KINDS:
        problems.append(f"kind {kind!r} must be household or business")
    status = value.get("status") or None
    if status is not None and status not in STATUSES:
        problems.append(f"status {status!r} must be prospect, active or former")

    birth_date = _date(value, "birth_date", problems)
    last_paid = _date(value, "last_invoice_paid_on", problems)
    verified = _date(value, "data_verified_on", problems)
    email = _email(value.get("email"), problems)
    phone, is_mobile = _phone(value.get("phone"), country if not bad_country else None, problems)
    address = _address(value.get("address"), country, problems)
    preferred = _preferences(value.get("preferred_channels"), channels, problems)
    consents = _consents(value.get("consents"), channels, problems)
    blocked = _bool(value, "marketing_blocked", problems)
    newsletter = _bool(value, "newsletter", problems, default=None)

    if problems:
        if bad_country and len(problems) == 1:
            raise UnsupportedCountry(f"{label}: {problems[0]}", problems)
        if bad_language and len(problems) == 1:
            raise UnsupportedLanguage(f"{label}: {problems[0]}", problems)
        raise InvalidRecipient(f"{label} is invalid:", problems)
    return Recipient(
        id=rid,
        country=country,  # type: ignore[arg-type]
        language=language,
        kind=kind,
        status=status,  # type: ignore[arg-type]
        birth_date=birth_date,
        last_invoice_paid_on=last_paid,
        data_verified_on=verified,
        email=email,
        phone=phone,
        phone_is_mobile=is_mobile,
        address=address,
        preferred_channels=preferred,
        consents=consents,
        marketing_blocked=blocked,
        newsletter=newsletter,
    )


def parse_date(raw: Any) -> date:
    """Parse an ISO date string, a ``date`` or a ``datetime`` (its date) into a ``date``."""
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str):
        return date.fromisoformat(raw.strip())
    raise ValueError(f"not a date: {raw!r}")


def parse_moment(raw: Any) -> datetime:
    """Parse an ISO datetime or date into an aware datetime (naive values are UTC)."""
    if isinstance(raw, datetime):
        moment = raw
    elif isinstance(raw, date):
        moment = datetime.combine(raw, time(0))
    elif isinstance(raw, str):
        text = raw.strip()
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    else:
        raise ValueError(f"not a date or time: {raw!r}")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def normalise_phone(raw: str, country: str | None) -> str:
    """Return ``raw`` as an E.164 number, or raise ``ValueError`` naming the problem."""
    return _parse_phone(raw, country)[0]


def _parse_phone(text: str, country: str | None) -> tuple[str, bool]:
    """(E.164, is it a mobile number) for ``text`` read in ``country``; ``ValueError`` if invalid."""
    try:
        number = phonenumbers.parse(text, country)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"phone {text!r} cannot be parsed: {exc}") from None
    # number_type() does the matching is_valid_number() would do; one pass instead of two.
    kind = phonenumbers.number_type(number)
    if kind == phonenumbers.PhoneNumberType.UNKNOWN or not phonenumbers.region_code_for_number(number):
        raise ValueError(f"phone {text!r} is not a valid number for {country or 'its country'}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), kind in _MOBILE_TYPES


def normalise_address_key(name: str, street: str, postal_code: str) -> str:
    """A matching key for an address: case-folded, punctuation and spacing removed.

    Used to match recipients against name+address do-not-contact registers.
    """
    parts = [name, street, postal_code]
    return "|".join(re.sub(r"[\W_]+", "", p.casefold()) for p in parts)


def _upper(raw: Any) -> str | None:
    if raw is None or str(raw).strip() == "":
        return None
    return str(raw).strip().upper()


def _date(value: Mapping[str, Any], key: str, problems: list[str]) -> date | None:
    raw = value.get(key)
    if raw is None or raw == "":
        return None
    try:
        return parse_date(raw)
    except (ValueError, TypeError):
        problems.append(f"{key} {raw!r} is not a date (use YYYY-MM-DD)")
        return None


def _bool(value: Mapping[str, Any], key: str, problems: list[str], default: bool | None = False) -> bool | None:
    raw = value.get(key)
    if isinstance(raw, bool):
        return raw
    if raw is None:
        return default
    if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
        return raw.strip().lower() in _TRUE
    problems.append(f"{key} {raw!r} must be true or false")
    return False


#: A plain ASCII dot-atom local part (RFC 5322), the overwhelmingly common case.
_DOT_ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")


@lru_cache(maxsize=8192)
def _email_domain(domain: str) -> str:
    """email-validator's verdict on a domain (normalised), cached: a bulk file has few domains."""
    return validate_email("a@" + domain, check_deliverability=False).domain


def _email(raw: Any, problems: list[str]) -> str | None:
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return None
    if not isinstance(raw, str):
        problems.append(f"email {raw!r} must be a string")
        return None
    text = raw.strip()
    local, at, domain = text.rpartition("@")
    try:
        if at and len(local) <= 64 and len(text) <= 254 and _DOT_ATOM.match(local):
            return f"{local}@{_email_domain(domain)}"
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        problems.append(f"email {raw!r} is invalid: {exc}")
        return None


def _phone(raw: Any, country: str | None, problems: list[str]) -> tuple[str | None, bool]:
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return None, False
    if not isinstance(raw, str | int):
        problems.append(f"phone {raw!r} must be a string")
        return None, False
    try:
        return _parse_phone(str(raw).strip(), country)
    except ValueError as exc:
        problems.append(str(exc))
        return None, False


def _address(raw: Any, country: str | None, problems: list[str]) -> Address | None:
    if raw is None or raw == {}:
        return None
    if not isinstance(raw, Mapping):
        problems.append("address must be a mapping with name, street, postal_code, city")
        return None
    values = {k: " ".join(str(raw.get(k) or "").split()) for k in ("name", "street", "postal_code", "city")}
    missing = [k for k, v in values.items() if not v]
    if missing:
        problems.append("address is missing " + ", ".join(missing))
        return None
    addr_country = _upper(raw.get("country")) or country or ""
    postal = _POSTAL_PREFIX.sub("", values["postal_code"].replace(" ", "").upper())
    pattern = _POSTAL_CODE.get(addr_country)
    if pattern and not pattern.match(postal):
        problems.append(f"address postal_code {values['postal_code']!r} is not valid for {addr_country}")
        return None
    return Address(values["name"], values["street"], postal, values["city"], addr_country)


def _preferences(raw: Any, channels: Collection[str] | None, problems: list[str]) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.append("preferred_channels must be a mapping like {'default': 'email'}")
        return {}
    out: dict[str, str] = {}
    for key, channel in raw.items():
        if channel is None or channel == "":
            continue
        if channels is not None and channel not in channels:
            problems.append(f"preferred_channels[{key!r}] names unknown channel {channel!r}")
            continue
        out[str(key)] = str(channel)
    return out


def _consents(raw: Any, channels: Collection[str] | None, problems: list[str]) -> tuple[Consent, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple):
        problems.append("consents must be a list")
        return ()
    out: list[Consent] = []
    for i, entry in enumerate(raw):
        where = f"consents[{i}]"
        if isinstance(entry, Consent):
            out.append(entry)
            continue
        if not isinstance(entry, Mapping):
            problems.append(f"{where} must be a mapping")
            continue
        purpose = entry.get("purpose")
        if not purpose:
            problems.append(f"{where}.purpose is missing")
            continue
        channel = entry.get("channel") or ALL_CHANNELS
        if channels is not None and channel != ALL_CHANNELS and channel not in channels:
            problems.append(f"{where}.channel {channel!r} is not a known channel")
            continue
        granted = entry.get("granted")
        if not isinstance(granted, bool):
            problems.append(f"{where}.granted must be true or false")
            continue
        try:
            at = parse_moment(entry.get("at"))
        except (ValueError, TypeError):
            problems.append(f"{where}.at {entry.get('at')!r} is not a date or time")
            continue
        out.append(
            Consent(
                purpose=str(purpose),
                channel=str(channel),
                granted=granted,
                at=at,
                source=str(entry.get("source") or "import"),
                wording_version=entry.get("wording_version"),
            )
        )
    return tuple(out)
