"""Message types as data (SPEC §2) and validation of the data each one needs.

A :class:`MessageType` names its category, its required data fields and their
kinds, the channels it may use and their default order, and the rule hooks that
apply to it (notice lead time, confirmation deadline, subscription). The seven
built-in types are declared in :data:`BUILTIN_TYPES`; deployments add their own
through configuration or the ``dispatch_message_types`` plugin hook.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import InvalidData, PluginError, UnknownMessageType
from .models import CATEGORIES, LANGUAGES
from .recipients import parse_date

#: Field kinds a message type may declare, and what each accepts.
FIELD_KINDS: dict[str, str] = {
    "date": "an ISO date (YYYY-MM-DD) or a date",
    "text": "a non-empty string",
    "localized": "a string, or a mapping of language (fi/sv/nb/en) to string",
    "url": "an http(s) URL",
    "months": "a whole number of months (12) or an ISO duration (P12M)",
    "price_elements": "a list of {name, unit, new, old?} with decimal-string amounts",
    "price_changes": "a list of {name, unit, old, new} with decimal-string amounts",
    "texts": "a non-empty list of strings (or language mappings)",
    "sections": "a non-empty list of {heading, body}",
    "price_elements_or_text": "a list of price elements, or a text",
    "offer": "a mapping {product, price_elements, notice_months?, binding_months?}: a product and its prices",
    "duration": "a whole number of months (12), an ISO duration (P12M), or {until: YYYY-MM-DD}",
    "whole_months": "a whole number of months, 0 when none",
    "amount": 'a decimal string like "0" or "99.00"',
    "contract_type": "one of spot, fixed, variable",
    "comparison_prices": 'a mapping {period, at_2000, at_5000, at_20000} with decimal strings ("189.5")',
}

#: Norwegian contract types (SPEC §2, NO marketing ``contract_type``).
CONTRACT_TYPES = ("spot", "fixed", "variable")
#: The yearly consumptions the Swedish jämförpris is given at (kWh/year), as ``at_<kWh>`` keys.
COMPARISON_CONSUMPTIONS = (2000, 5000, 20000)

# Used with fullmatch (a ``$`` matches before a trailing newline); ASCII digits only, bounded.
_DECIMAL = re.compile(r"-?[0-9]{1,12}(\.[0-9]{1,8})?")
_MONTHS = re.compile(r"P([0-9]{1,4})M")
_URL = re.compile(r"https?://[^\s/$.?#][^\s]*")
#: The largest amount and the longest duration data may give (prices and contract months).
MAX_AMOUNT = Decimal(10**12)
MAX_MONTHS = 1200
#: How deep data may nest (lists and mappings) and how long a URL may be.
MAX_DEPTH = 32
MAX_URL_LENGTH = 2048


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A required data field of a message type: its name and kind (see :data:`FIELD_KINDS`)."""

    name: str
    kind: str


@dataclass(frozen=True, slots=True)
class PriceElement:
    """One price element: ``name`` (text or language mapping), ``unit`` and amounts as ``Decimal``."""

    name: Any
    unit: str
    new: Decimal
    old: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Localized:
    """A text given in several languages; rendering picks the message's language."""

    texts: Mapping[str, str]

    def pick(self, chain: Iterable[str]) -> str:
        for language in chain:
            if language in self.texts:
                return self.texts[language]
        return next(iter(self.texts.values()))


@dataclass(frozen=True)
class MessageType:
    """A message type as data (SPEC §2).

    ``channels`` are the channels the type may use; ``default_order`` the order tried
    when the recipient states no preference (a subset of ``channels``).
    ``notice_field`` names the date a change takes effect (price and terms notices),
    ``deadline_field`` and ``deadline_working_days`` set a delivery deadline,
    ``subscription`` names the purpose a recipient must have opted in to
    (newsletter), ``objection`` the purpose an objection to which suppresses it
    (survey), and ``marketing_if_other_product`` makes a renewal of a different
    product follow the marketing rules.
    """

    name: str
    category: str
    fields: tuple[FieldSpec, ...]
    channels: tuple[str, ...]
    default_order: tuple[str, ...]
    legal_basis: str
    notice_field: str | None = None
    deadline_field: str | None = None
    deadline_working_days: int | None = None
    subscription: str | None = None
    objection: str | None = None
    marketing_if_other_product: bool = False
    unsubscribe: bool = False
    sms_max_segments: int = 3
    description: str = ""
    #: Data fields templates may use when given (``{% if name is defined %}``); not required.
    optional: tuple[str, ...] = ()
    #: Channels a statutory message is sent on again, in this order, after its channel failed
    #: for good (a bounce, an invalid number): the customer must be reached (SPEC §2).
    fallback_channels: tuple[str, ...] = ()

    def fallback_for(self, failed: str) -> tuple[str, ...]:
        """The channels to try after ``failed`` failed for good (never ``failed`` itself)."""
        return tuple(c for c in self.fallback_channels if c != failed)

    #: Optional data fields with a kind: not required, but checked like required ones when given.
    optional_fields: tuple[FieldSpec, ...] = ()
    #: The date a fixed-term contract ends, where the country sets a window for telling the customer
    #: (``renewal_notice`` of ``[policy.countries.XX]``, e.g. Sweden's 90 to 60 days).
    term_end_field: str | None = None
    #: Data a message to a recipient in a country must carry, as ``(country, (path, ...))`` pairs;
    #: a path is a field name or ``field.key`` (SPEC §2 "country-specific data"). Checked where the
    #: recipient and the data meet (:func:`country_data_problems`), since data is validated alone.
    country_fields: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def required_in(self, country: str) -> tuple[str, ...]:
        """The data paths ``country`` requires on top of :attr:`required`."""
        return tuple(path for c, paths in self.country_fields if c == country for path in paths)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def known(self) -> tuple[str, ...]:
        """Every data field a template of this type may read: required and optional."""
        return (*self.required, *self.optional, *(f.name for f in self.optional_fields))

    def validate(self, data: Mapping[str, Any]) -> MessageData:
        """Check ``data`` against the required fields; name every problem at once."""
        return validate_data(self, data)


def _fields(**kinds: str) -> tuple[FieldSpec, ...]:
    return tuple(FieldSpec(name, kind) for name, kind in kinds.items())


BUILTIN_TYPES: tuple[MessageType, ...] = (
    MessageType(
        name="contract_confirmation",
        category="statutory",
        fields=_fields(signed_on="date", product="text", starts_on="date", price_elements="price_elements"),
        channels=("email", "letter"),
        default_order=("email", "letter"),
        legal_basis="contract",
        deadline_field="signed_on",
        deadline_working_days=7,
        fallback_channels=("letter",),
        description=(
            "Confirms a new contract within 7 working days of signing: product, start, prices, the "
            "duration (`duration` months and/or `ends_on`; neither means open-ended), the terms "
            "(`terms_url`, default [company] terms_url) and, for households, the 14-day withdrawal right."
        ),
        optional=("contract_number",),
        optional_fields=_fields(duration="months", ends_on="date", terms_url="url"),
    ),
    MessageType(
        name="price_change",
        category="statutory",
        fields=_fields(effective_on="date", reason="localized", price_elements="price_changes"),
        channels=("email", "sms", "letter"),
        default_order=("email", "letter"),
        legal_basis="legal_obligation",
        notice_field="effective_on",
        sms_max_segments=6,
        fallback_channels=("letter",),
        description="Notice of a price change: old and new prices, reason, right to terminate.",
    ),
    MessageType(
        name="terms_change",
        category="statutory",
        fields=_fields(effective_on="date", reason="localized", changes="texts"),
        channels=("email", "sms", "letter"),
        default_order=("email", "letter"),
        legal_basis="legal_obligation",
        notice_field="effective_on",
        sms_max_segments=4,
        fallback_channels=("letter",),
        description="Notice of a change in contract terms, with the right to terminate.",
    ),
    MessageType(
        name="renewal_offer",
        category="service",
        fields=_fields(
            current_ends_on="date",
            current_product="text",
            product="text",
            respond_by="date",
            price_elements="price_elements",
        ),
        channels=("email", "sms", "letter", "phone"),
        default_order=("email", "letter"),
        legal_basis="contract",
        term_end_field="current_ends_on",
        marketing_if_other_product=True,
        # 4: the offer's prices and what doing nothing costs (its prices too), plus an opt-out
        # when another product is offered, do not fit in three.
        sms_max_segments=4,
        description=(
            "Offers to renew a fixed-term contract before it ends: the new product, its prices and "
            "`duration`, and what the customer gets if they do nothing (`if_no_action`)."
        ),
        optional_fields=_fields(duration="months", if_no_action="offer", offer_url="url", notice_months="whole_months"),
        # SE: what the customer gets by doing nothing must be stated with its prices, binding and notice
        # period, and the offered contract with its binding period (ellagen; Energimarknadsinspektionen,
        # "Elhandelsföretag skyldiga att ge särskild information när elavtal löper ut", 2023-01-20: the
        # new contract's bindningstid and uppsägningstid and its price must be given).
        country_fields=(("SE", ("duration", "if_no_action", "if_no_action.notice_months")),),
    ),
    MessageType(
        name="newsletter",
        category="service",
        fields=_fields(title="localized", sections="sections"),
        channels=("email",),
        default_order=("email",),
        legal_basis="consent",
        subscription="newsletter",
        unsubscribe=True,
        description="The customer newsletter, only to subscribers.",
    ),
    MessageType(
        name="marketing",
        category="marketing",
        fields=_fields(
            campaign="text",
            product="text",
            duration="months",
            offer_ends_on="date",
            after_offer="price_elements_or_text",
            price_elements="price_elements",
        ),
        channels=("email", "sms", "letter", "phone"),
        default_order=("email", "sms", "letter", "phone"),
        legal_basis="consent",
        unsubscribe=True,
        sms_max_segments=3,
        description=(
            "A campaign offer: the campaign prices (price_elements) apply for `duration` months of the "
            "contract; `after_offer` holds the prices or terms after that; the offer can be taken until "
            "`offer_ends_on`."
        ),
        optional_fields=_fields(
            offer_url="url",
            comparison_prices="comparison_prices",
            contract_type="contract_type",
            binding_months="whole_months",
            exit_fee="amount",
        ),
        country_fields=(
            # SE: the jämförpris in öre/kWh at 2,000, 5,000 and 20,000 kWh a year, and the period it is
            # for, in every electricity offer marketed: prisinformationslagen (2004:347) with Konsumentverket's
            # föreskrift KOVFS 2012:1 as amended by KOVFS 2018:1 (konsumentverket.se, "Jämförpris för el").
            ("SE", ("comparison_prices",)),
            # NO: contract type, binding period and exit fee are essential information in marketing of
            # electricity contracts: markedsføringsloven § 8 (with § 6) and prisopplysningsforskriften § 20;
            # Forbrukertilsynet, "Opplysninger dere må gi i markedsføring av strømavtaler til forbrukere".
            ("NO", ("contract_type", "binding_months", "exit_fee")),
        ),
    ),
    MessageType(
        name="survey",
        category="service",
        fields=_fields(contact_on="date", survey_url="url"),
        channels=("email", "sms"),
        default_order=("email", "sms"),
        legal_basis="legitimate_interest",
        objection="survey",
        unsubscribe=True,
        sms_max_segments=2,
        description="A satisfaction survey after a customer-service contact.",
    ),
    # The written offer after a phone sale (SPEC §2, §13): the contract exists only once the
    # consumer accepts it after the call — FI KSL 6 luku 12 a § (693/2022, from 1.1.2023),
    # SE lag (2005:59) 2 kap. 3 a § (from 1.9.2018, prop. 2017/18:129), NO angrerettloven § 10.
    # Sent with Dispatcher.offer() (dispatch.offers), which adds offer_id, accept_url and accept_code_url.
    MessageType(
        name="sales_offer",
        category="statutory",
        fields=_fields(
            sold_on="date",
            product="text",
            price_elements="price_elements",
            duration="duration",
            terms_url="url",
            valid_until="date",
        ),
        channels=("email", "sms", "letter"),  # in writing, never by phone (the offer must be durable)
        default_order=("email", "letter"),
        legal_basis="contract",  # GDPR Art 6(1)(b): steps taken at the customer's request before a contract
        sms_max_segments=5,
        fallback_channels=("letter",),
        description=(
            "The written offer after a phone sale: product, prices, `duration` (months or {until}), terms, "
            "`valid_until`; the customer accepts it on the page `accept_url` leads to (Dispatcher.offer)."
        ),
        optional=("offer_id", "accept_url", "accept_code_url", "contract_number"),
        optional_fields=_fields(starts_on="date"),
    ),
)


class MessageData(dict):
    """Validated message data: required fields parsed (dates, decimals), extras kept as given."""

    __slots__ = ("_localized", "message_type", "render_cache")

    def __init__(self, message_type: str, values: Mapping[str, Any]) -> None:
        super().__init__(values)
        self.message_type = message_type
        self._localized: dict[tuple[str, ...], dict[str, Any]] = {}
        #: Rendered variants of this data (see dispatch.render_cache); lives as long as the data.
        self.render_cache: dict = {}

    def localized(self, chain: tuple[str, ...]) -> dict[str, Any]:
        """The data with every language mapping resolved along ``chain`` (cached)."""
        cached = self._localized.get(chain)
        if cached is None:
            cached = {key: _localize(value, chain) for key, value in self.items()}
            self._localized[chain] = cached
        return cached


def validate_data(message_type: MessageType, data: Mapping[str, Any] | None) -> MessageData:
    """Validate ``data`` for ``message_type`` and return the parsed :class:`MessageData`.

    Raises :class:`InvalidData` naming every missing or malformed field at once.
    """
    if isinstance(data, MessageData) and data.message_type == message_type.name:
        return data
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InvalidData(f"{message_type.name} data must be a mapping, not {type(data).__name__}")
    problems: list[str] = []
    _check_shape(message_type.name, data, problems)
    if problems:
        raise InvalidData(f"{message_type.name} data is invalid:", problems)
    values: dict[str, Any] = dict(data)
    for spec in message_type.fields:
        if spec.name not in data or data[spec.name] is None or data[spec.name] == "":
            problems.append(f"{spec.name} is missing ({FIELD_KINDS.get(spec.kind, spec.kind)})")
            continue
        checker = _CHECKERS.get(spec.kind)
        if checker is None:
            raise PluginError(f"{message_type.name}.{spec.name} has unknown field kind {spec.kind!r}")
        values[spec.name] = checker(spec.name, data[spec.name], problems)
    for spec in message_type.optional_fields:
        if data.get(spec.name) is None:
            values.pop(spec.name, None)
            continue
        checker = _CHECKERS.get(spec.kind)
        if checker is None:
            raise PluginError(f"{message_type.name}.{spec.name} has unknown field kind {spec.kind!r}")
        values[spec.name] = checker(spec.name, data[spec.name], problems)
    if problems:
        raise InvalidData(f"{message_type.name} data is invalid:", problems)
    return MessageData(message_type.name, values)


def country_data_problems(message_type: MessageType, data: Mapping[str, Any], country: str) -> list[str]:
    """What ``data`` lacks for a recipient in ``country`` (SPEC §2 country-specific data), one text each."""
    problems: list[str] = []
    for path in message_type.required_in(country):
        value: Any = data
        for key in path.split("."):
            value = value.get(key) if isinstance(value, Mapping) else None
        if value is None or value == "":
            problems.append(f"{path} is missing (required for {message_type.name} to {country} recipients)")
    return problems


class MessageTypeRegistry:
    """The message types known to a :class:`~dispatch.Dispatcher`."""

    def __init__(self, types: Iterable[MessageType] = ()) -> None:
        self._types: dict[str, MessageType] = {}
        for message_type in types:
            self.register(message_type)

    def register(self, message_type: MessageType, *, replace: bool = False) -> None:
        """Add a type; registering an existing name again is an error unless ``replace``."""
        if message_type.category not in CATEGORIES:
            raise PluginError(f"message type {message_type.name!r} has unknown category {message_type.category!r}")
        if not set(message_type.default_order) <= set(message_type.channels):
            raise PluginError(f"message type {message_type.name!r}: default_order must be within channels")
        for spec in (*message_type.fields, *message_type.optional_fields):
            if spec.kind not in FIELD_KINDS:
                raise PluginError(
                    f"message type {message_type.name!r} field {spec.name!r} has unknown kind {spec.kind!r}"
                )
        if message_type.name in self._types and not replace:
            raise PluginError(f"message type {message_type.name!r} is registered twice")
        self._types[message_type.name] = message_type

    def get(self, name: str) -> MessageType:
        try:
            return self._types[name]
        except (KeyError, TypeError):
            known = ", ".join(sorted(self._types))
            raise UnknownMessageType(f"unknown message type {name!r} (known: {known})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self):
        return iter(self._types.values())

    def names(self) -> list[str]:
        return list(self._types)


# -- field checkers ---------------------------------------------------------------------

_LEAVES = (str, int, float, Decimal, date, type(None), PriceElement, Localized)


def _check_shape(type_name: str, data: Mapping[str, Any], problems: list[str]) -> None:
    """Data is JSON-like (what the store can keep): text keys, finite numbers, bounded nesting."""
    pending: list[tuple[str, Any, int]] = [(type_name, data, 0)]
    while pending and len(problems) < 10:
        where, value, depth = pending.pop()
        if isinstance(value, Mapping):
            if depth >= MAX_DEPTH:
                problems.append(f"{where} nests deeper than {MAX_DEPTH} levels")
                continue
            for key, item in value.items():
                if not isinstance(key, str):
                    problems.append(f"{where} has a key that is not a string")
                    break
                pending.append((f"{where}.{key}" if depth else key, item, depth + 1))
        elif isinstance(value, list | tuple):
            if depth >= MAX_DEPTH:
                problems.append(f"{where} nests deeper than {MAX_DEPTH} levels")
                continue
            pending.extend((f"{where}[{i}]", item, depth + 1) for i, item in enumerate(value))
        elif not isinstance(value, _LEAVES):
            problems.append(f"{where} holds a {type(value).__name__}, which is not a JSON value")
        elif isinstance(value, float | Decimal) and not Decimal(value).is_finite():
            problems.append(f"{where} is not a finite number")


def _shown(raw: Any) -> str:
    """``raw`` for an error message, cut short (data can hold megabytes)."""
    text = repr(raw) if not isinstance(raw, int) or abs(raw) < 10**30 else "a huge number"
    return text if len(text) <= 40 else text[:37] + "..."


def _check_date(name: str, raw: Any, problems: list[str]) -> Any:
    try:
        return parse_date(raw)
    except (ValueError, TypeError):
        problems.append(f"{name} {_shown(raw)} is not a date (use YYYY-MM-DD)")
        return None


def _check_text(name: str, raw: Any, problems: list[str]) -> Any:
    if not isinstance(raw, str) or not raw.strip():
        problems.append(f"{name} must be a non-empty string")
    return raw


def _check_localized(name: str, raw: Any, problems: list[str]) -> Any:
    if isinstance(raw, str):
        if not raw.strip():
            problems.append(f"{name} must not be empty")
        return raw
    if isinstance(raw, Localized):
        return raw
    if isinstance(raw, Mapping) and raw:
        unknown = [k for k in raw if k not in LANGUAGES]
        if unknown:
            shown = ", ".join(map(_shown, unknown[:5]))
            problems.append(f"{name} has unknown language(s) {shown} ({', '.join(LANGUAGES)})")
        if not all(isinstance(v, str) and v.strip() for v in raw.values()):
            problems.append(f"{name} must map each language to a non-empty string")
        return Localized(dict(raw))
    problems.append(f"{name} must be a string or a mapping of language to string")
    return raw


def _check_url(name: str, raw: Any, problems: list[str]) -> Any:
    if not isinstance(raw, str) or len(raw) > MAX_URL_LENGTH or not raw.isprintable() or not _URL.fullmatch(raw):
        problems.append(f"{name} {_shown(raw)} is not an http(s) URL")
    return raw


def _check_months(name: str, raw: Any, problems: list[str]) -> Any:
    if isinstance(raw, bool):
        problems.append(f"{name} must be a number of months")
        return raw
    if isinstance(raw, int) and 0 < raw <= MAX_MONTHS:
        return raw
    if isinstance(raw, str):
        text = raw.strip().upper()
        match = re.fullmatch("[0-9]{1,4}", text) or _MONTHS.fullmatch(text)
        if match and 0 < int(match.group(match.lastindex or 0)) <= MAX_MONTHS:
            return int(match.group(match.lastindex or 0))
    problems.append(f"{name} {_shown(raw)} must be a whole number of months (12) or an ISO duration (P12M)")
    return raw


def _decimal(where: str, raw: Any, problems: list[str]) -> Decimal | None:
    if isinstance(raw, Decimal) and raw.is_finite() and abs(raw) < MAX_AMOUNT:
        return raw
    if isinstance(raw, (bool, float)):
        problems.append(f'{where} {_shown(raw)} must be a decimal string like "8.90", not a float')
        return None
    if isinstance(raw, int) and abs(raw) < MAX_AMOUNT:
        return Decimal(raw)
    if isinstance(raw, str) and _DECIMAL.fullmatch(raw.strip()):
        try:
            return Decimal(raw.strip())
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid numbers
            pass
    problems.append(f'{where} {_shown(raw)} is not a decimal string like "8.90"')
    return None


def _price_elements(name: str, raw: Any, problems: list[str], *, old_required: bool) -> Any:
    if not isinstance(raw, list | tuple) or not raw:
        problems.append(f"{name} must be a non-empty list of price elements")
        return raw
    out: list[PriceElement] = []
    for i, element in enumerate(raw):
        where = f"{name}[{i}]"
        if isinstance(element, PriceElement):
            out.append(element)
            continue
        if not isinstance(element, Mapping):
            problems.append(f"{where} must be a mapping with name, unit, new")
            continue
        before = len(problems)
        label = _check_localized(f"{where}.name", element.get("name") or "", problems)
        unit = element.get("unit")
        if not isinstance(unit, str) or not unit.strip():
            problems.append(f"{where}.unit is missing (e.g. c/kWh, EUR/month)")
        new = (
            _decimal(f"{where}.new", element["new"], problems)
            if element.get("new") is not None
            else problems.append(f"{where}.new is missing")
        )
        old = None
        if element.get("old") is not None:
            old = _decimal(f"{where}.old", element["old"], problems)
        elif old_required:
            problems.append(f"{where}.old is missing")
        if len(problems) == before:
            out.append(PriceElement(name=label, unit=unit.strip(), new=new, old=old))
    return out


def _check_price_elements(name: str, raw: Any, problems: list[str]) -> Any:
    return _price_elements(name, raw, problems, old_required=False)


def _check_price_changes(name: str, raw: Any, problems: list[str]) -> Any:
    return _price_elements(name, raw, problems, old_required=True)


def _check_texts(name: str, raw: Any, problems: list[str]) -> Any:
    if not isinstance(raw, list | tuple) or not raw:
        problems.append(f"{name} must be a non-empty list of texts")
        return raw
    return [_check_localized(f"{name}[{i}]", item, problems) for i, item in enumerate(raw)]


def _check_sections(name: str, raw: Any, problems: list[str]) -> Any:
    if not isinstance(raw, list | tuple) or not raw:
        problems.append(f"{name} must be a non-empty list of {{heading, body}}")
        return raw
    out = []
    for i, section in enumerate(raw):
        if not isinstance(section, Mapping):
            problems.append(f"{name}[{i}] must be a mapping with heading and body")
            continue
        item = dict(section)
        for key in ("heading", "body"):
            if not section.get(key):
                problems.append(f"{name}[{i}].{key} is missing")
            else:
                item[key] = _check_localized(f"{name}[{i}].{key}", section[key], problems)
        out.append(item)
    return out


def _check_price_elements_or_text(name: str, raw: Any, problems: list[str]) -> Any:
    if isinstance(raw, list | tuple):
        return _check_price_elements(name, raw, problems)
    return _check_localized(name, raw, problems)


def _check_offer(name: str, raw: Any, problems: list[str]) -> Any:
    if not isinstance(raw, Mapping):
        problems.append(f"{name} must be a mapping with product and price_elements")
        return raw
    before = len(problems)
    product = _check_localized(f"{name}.product", raw.get("product") or "", problems)
    elements = _check_price_elements(f"{name}.price_elements", raw.get("price_elements"), problems)
    periods = {
        key: _check_whole_months(f"{name}.{key}", raw[key], problems)
        for key in ("notice_months", "binding_months")
        if raw.get(key) is not None
    }
    if len(problems) > before:
        return raw
    return {**raw, "product": product, "price_elements": elements, **periods}


def _check_whole_months(name: str, raw: Any, problems: list[str]) -> Any:
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw <= MAX_MONTHS:
        return raw
    if isinstance(raw, str) and re.fullmatch("[0-9]{1,4}", raw.strip()) and int(raw) <= MAX_MONTHS:
        return int(raw)
    problems.append(f"{name} {_shown(raw)} must be a whole number of months (0 when none)")
    return raw


def _check_amount(name: str, raw: Any, problems: list[str]) -> Any:
    value = _decimal(name, raw, problems)
    if value is not None and value < 0:
        problems.append(f"{name} must not be negative")
    return value if value is not None else raw


def _check_contract_type(name: str, raw: Any, problems: list[str]) -> Any:
    if raw not in CONTRACT_TYPES:
        problems.append(f"{name} {_shown(raw)} must be one of {', '.join(CONTRACT_TYPES)}")
    return raw


def _check_comparison_prices(name: str, raw: Any, problems: list[str]) -> Any:
    if not isinstance(raw, Mapping):
        problems.append(f"{name} must be a mapping with period, at_2000, at_5000 and at_20000")
        return raw
    before = len(problems)
    out: dict[str, Any] = dict(raw)
    period = raw.get("period")
    if period is None or period == "":
        problems.append(f"{name}.period is missing (the period the jämförpris is computed for)")
    else:
        out["period"] = _check_localized(f"{name}.period", period, problems)
    for kwh in COMPARISON_CONSUMPTIONS:
        key = f"at_{kwh}"
        if raw.get(key) is None:
            problems.append(f"{name}.{key} is missing (öre/kWh at {kwh} kWh a year)")
        else:
            out[key] = _decimal(f"{name}.{key}", raw[key], problems)
    return raw if len(problems) > before else out


def _check_duration(name: str, raw: Any, problems: list[str]) -> Any:
    """Months (as ``months``), or a fixed end: ``{"until": date}`` (sales_offer, SPEC §2)."""
    if isinstance(raw, Mapping):
        if set(raw) != {"until"}:
            problems.append(f"{name} must be a number of months or {{until: YYYY-MM-DD}} and nothing else")
            return raw
        until = _check_date(f"{name}.until", raw["until"], problems)
        return {"until": until} if until is not None else raw
    return _check_months(name, raw, problems)


_CHECKERS = {
    "date": _check_date,
    "text": _check_text,
    "localized": _check_localized,
    "url": _check_url,
    "months": _check_months,
    "price_elements": _check_price_elements,
    "price_changes": _check_price_changes,
    "texts": _check_texts,
    "sections": _check_sections,
    "price_elements_or_text": _check_price_elements_or_text,
    "offer": _check_offer,
    "duration": _check_duration,
    "whole_months": _check_whole_months,
    "amount": _check_amount,
    "contract_type": _check_contract_type,
    "comparison_prices": _check_comparison_prices,
}


def _localize(value: Any, chain: tuple[str, ...]) -> Any:
    if isinstance(value, Localized):
        return value.pick(chain)
    if isinstance(value, PriceElement):
        if isinstance(value.name, Localized):
            return PriceElement(value.name.pick(chain), value.unit, value.new, value.old)
        return value
    if isinstance(value, list):
        return [_localize(v, chain) for v in value]
    if isinstance(value, dict):
        return {k: _localize(v, chain) for k, v in value.items()}
    return value
