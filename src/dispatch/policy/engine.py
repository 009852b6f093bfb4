"""``decide()``: the pure heart of dispatch.

Given a validated recipient, a message type, its validated data, what is known of
the recipient's history (:class:`~dispatch.policy.facts.Facts`) and ``now``, it
chooses the channel and the language, runs every rule of SPEC §4 and returns a
:class:`~dispatch.models.Decision` listing every reason that applies. It reads
nothing and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from ..errors import InputError, TemplateNotFound, UnsupportedCountry
from ..messages import MessageData, MessageType
from ..models import Decision, Recipient
from .calendar import next_window_start, quiet_until
from .facts import NO_FACTS, ConsentView, Facts, RegisterInfo
from .rules import RULES, Situation
from .settings import PolicySettings

#: ``has_parts(message_type, channel, language) -> bool``: are the templates there?
TemplateProbe = Callable[[str, str, str], bool]
#: ``address(channel, recipient) -> address or None``
AddressProbe = Callable[[str, Recipient], Any]


@dataclass(frozen=True, slots=True)
class LanguageChains:
    """Fallback chains per preferred language: one for statutory messages, one for the rest."""

    fallback: Mapping[str, tuple[str, ...]]
    statutory: Mapping[str, tuple[str, ...]]

    def chain(self, language: str, category: str) -> tuple[str, ...]:
        table = self.statutory if category == "statutory" else self.fallback
        return table.get(language) or (language,)


def effective_category(message_type: MessageType, data: Mapping[str, Any]) -> str:
    """The category whose rules apply: a renewal offering another product is marketing."""
    if message_type.marketing_if_other_product:
        current = data.get("current_product")
        if current and current != data.get("product"):
            return "marketing"
    return message_type.category


def choose_channel(
    recipient: Recipient, message_type: MessageType, category: str, address: AddressProbe
) -> str | None:
    """Preference for the type, then the category, then ``default``, then the type's order.

    Channels the type does not allow, and channels without a usable address, are skipped.
    """
    prefs = recipient.preferred_channels
    candidates = []
    if prefs:
        for key in (message_type.name, category, "default"):
            channel = prefs.get(key)
            if channel:
                candidates.append(channel)
    candidates.extend(message_type.default_order)
    allowed = message_type.channels
    seen: set[str] = set()
    for channel in candidates:
        if channel in seen or channel not in allowed:
            continue
        seen.add(channel)
        if address(channel, recipient) is not None:
            return channel
    return None


def choose_language(
    recipient: Recipient,
    message_type: MessageType,
    category: str,
    channel: str | None,
    chains: LanguageChains,
    has_parts: TemplateProbe,
) -> str:
    """The first language of the recipient's chain that has the channel's templates.

    Raises :class:`TemplateNotFound` when none has: a statutory message is never sent
    in a language its chain does not allow.
    """
    if channel is None:
        return recipient.language
    chain = chains.chain(recipient.language, category)
    for language in chain:
        if has_parts(message_type.name, channel, language):
            return language
    raise TemplateNotFound(
        f"no {channel} templates for {message_type.name!r} in any language allowed for "
        f"{recipient.language!r} {category} messages ({', '.join(chain)})"
    )


def decide(
    message_type: MessageType,
    recipient: Recipient,
    data: MessageData,
    now: datetime,
    *,
    settings: PolicySettings,
    chains: LanguageChains,
    address: AddressProbe,
    has_parts: TemplateProbe,
    facts: Facts = NO_FACTS,
    registers: Mapping[str, RegisterInfo] | None = None,
) -> Decision:
    """Decide whether, how and when ``message_type`` may go to ``recipient`` (SPEC §4)."""
    if now.tzinfo is None:
        raise InputError("now must be a timezone-aware datetime")
    country = settings.countries.get(recipient.country)
    if country is None:
        raise UnsupportedCountry(f"no policy for country {recipient.country!r}")
    category = effective_category(message_type, data)
    channel = choose_channel(recipient, message_type, category, address)
    language = choose_language(recipient, message_type, category, channel, chains, has_parts)
    situation = Situation(
        recipient=recipient,
        message_type=message_type,
        category=category,
        data=data,
        channel=channel,
        now=now,
        today=now.astimezone(country.tz).date(),
        country=country,
        settings=settings,
        facts=facts,
        consents=ConsentView(recipient.consents, facts.ledger),
        registers=registers or {},
    )
    reasons: list[str] = []
    notes: dict[str, str] = {}
    if channel is None:
        reasons.append("no_address")
        allowed_channels = ", ".join(message_type.channels)
        notes["no_address"] = f"no usable address on {allowed_channels}"
    for code, categories, rule in RULES:
        if category not in categories:
            continue
        note = rule(situation)
        if note is not None:
            reasons.append(code)
            notes[code] = note
    allowed = not reasons
    return Decision(
        allowed=allowed,
        message_type=message_type.name,
        category=category,
        channel=channel,
        language=language,
        reasons=reasons,
        legal_basis=_legal_basis(situation, reasons),
        send_after=_send_after(situation) if channel else None,
        deadline=_deadline(situation),
        recipient_id=recipient.id,
        requested_language=recipient.language if language != recipient.language else None,
        notes=notes,
        rules_version=settings.version,
    )


def _legal_basis(s: Situation, reasons: list[str]) -> str | None:
    if s.category != "marketing":
        return s.message_type.legal_basis
    if "no_consent" in reasons:
        return None
    if s.channel and s.consents.granted("marketing", s.channel):
        return "consent"
    if s.channel in ("email", "sms"):
        return "soft_opt_in"
    return "legitimate_interest"


def _send_after(s: Situation) -> datetime | None:
    c = s.country
    if s.channel == "phone":
        return next_window_start(s.now, c.tz, c.calling_days, c.calling_start, c.calling_end, c.calendar)
    if s.channel == "sms" and s.category == "marketing":
        return quiet_until(s.now, c.tz, s.settings.sms_quiet_start, s.settings.sms_quiet_end)
    return None


def _deadline(s: Situation) -> datetime | None:
    mt = s.message_type
    if not mt.deadline_field or not mt.deadline_working_days:
        return None
    start = s.data[mt.deadline_field]
    last_day = s.country.calendar.add_working_days(start, mt.deadline_working_days)
    return datetime.combine(last_day, time(23, 59, 59), tzinfo=s.country.tz)
