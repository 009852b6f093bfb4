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
from datetime import UTC, datetime, time
from typing import Any

from ..errors import InputError, InvalidData, PluginError, TemplateNotFound, UnsupportedCountry
from ..messages import MessageData, MessageType
from ..models import CATEGORIES, Decision, Recipient
from .calendar import next_window_start, quiet_until
from .facts import NO_FACTS, ConsentView, Facts, RegisterInfo
from .rules import ELECTRONIC, MARKETING, RULES, Rule, Situation, notice_arrival
from .settings import PolicySettings

#: ``has_parts(message_type, channel, language) -> bool``: are the templates there?
TemplateProbe = Callable[[str, str, str], bool]
#: ``address(channel, recipient) -> address or None``
AddressProbe = Callable[[str, Recipient], Any]

#: ``now`` must leave a year of calendar arithmetic on either side of it.
EARLIEST_NOW = datetime(2, 1, 1, tzinfo=UTC)
LATEST_NOW = datetime(9998, 1, 1, tzinfo=UTC)
#: The rules that apply to each category, in the order their reasons are listed.
RULES_BY_CATEGORY: dict[str, tuple[tuple[str, Rule], ...]] = {
    category: tuple((code, rule) for code, categories, rule in RULES if category in categories)
    for category in CATEGORIES
}
_NO_CONSENTS = ConsentView()
#: The ledger purpose of the preference centre's "channel for price and terms notices" (SPEC §11).
NOTICE_CHANNEL = "notice_channel"


@dataclass(frozen=True, slots=True)
class LanguageChains:
    """Fallback chains per preferred language: one for statutory messages, one for the rest."""

    fallback: Mapping[str, tuple[str, ...]]
    statutory: Mapping[str, tuple[str, ...]]

    def chain(self, language: str, category: str) -> tuple[str, ...]:
        table = self.statutory if category == "statutory" else self.fallback
        return table.get(language) or (language,)


def effective_category(message_type: MessageType, data: Mapping[str, Any]) -> str:
    """The category whose rules apply: a renewal offering another product is marketing.

    Such a type must say what the customer has now (``current_product``): without it
    the engine cannot tell a renewal from an offer, and raises :class:`InvalidData`
    rather than guess.
    """
    if message_type.marketing_if_other_product:
        current = data.get("current_product")
        if current is None or (isinstance(current, str) and not current.strip()):
            raise InvalidData(
                f"{message_type.name} needs current_product: without it a renewal cannot be told from "
                "an offer of another product (which is marketing)"
            )
        if current != data.get("product"):
            return "marketing"
    return message_type.category


def notice_channel(message_type: MessageType, consents: ConsentView) -> str | None:
    """The channel chosen in the preference centre for price and terms notices, if any.

    Only change notices (types with a ``notice_field``) honour it; the newest
    ``notice_channel`` entry counts, and a withdrawn one means "no choice".
    """
    if not message_type.notice_field or not consents:
        return None
    entry = consents.newest(NOTICE_CHANNEL)
    return entry.channel if entry is not None and entry.granted else None


def choose_channel(
    recipient: Recipient,
    message_type: MessageType,
    category: str,
    address: AddressProbe,
    chosen: str | None = None,
) -> str | None:
    """``chosen`` (the preference centre's notice channel), then the preference for the type,
    then the category, then ``default``, then the type's order.

    Channels the type does not allow, and channels without a usable address, are skipped.
    """
    prefs = recipient.preferred_channels
    candidates = [chosen] if chosen else []
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
    now_utc = _checked_utc(now)
    country = settings.countries.get(recipient.country)
    if country is None:
        raise UnsupportedCountry(f"no policy for country {recipient.country!r}")
    category = effective_category(message_type, data)
    rules = RULES_BY_CATEGORY.get(category)
    if rules is None:
        raise PluginError(f"message type {message_type.name!r} has unknown category {category!r}")
    # Statutory rules never read consents: merge and sort them only for a notice's channel choice.
    if category != "statutory" or (message_type.notice_field and (recipient.consents or facts.ledger)):
        consents = ConsentView(recipient.consents, facts.ledger, now=now_utc)
    else:
        consents = _NO_CONSENTS
    probe = address
    if category == "statutory" and facts.suppressed:  # a statutory message moves on to a usable channel

        def probe(channel: str, person: Recipient) -> Any:
            return None if channel in facts.suppressed else address(channel, person)

    channel = choose_channel(recipient, message_type, category, probe, notice_channel(message_type, consents))
    language = choose_language(recipient, message_type, category, channel, chains, has_parts)
    local_now = now_utc.astimezone(country.tz)
    situation = Situation(
        recipient=recipient,
        message_type=message_type,
        category=category,
        data=data,
        channel=channel,
        now=now,
        now_utc=now_utc,
        local_now=local_now,
        today=local_now.date(),
        country=country,
        settings=settings,
        facts=facts,
        consents=consents,
        registers=registers or {},
    )
    reasons: list[str] = []
    notes: dict[str, str] = {}
    if channel is None:
        reasons.append("no_address")
        allowed_channels = ", ".join(message_type.channels)
        listed = f" ({', '.join(sorted(facts.suppressed))} suppressed)" if facts.suppressed else ""
        notes["no_address"] = f"no usable address on {allowed_channels}{listed}"
    for code, rule in rules:
        note = rule(situation)
        if note is not None:
            reasons.append(code)
            notes[code] = note
    if "notice_period" in reasons and message_type.notice_field:
        notes["earliest_effective_on"] = notice_arrival(situation, situation.today)[1].isoformat()
    allowed = not reasons
    deadline = _deadline(situation)
    send_after = _send_after(situation, deadline) if channel else None
    return Decision(
        allowed=allowed,
        message_type=message_type.name,
        category=category,
        channel=channel,
        language=language,
        reasons=reasons,
        legal_basis=_legal_basis(situation, reasons),
        send_after=send_after,
        deadline=deadline,
        recipient_id=recipient.id,
        requested_language=recipient.language if language != recipient.language else None,
        notes=notes,
        rules_version=settings.version,
        calling_window=_calling_window(situation, send_after) if channel == "phone" and send_after else None,
    )


def _checked_utc(now: datetime) -> datetime:
    """``now`` in UTC; an :class:`InputError` if it is naive or at the ends of the calendar."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise InputError("now must be a timezone-aware datetime")
    try:
        now_utc = now.astimezone(UTC)
    except OverflowError:
        now_utc = None
    if now_utc is None or not EARLIEST_NOW <= now_utc < LATEST_NOW:
        raise InputError(f"now {now.isoformat()} is outside the range the policy calendar supports (years 2 to 9997)")
    return now_utc


def _legal_basis(s: Situation, reasons: list[str]) -> str | None:
    """The type's basis; for marketing, what the message may rely on on its channel.

    None when there is nothing to rely on: no channel, no consent, or an objection
    or withdrawal (which ends soft opt-in and legitimate interest alike).
    """
    if s.category != MARKETING:
        return s.message_type.legal_basis
    if s.channel is None or "no_consent" in reasons or "opted_out" in reasons:
        return None
    if s.consents.granted(MARKETING, s.channel):
        return "consent"
    if s.channel in ELECTRONIC:
        return "soft_opt_in"
    return "legitimate_interest"


def _send_after(s: Situation, deadline: datetime | None) -> datetime | None:
    """Calling hours for phone tasks; the end of the night for SMS of every category.

    A statutory SMS waits for the morning too, unless waiting would break its
    deadline or its notice lead time: then it goes now.
    """
    c = s.country
    if s.channel == "phone":
        return next_window_start(s.local_now, c.calling_days, c.calling_start, c.calling_end, c.calendar)
    if s.channel != "sms":
        return None
    morning = quiet_until(s.local_now, s.settings.sms_quiet_start, s.settings.sms_quiet_end)
    if morning is None or s.category != "statutory":
        return morning
    if deadline is not None and morning > deadline:
        return None
    field_name = s.message_type.notice_field
    if field_name and morning.date() != s.today:
        effective = s.data[field_name]
        if notice_arrival(s, s.today)[1] <= effective < notice_arrival(s, morning.date())[1]:
            return None
    return morning


def _calling_window(s: Situation, send_after: datetime) -> tuple[datetime, datetime]:
    """The first allowed calling window at or after ``send_after``: that day's calling hours, local time."""
    c = s.country
    day = send_after.astimezone(c.tz).date()
    return datetime.combine(day, c.calling_start, tzinfo=c.tz), datetime.combine(day, c.calling_end, tzinfo=c.tz)


_END_OF_DAY = time(23, 59, 59)


def _deadline(s: Situation) -> datetime | None:
    mt = s.message_type
    if not mt.deadline_field or not mt.deadline_working_days:
        return None
    start = s.data[mt.deadline_field]
    last_day = s.country.calendar.add_working_days(start, mt.deadline_working_days)
    return datetime.combine(last_day, _END_OF_DAY, tzinfo=s.country.tz)
