"""Turn a recipient mapping (SPEC §3) into a validated :class:`~dispatch.models.Recipient`.

Every problem is collected and raised at once in one :class:`InvalidRecipient`, so a
caller fixing a CSV row sees the whole list, not the first complaint. A problem names
the field, never its value: errors end up in logs and campaign statistics, and an
email address, phone number, name or birth date must not (short codes such as a
country or a status are shown, they help and identify no one).

Whatever ends up in a mail header or on an envelope is checked here, at the door:
an email address is one plain address (no line breaks, no quoting, no display name)
and names and addresses hold no control characters.
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
from .national_id import InvalidNationalId
from .national_id import normalise as normalise_national_id

DEFAULT_LANGUAGE = {"FI": "fi", "SE": "sv", "NO": "nb"}

_POSTAL_CODE = {
    "FI": re.compile(r"^\d{5}$"),
    "SE": re.compile(r"^\d{5}$"),
    "NO": re.compile(r"^\d{4}$"),
}
_POSTAL_PREFIX = re.compile(r"^(FI|SE|S|NO|N)-")
_MOBILE_TYPES = frozenset({phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE})
#: Longest id and address line accepted: enough for any real one, and bounded.
MAX_ID_LENGTH = 200
MAX_TEXT_LENGTH = 200
_CODE = re.compile(r"[A-Za-z0-9_.+-]{1,24}")
_PURPOSE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
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
    rid = _id(value.get("id"), problems)
    label = f"recipient {rid!r}" if rid else "recipient"

    country = _upper(value.get("country"))
    bad_country = False
    if country is None:
        problems.append("country is missing (FI, SE or NO)")
        bad_country = True
    elif country not in COUNTRIES:
        problems.append(f"country{_shown(value.get('country'))} is not supported ({', '.join(COUNTRIES)})")
        bad_country = True

    language_raw = value.get("language")
    bad_language = False
    language_given = language_raw is not None and language_raw != ""
    if language_given:
        language = str(language_raw).strip().lower() if isinstance(language_raw, str) else ""
        if language not in LANGUAGES:
            problems.append(f"language{_shown(language_raw)} is not supported ({', '.join(LANGUAGES)})")
            bad_language = True
    else:
        language = default_language.get(country or "", "en")

    kind = value.get("kind") or "household"
    if not isinstance(kind, str) or kind not in KINDS:
        problems.append(f"kind{_shown(kind)} must be household or business")
    status = value.get("status") or None
    if status is not None and (not isinstance(status, str) or status not in STATUSES):
        problems.append(f"status{_shown(status)} must be prospect, active or former")

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
    national_id = _national_id(value.get("national_id"), country if not bad_country else None, problems)

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
        national_id=national_id,
    )


def parse_date(raw: Any) -> date:
    """Parse an ISO date string, a ``date`` or a ``datetime`` (its date) into a ``date``."""
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str):
        return date.fromisoformat(raw.strip())
    raise ValueError(f"not a date: a {type(raw).__name__}")


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
        raise ValueError(f"not a date or time: a {type(raw).__name__}")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def normalise_phone(raw: str, country: str | None) -> str:
    """Return ``raw`` as an E.164 number, or raise ``ValueError`` naming the problem (not the number)."""
    return _parse_phone(raw, country)[0]


def _parse_phone(text: str, country: str | None) -> tuple[str, bool]:
    """(E.164, is it a mobile number) for ``text`` read in ``country``; ``ValueError`` if invalid."""
    if len(text) > 64:
        raise ValueError("phone is too long to be a phone number")
    try:
        number = phonenumbers.parse(text, country)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"phone cannot be parsed: {_PHONE_REASONS.get(exc.error_type, 'not a number')}") from None
    # number_type() does the matching is_valid_number() would do; one pass instead of two.
    kind = phonenumbers.number_type(number)
    if kind == phonenumbers.PhoneNumberType.UNKNOWN or not phonenumbers.region_code_for_number(number):
        raise ValueError(f"phone is not a valid number for {country or 'its country'}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), kind in _MOBILE_TYPES


def normalise_address_key(name: str, street: str, postal_code: str) -> str:
    """A matching key for an address: case-folded, punctuation and spacing removed.

    Used to match recipients against name+address do-not-contact registers.
    """
    parts = [name, street, postal_code]
    return "|".join(re.sub(r"[\W_]+", "", p.casefold()) for p in parts)


_PHONE_REASONS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "no valid country code",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "not a number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
    phonenumbers.NumberParseException.TOO_LONG: "too long",
}


def _shown(raw: Any) -> str:
    """`` 'DK'`` for a short code worth showing in an error; empty for anything else (which may be personal)."""
    if isinstance(raw, str) and _CODE.fullmatch(raw.strip()):
        return f" {raw.strip()!r}"
    return ""


def _id(raw: Any, problems: list[str]) -> str:
    """The recipient's id, stripped; ``""`` (and a problem) when it is missing or unusable."""
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        problems.append("id is missing")
        return ""
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        problems.append("id must be a string or a whole number")
        return ""
    text = raw.strip() if isinstance(raw, str) else str(raw) if abs(raw) < 10**MAX_ID_LENGTH else ""
    if not text or len(text) > MAX_ID_LENGTH:
        problems.append(f"id is longer than {MAX_ID_LENGTH} characters")
        return ""
    if _CONTROL.search(text):
        problems.append("id contains a line break or another control character")
        return ""
    return text


def _national_id(raw: Any, country: str | None, problems: list[str]) -> str | None:
    """The checksum-validated national id (SPEC §3), or None; a problem names the field, never the number."""
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return None
    if country is None:
        problems.append("national_id needs a valid country (FI, SE or NO)")
        return None
    try:
        return normalise_national_id(raw, country)
    except InvalidNationalId as exc:
        problems.append(str(exc))
        return None


def _short(raw: Any) -> bool:
    """None, a string of at most 64 characters, or a modest whole number (a wording version)."""
    if raw is None or (isinstance(raw, str) and len(raw) <= 64):
        return True
    return type(raw) is int and abs(raw) < 10**12


def _upper(raw: Any) -> str | None:
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return None
    return raw.strip().upper() if isinstance(raw, str) else ""


def _date(value: Mapping[str, Any], key: str, problems: list[str]) -> date | None:
    raw = value.get(key)
    if raw is None or raw == "":
        return None
    try:
        return parse_date(raw)
    except (ValueError, TypeError):
        problems.append(f"{key} is not a date (use YYYY-MM-DD)")
        return None


def _bool(value: Mapping[str, Any], key: str, problems: list[str], default: bool | None = False) -> bool | None:
    raw = value.get(key)
    if isinstance(raw, bool):
        return raw
    if raw is None:
        return default
    if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
        return raw.strip().lower() in _TRUE
    problems.append(f"{key}{_shown(raw)} must be true or false")
    return False


#: A plain ASCII dot-atom local part (RFC 5322), the overwhelmingly common case.
#: Used with ``fullmatch``: a ``$`` would match before a trailing newline.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


@lru_cache(maxsize=8192)
def _email_domain(domain: str) -> str:
    """email-validator's verdict on a domain (normalised), cached: a bulk file has few domains."""
    return validate_email("a@" + domain, check_deliverability=False).domain


def _email(raw: Any, problems: list[str]) -> str | None:
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return None
    if not isinstance(raw, str):
        problems.append("email must be a string")
        return None
    text = raw.strip(" ")
    if _CONTROL.search(text):
        problems.append("email contains a line break or another control character (not allowed in a mail header)")
        return None
    if len(text) > 254:
        problems.append("email is not a valid address: longer than 254 characters")
        return None
    local, at, domain = text.rpartition("@")
    try:
        if at and len(local) <= 64 and _DOT_ATOM.fullmatch(local):
            return f"{local}@{_email_domain(domain)}"
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        reason = str(exc)
        if any(len(piece) >= 3 and piece in reason for piece in (text, local, domain)):
            reason = "not one plain address"
        problems.append(f"email is not a valid address: {reason}")
        return None


def _phone(raw: Any, country: str | None, problems: list[str]) -> tuple[str | None, bool]:
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return None, False
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        problems.append("phone must be a string")
        return None, False
    if isinstance(raw, int) and not 0 < raw < 10**20:
        problems.append("phone is not a valid number")
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
    values: dict[str, str] = {}
    for key in ("name", "street", "postal_code", "city"):
        given = raw.get(key)
        if given is None or given == "":
            values[key] = ""
        elif isinstance(given, str) or (key == "postal_code" and type(given) is int and 0 <= given < 10**10):
            # split() also takes line breaks and tabs apart: a name prints (and heads mail) on one line.
            values[key] = " ".join(str(given).split())
        else:
            problems.append(f"address {key} must be a string")
            return None
    missing = [k for k, v in values.items() if not v]
    if missing:
        problems.append("address is missing " + ", ".join(missing))
        return None
    unusable = [k for k, v in values.items() if len(v) > MAX_TEXT_LENGTH or _CONTROL.search(v)]
    if unusable:
        problems.append(
            f"address {', '.join(unusable)}: control characters or longer than {MAX_TEXT_LENGTH} characters"
        )
        return None
    addr_country = _upper(raw.get("country")) or country or ""
    if not re.fullmatch(r"[A-Z]{2}", addr_country):
        problems.append(f"address country{_shown(raw.get('country'))} must be a two-letter country code")
        return None
    postal = _POSTAL_PREFIX.sub("", values["postal_code"].replace(" ", "").upper())
    pattern = _POSTAL_CODE.get(addr_country)
    if pattern and not pattern.fullmatch(postal):
        problems.append(f"address postal_code is not a valid postal code for {addr_country}")
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
        where = f"preferred_channels[{key!r}]" if _shown(key) else "preferred_channels"
        if not isinstance(key, str) or not isinstance(channel, str):
            problems.append(f"{where} must map a message type or category to a channel name")
            continue
        if channels is not None and channel not in channels:
            problems.append(f"{where} names unknown channel{_shown(channel)}")
            continue
        out[key] = channel
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
        if not isinstance(purpose, str) or not _PURPOSE.fullmatch(purpose):
            problems.append(f"{where}.purpose must be a name like marketing or newsletter")
            continue
        channel = entry.get("channel") or ALL_CHANNELS
        if not isinstance(channel, str) or (
            channels is not None and channel != ALL_CHANNELS and channel not in channels
        ):
            problems.append(f"{where}.channel{_shown(channel)} is not a known channel")
            continue
        source, wording = entry.get("source") or "import", entry.get("wording_version")
        if not isinstance(source, str) or len(source) > 64 or not _short(wording):
            problems.append(f"{where}.source and wording_version must be short strings")
            continue
        granted = entry.get("granted")
        if not isinstance(granted, bool):
            problems.append(f"{where}.granted must be true or false")
            continue
        try:
            at = parse_moment(entry.get("at"))
        except (ValueError, TypeError, OverflowError):
            problems.append(f"{where}.at{_shown(entry.get('at'))} is not a date or time")
            continue
        out.append(
            Consent(
                purpose=str(purpose),
                channel=str(channel),
                granted=granted,
                at=at,
                source=source,
                wording_version=None if wording is None else str(wording),
            )
        )
    return tuple(out)
