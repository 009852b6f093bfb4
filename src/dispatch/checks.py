"""``dispatch templates check``: every type × channel × language present, rendering, complete.

For each message type, each channel it allows and each language, the check
reports: missing files; variables a template reads that the type does not provide
(a typo that would fail at send time); render errors with sample data in every
country the language is used in; required content missing from the rendered text
(the new prices, the effective date, the unsubscribe link...); and channel
problems such as SMS texts over their segment limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .context import RESERVED
from .errors import DispatchError
from .messages import MessageType, PriceElement
from .samples import sample_data, sample_recipient
from .segments import non_gsm_characters

if TYPE_CHECKING:
    from .dispatcher import Dispatcher

#: Which countries each language is checked for.
CHECK_COUNTRIES = {"fi": ("FI",), "sv": ("FI", "SE"), "nb": ("NO",), "en": ("FI", "SE", "NO")}
LANGUAGES = ("fi", "sv", "nb", "en")
CHECK_NOW = datetime(2027, 1, 11, 10, 0, tzinfo=UTC)


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
    known = set(RESERVED) | set(mtype.required) | set(mtype.optional) | set(_sample(mtype, "FI"))
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
        data = _sample(mtype, country)
        try:
            parts = d.preview(mtype.name, recipient, data, channel=channel_name, language=language, now=CHECK_NOW)
        except DispatchError as exc:
            problem(f"{country}", f"does not render: {exc}")
            continue
        report.rendered += 1
        values = d.validate_data(mtype.name, data).localized((language, "en", "fi", "sv", "nb"))
        formatter = d.renderer.formatter(language, country)
        for part, text in parts.items():
            filename = channel.parts[part]
            for needle, what in _required(mtype, channel_name, part, values, formatter):
                if needle and needle not in text:
                    problem(filename, f"({country}) does not show {what}: expected {needle!r}")
            if not text.strip():
                problem(filename, f"({country}) renders empty")
        for text in channel.check_rendered(mtype, parts):
            problem(channel.parts.get("text", channel_name), f"({country}) {text}")
        if channel_name == "sms":
            meta = channel.prepare(mtype, parts)
            report.segments[(language, mtype.name, country)] = int(meta.get("segments", 0))
            if meta.get("encoding") == "UCS-2":
                chars = "".join(non_gsm_characters(parts.get("text", "")))
                problem(
                    channel.parts["text"],
                    f"({country}) not GSM-7 because of {chars!r}: the SMS would be "
                    "sent as UCS-2, with less than half the characters per segment",
                )


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
        if channel != "sms":
            prices("price_elements")
    elif name == "price_change":
        out.append((fmt.date(values["effective_on"]), "the effective date"))
        prices("price_elements", old=True)
    elif name == "terms_change":
        out.append((fmt.date(values["effective_on"]), "the effective date"))
        if channel != "sms":
            for change in values["changes"]:
                out.append((change, "every change"))
    elif name == "renewal_offer":
        out.append((values["product"], "the product"))
        out.append((fmt.date(values["current_ends_on"]), "when the current contract ends"))
        out.append((fmt.date(values["respond_by"]), "the reply-by date"))
        if channel != "sms":
            prices("price_elements")
    elif name == "newsletter":
        out.append((values["title"], "the title"))
        for section in values["sections"]:
            out.append((section["heading"], "every section heading"))
    elif name == "marketing":
        out.append((values["product"], "the product"))
        out.append((fmt.date(values["offer_ends_on"]), "when the offer ends"))
        out.append((fmt.months(values["duration"]), "the contract duration"))
        prices("price_elements")
        after = values["after_offer"]
        if isinstance(after, list):
            prices("after_offer")
        else:
            out.append((after, "the terms after the offer"))
    elif name == "survey":
        out.append((values["survey_url"], "the survey link"))
    if (mtype.unsubscribe or mtype.category == "marketing") and channel in ("email", "sms", "letter"):
        out.append(("/u/", "the unsubscribe link"))
    return out
