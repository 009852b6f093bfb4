"""``dispatch templates check``: every type × channel × language present, rendering, complete.

For each message type, each channel it allows and each language, the check
reports: missing files; variables a template reads that the type does not provide
(a typo that would fail at send time); render errors with sample data in every
country the language is used in; required content missing from the rendered text
(the new prices, the effective date, the unsubscribe link...); and channel
problems such as SMS texts over their segment limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import jinja2

from .context import DERIVED, RESERVED, WITHDRAWAL_DAYS, needs_unsubscribe, vat_for
from .errors import DispatchError
from .messages import COMPARISON_CONSUMPTIONS, MessageType, PriceElement
from .models import LANGUAGES as KNOWN_LANGUAGES
from .policy import effective_category
from .recipients import parse_recipient
from .samples import sample_data, sample_recipient, sample_variants
from .segments import non_gsm_characters

if TYPE_CHECKING:
    from .channels import Channel
    from .dispatcher import Dispatcher

#: Which countries each language is checked for.
_COUNTRIES = {"fi": ("FI",), "sv": ("FI", "SE"), "nb": ("NO",), "en": ("FI", "SE", "NO")}
CHECK_COUNTRIES = {language: _COUNTRIES.get(language, ("FI",)) for language in KNOWN_LANGUAGES}
#: The languages checked by default: every language dispatch knows.
LANGUAGES = tuple(KNOWN_LANGUAGES)
CHECK_NOW = datetime(2027, 1, 11, 10, 0, tzinfo=UTC)
#: The word that stops marketing SMS, per language (the SMS plugin honours all of them).
SMS_STOP_WORDS = {"fi": "LOPETA", "sv": "STOPP", "nb": "STOPP", "en": "STOP"}
#: Types whose messages show prices to households, and so the VAT sentence.
PRICED_TYPES = ("contract_confirmation", "price_change", "renewal_offer", "marketing", "sales_offer")


@dataclass(frozen=True)
class Problem:
    language: str
    message_type: str
    channel: str
    where: str
    text: str

    def __str__(self) -> str:
        return f"{self.language}/{self.message_type}/{self.where} [{self.channel}]: {self.text}"


@dataclass
class CheckReport:
    problems: list[Problem] = field(default_factory=list)
    checked: int = 0
    rendered: int = 0
    segments: dict[tuple[str, str, str], int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_templates(
    dispatcher: Dispatcher,
    *,
    languages: Iterable[str] = LANGUAGES,
    types: Iterable[str] | None = None,
) -> CheckReport:
    """Check every template; see the module docstring."""
    report = CheckReport()
    wanted = set(types) if types else None
    for mtype in dispatcher.types:
        if wanted is not None and mtype.name not in wanted:
            continue
        for channel_name in mtype.channels:
            channel = dispatcher.channels.get(channel_name)
            if channel is None:
                continue
            for language in languages:
                report.checked += 1
                _check_one(dispatcher, report, mtype, channel_name, language)
    return report


def _check_one(d: Dispatcher, report: CheckReport, mtype: MessageType, channel_name: str, language: str) -> None:
    channel = d.channels[channel_name]
    renderer = d.renderer

    def problem(where: str, text: str) -> None:
        report.problems.append(Problem(language, mtype.name, channel_name, where, text))

    missing = [f for f in channel.parts.values() if not renderer.has_parts(mtype.name, {"x": f}, language)]
    for filename in missing:
        problem(filename, "missing")
    if missing:
        return
    known = set(RESERVED) | set(mtype.known) | set(DERIVED.get(mtype.name, ())) | set(_sample(mtype, "FI"))
    for filename in channel.parts.values():
        try:
            unknown = renderer.undeclared_variables(language, renderer.template_name(mtype.name, filename)) - known
        except DispatchError as exc:
            problem(filename, str(exc))
            continue
        except Exception as exc:  # a syntax error is reported by the render below
            problem(filename, f"cannot be parsed: {exc}")
            continue
        for name in sorted(unknown):
            problem(filename, f"unknown variable {name!r} (not a field of {mtype.name})")
    for country in CHECK_COUNTRIES.get(language, ("FI",)):
        recipient = dict(sample_recipient(language, country))
        recipient["language"] = language
        for label, data in _variants(mtype, country, language):
            where = country if label == "sample" else f"{country}, {label}"
            try:
                parts = d.preview(mtype.name, recipient, data, channel=channel_name, language=language, now=CHECK_NOW)
            except DispatchError as exc:
                problem(where, f"does not render: {exc}")
                continue
            report.rendered += 1
            validated = d.validate_data(mtype.name, data)
            values = dict(validated.localized((language, "en", "fi", "sv")))
            person = parse_recipient(recipient)
            category = effective_category(mtype, validated)
            if mtype.name == "contract_confirmation":
                if person.kind != "business":
                    values["withdrawal_ends_on"] = values["signed_on"] + timedelta(days=WITHDRAWAL_DAYS)
                values["terms_url"] = values.get("terms_url") or d.company(country, language).get("terms_url")
            formatter = d.renderer.formatter(language, country)
            context = {"vat": vat_for(person, d.config.vat), "message": {"channel": channel_name}}
            vat_sentence = _render_partial(d, language, country, "_partials/vat.txt", context)
            for part, text in parts.items():
                filename = channel.parts[part]
                needles = _required(mtype, channel_name, part, values, formatter)
                if part != "subject":
                    if mtype.name in PRICED_TYPES:
                        needles.append((vat_sentence, "the VAT sentence (_partials/vat.txt)"))
                    needles.extend(_opt_out(mtype, category, channel_name, language))
                for needle, what in needles:
                    if needle and needle not in text:
                        problem(filename, f"({where}) does not show {what}: expected {needle!r}")
                if not text.strip():
                    problem(filename, f"({where}) renders empty")
            _check_channel(report, channel, mtype, parts, language, where, problem)


def _check_channel(
    report: CheckReport,
    channel: Channel,
    mtype: MessageType,
    parts: dict[str, str],
    language: str,
    where: str,
    problem: Callable[[str, str], None],
) -> None:
    """The channel's own checks of a rendered message (SMS length and alphabet...)."""
    for text in channel.check_rendered(mtype, parts):
        problem(channel.parts.get("text", channel.name), f"({where}) {text}")
    if channel.name == "sms":
        meta = channel.prepare(mtype, parts)
        report.segments[(language, mtype.name, where)] = int(meta.get("segments", 0))
        if meta.get("encoding") == "UCS-2":
            chars = "".join(non_gsm_characters(parts.get("text", "")))
            problem(
                channel.parts["text"],
                f"({where}) not GSM-7 because of {chars!r}: the SMS would be "
                "sent as UCS-2, with less than half the characters per segment",
            )


def _variants(mtype: MessageType, country: str, language: str) -> list[tuple[str, dict[str, Any]]]:
    try:
        return sample_variants(mtype.name, country, language)
    except KeyError:
        return [("sample", synthetic_data(mtype))]


def _render_partial(d: Dispatcher, language: str, country: str, name: str, context: dict[str, Any]) -> str | None:
    """A shared partial rendered on its own (None when the language has none)."""
    try:
        template = d.renderer.environment(language, country).get_template(name)
    except jinja2.TemplateNotFound:
        return None
    return template.render(context).strip()


def _opt_out(mtype: MessageType, category: str, channel: str, language: str) -> list[tuple[str, str]]:
    """What a message of the decided ``category`` must carry to let the person opt out."""
    if not needs_unsubscribe(mtype, category) or channel not in ("email", "sms", "letter"):
        return []
    why = "marketing" if category == "marketing" else mtype.name
    out = [("/u/", f"the opt-out link (decided category {category}: {why} needs one)")]
    if channel == "sms" and category == "marketing":
        word = SMS_STOP_WORDS.get(language, "STOP")
        out.append((word, f"how to stop marketing SMS (reply {word})"))
    return out


def _sample(mtype: MessageType, country: str) -> dict[str, Any]:
    try:
        return sample_data(mtype.name, country)
    except KeyError:
        return synthetic_data(mtype)


def synthetic_data(mtype: MessageType) -> dict[str, Any]:
    """Plausible data for a type without a built-in sample (custom types)."""
    element = {"name": "Energy", "unit": "c/kWh", "new": "8.90", "old": "7.50"}
    by_kind = {
        "date": "2027-05-01",
        "text": "Sample",
        "localized": "Sample text",
        "url": "https://example.com/sample",
        "months": 12,
        "price_elements": [element],
        "price_changes": [element],
        "texts": ["Sample text"],
        "sections": [{"heading": "Heading", "body": "Body text"}],
        "price_elements_or_text": [element],
        "duration": 12,
    }
    return {spec.name: by_kind[spec.kind] for spec in mtype.fields}


def _required(mtype: MessageType, channel: str, part: str, values: dict[str, Any], fmt) -> list[tuple[str, str]]:
    """(text, description) pairs a rendered part must contain."""
    if part == "subject":
        return []
    out: list[tuple[str, str]] = []
    name = mtype.name

    def prices(key: str, *, old: bool = False) -> None:
        for element in values.get(key) or []:
            if isinstance(element, PriceElement):
                out.append((fmt.price(element), f"the price of {element.name}"))
                if old and element.old is not None:
                    out.append((fmt.old_price(element), f"the old price of {element.name}"))

    if name == "contract_confirmation":
        out.append((values["product"], "the product"))
        out.append((fmt.date(values["starts_on"]), "the start date"))
        if values.get("duration") is not None:
            out.append((fmt.months(values["duration"]), "the contract duration"))
        elif values.get("ends_on") is not None:
            out.append((fmt.date(values["ends_on"]), "the end date"))
        if values.get("withdrawal_ends_on") is not None:
            out.append((fmt.date(values["withdrawal_ends_on"]), "the last day of the withdrawal right (households)"))
        if values.get("terms_url"):
            out.append((values["terms_url"], "the link to the terms"))
        if channel != "sms":
            prices("price_elements")
    elif name == "price_change":
        out.append((fmt.date(values["effective_on"]), "the effective date"))
        prices("price_elements", old=True)
    elif name == "terms_change":
        out.append((fmt.date(values["effective_on"]), "the effective date"))
        for change in values["changes"]:
            out.append((change, "every change"))
    elif name == "renewal_offer":
        out.append((values["product"], "the product"))
        out.append((fmt.date(values["current_ends_on"]), "when the current contract ends"))
        out.append((fmt.date(values["respond_by"]), "the reply-by date"))
        if values.get("duration") is not None:
            out.append((fmt.months(values["duration"]), "the new contract's duration"))
        if_no_action = values.get("if_no_action")
        if isinstance(if_no_action, dict):
            out.append((if_no_action["product"], "what the customer gets if they do nothing (if_no_action)"))
        if isinstance(if_no_action, dict):  # every channel: what doing nothing costs (SMS included)
            for element in if_no_action["price_elements"]:
                out.append((fmt.price(element), f"the price of {element.name} if the customer does nothing"))
            if if_no_action.get("notice_months") is not None and channel != "sms":
                out.append(
                    (fmt.months(if_no_action["notice_months"]), "the notice period if the customer does nothing")
                )
        if channel != "sms":
            prices("price_elements")
    elif name == "newsletter":
        out.append((values["title"], "the title"))
        for section in values["sections"]:
            out.append((section["heading"], "every section heading"))
    elif name == "marketing":
        out.append((values["product"], "the product"))
        out.append((fmt.date(values["offer_ends_on"]), "when the offer ends"))
        out.append((fmt.months(values["duration"]), "how long the campaign prices last"))
        prices("price_elements")
        after = values["after_offer"]
        if isinstance(after, list):
            prices("after_offer")
        else:
            out.append((after, "the terms after the offer"))
        comparison = values.get("comparison_prices")
        if isinstance(comparison, dict) and channel != "sms":  # SE: the jämförpris (an SMS may link to it)
            for kwh in COMPARISON_CONSUMPTIONS:
                amount = comparison[f"at_{kwh}"]
                out.append((fmt.unit_price(amount, "öre/kWh"), f"the jämförpris at {kwh} kWh/year (SE)"))
        if values.get("binding_months") and channel != "sms":  # NO: binding period and exit fee
            out.append((fmt.months(values["binding_months"]), "the binding period (NO binding_months)"))
            if values.get("exit_fee"):
                out.append((fmt.money(values["exit_fee"]), "the exit fee (NO exit_fee)"))
    elif name == "survey":
        out.append((values["survey_url"], "the survey link"))
    elif name == "sales_offer":  # the written offer (SPEC §13): the terms, until when, and where to accept
        out.append((values["product"], "the product"))
        out.append((fmt.date(values["valid_until"]), "until when the offer can be accepted"))
        link = values.get("accept_code_url") if channel == "letter" else None  # paper: the short code
        out.append((link or values["accept_url"], "the acceptance link"))
        duration = values["duration"]
        until = isinstance(duration, dict)
        out.append((fmt.date(duration["until"]) if until else fmt.months(duration), "the contract duration"))
        prices("price_elements")
        if channel != "sms":
            out.append((values["terms_url"], "the link to the terms"))
    return out
