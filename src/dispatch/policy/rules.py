"""The rules of SPEC §4, one small pure function per reason code.

Each rule takes a :class:`Situation` and returns ``None`` when it does not apply,
or a short explanation (stored in :attr:`Decision.notes` under the rule's code)
when it suppresses the message. :data:`RULES` lists them with the categories they
apply to; statutory messages are only ever subject to ``no_address`` and
``notice_period``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ..messages import MessageData, MessageType
from ..models import Recipient
from .calendar import add_duration, add_months, add_years
from .facts import ConsentView, Facts, RegisterInfo, register_is_fresh
from .settings import CountryPolicy, PolicySettings

ELECTRONIC = frozenset({"email", "sms"})
#: Channels whose marketing do-not-contact registers cover.
REGISTER_CHANNELS = frozenset({"letter", "phone"})
MARKETING = "marketing"
_YEAR = timedelta(days=365)


@dataclass(slots=True)
class Situation:
    """Everything a rule may look at for one decision.

    ``now`` is the moment as the caller gave it; ``now_utc`` the same instant in UTC
    (for durations: 7 days are 7 × 24 hours, also across a switch to summer time);
    ``local_now`` and ``today`` are the recipient's clock and calendar day.
    """

    recipient: Recipient
    message_type: MessageType
    category: str
    data: MessageData
    channel: str | None
    now: datetime
    now_utc: datetime
    local_now: datetime
    today: date
    country: CountryPolicy
    settings: PolicySettings
    facts: Facts
    consents: ConsentView
    registers: Mapping[str, RegisterInfo]


Rule = Callable[[Situation], "str | None"]


def no_consent(s: Situation) -> str | None:
    """Electronic marketing needs consent, or soft opt-in for an active customer."""
    if s.channel not in ELECTRONIC:
        return None
    if s.consents.latest(MARKETING, s.channel) is not None:
        return None  # consent given, or withdrawn: a withdrawal is reported as opted_out
    if s.recipient.status == "active":
        # Soft opt-in: own customer, similar products, opt-out in every message. An
        # objection (marketing_blocked) ends it, and is reported as opted_out.
        return None
    return f"no marketing consent for {s.channel} and not an active customer (soft opt-in)"


def opted_out(s: Situation) -> str | None:
    """An objection to direct marketing, or a withdrawn consent, is honoured at once."""
    if s.recipient.marketing_blocked:
        return "direct marketing blocked (objection on all channels)"
    if s.channel is None:
        return None
    entry = s.consents.latest(MARKETING, s.channel)
    if entry is not None and not entry.granted:
        scope = "all channels" if entry.channel == "all" else entry.channel
        return f"marketing consent withdrawn for {scope} on {entry.at.date().isoformat()} ({entry.source})"
    return None


def unsubscribed(s: Situation) -> str | None:
    """A newsletter needs a subscription; a survey honours an objection.

    The mapping's undated ``newsletter`` flag: ``false`` is an objection and always
    wins; ``true`` is a subscription that yields to a withdrawal in the ledger;
    absent, the newest dated entry decides.
    """
    mt = s.message_type
    if mt.subscription:
        flag = s.recipient.newsletter if mt.subscription == "newsletter" else None
        if flag is False:
            return f"not subscribed to {mt.subscription} (the customer data says no)"
        entry = s.consents.latest(mt.subscription, s.channel or "all")
        if entry is not None:
            return None if entry.granted else f"unsubscribed from {mt.subscription} on {entry.at.date()}"
        return None if flag else f"not subscribed to {mt.subscription}"
    if mt.objection:
        entry = s.consents.latest(mt.objection, s.channel or "all")
        if entry is not None and not entry.granted:
            return f"objected to {mt.objection} on {entry.at.date()}"
    return None


def _registers_apply(s: Situation) -> bool:
    """Would the country's do-not-contact registers apply to this letter or call?"""
    if s.channel not in REGISTER_CHANNELS:
        return False
    if s.country.registers_exempt_active_customers and s.recipient.status == "active":
        return False
    return not s.consents.granted(MARKETING, s.channel)  # the person asked for it on this channel


def _covers(info: RegisterInfo | None, s: Situation) -> bool:
    return info is not None and info.country == s.recipient.country and s.channel in info.channels


def do_not_contact(s: Situation) -> str | None:
    """Letter and phone marketing skip people on their country's register."""
    if not s.facts.listed_on or not _registers_apply(s):
        return None
    for name in sorted(s.facts.listed_on):
        if _covers(s.registers.get(name), s):
            return f"listed on {name}"
    return None


def register_unavailable(s: Situation) -> str | None:
    """Fail closed: a register that would apply but was never loaded, or is stale, blocks the send."""
    if not _registers_apply(s):
        return None
    refresh = s.country.register_refresh_days
    problems = []
    for name, info in sorted(s.registers.items()):
        if not _covers(info, s):
            continue
        as_of = s.facts.registers_as_of.get(name)
        if as_of is None:
            problems.append(f"{name} has never been loaded")
        elif not register_is_fresh(as_of, s.now_utc, refresh):
            problems.append(f"{name} is as of {as_of.date().isoformat()}, older than {refresh} days")
    return "; ".join(problems) or None


def minor(s: Situation) -> str | None:
    """No marketing to anyone under the age limit (18)."""
    born = s.recipient.birth_date
    if born is None:
        return None
    adult_on = add_years(born, s.settings.adult_age)
    if s.today < adult_on:
        return f"under {s.settings.adult_age} until {adult_on.isoformat()}"
    return None


def quiet_period(s: Situation) -> str | None:
    """No marketing to a former customer within 6 months of the last paid invoice."""
    if s.recipient.status != "former":
        return None
    paid = s.recipient.last_invoice_paid_on
    if paid is None:
        return "former customer without last_invoice_paid_on: quiet period cannot be ruled out"
    ends = add_months(paid, s.settings.former_quiet_months)
    if s.today < ends:
        return f"former customer: quiet until {ends.isoformat()}"
    return None


def retention_expired(s: Situation) -> str | None:
    """Former customers after 24 months, prospects whose data is over 6 months old."""
    r = s.recipient
    if r.status == "former" and r.last_invoice_paid_on is not None:
        ends = add_months(r.last_invoice_paid_on, s.settings.former_retention_months)
        if s.today > ends:
            return f"former customer: marketing data expired on {ends.isoformat()}"
    if r.status == "prospect":
        if r.data_verified_on is None:
            return "prospect without data_verified_on: data age unknown"
        ends = add_months(r.data_verified_on, s.settings.prospect_retention_months)
        if s.today > ends:
            return f"prospect data older than {s.settings.prospect_retention_months} months (since {ends})"
    return None


def frequency_cap(s: Situation) -> str | None:
    """At most N marketing messages in any 365 days and 1 per 7 days, across all channels.

    Earlier messages count, and so do messages already decided but scheduled for
    later (a call waiting for calling hours, an SMS waiting for the morning).
    """
    history = s.facts.history
    if not history:
        return None
    now = s.now_utc
    limit = s.settings.marketing_per_year
    gap = timedelta(days=s.settings.marketing_min_days_between)
    times = sorted(c.at for c in history if c.category == MARKETING and now - _YEAR < c.at < now + _YEAR)
    if not times:
        return None
    past = [t for t in times if t <= now]
    # The 365-day windows that hold ``now`` start after now - 365 days and at the latest at
    # ``now``; the busiest one starts right after now - 365 days or at an earlier message.
    busiest = len(past)
    if len(past) < len(times):
        for start in past:
            busiest = max(busiest, sum(1 for t in times if start <= t < start + _YEAR))
    if busiest >= limit:
        return f"{busiest} marketing messages within 365 days (limit {limit})"
    near = [t for t in times if abs(t - now) < gap]
    if near:
        return f"a marketing message on {near[-1].date()} (at most 1 per {gap.days} days)"
    return None


def address_suppressed(s: Situation) -> str | None:
    """The chosen channel's address bounced, was reported invalid, or complained (SPEC §4, §10).

    Statutory messages never get here: their channel choice skips suppressed addresses.
    """
    if s.channel is not None and s.channel in s.facts.suppressed:
        return f"the {s.channel} address is on the suppression list"
    return None


def notice_arrival(s: Situation, sent: date) -> tuple[date, date]:
    """(the day a notice sent on ``sent`` arrives, the earliest effective date it allows)."""
    lead = s.country.notice_business if s.recipient.kind == "business" else s.country.notice_household
    delivery_days = s.settings.delivery_days.get(s.channel or "", 0)
    arrives = s.country.calendar.add_working_days(sent, delivery_days) if delivery_days else sent
    return arrives, add_duration(arrives, lead)


def notice_period(s: Situation) -> str | None:
    """A change notice must reach the customer the country's lead time before it takes effect."""
    field_name = s.message_type.notice_field
    if not field_name:
        return None
    effective: date = s.data[field_name]
    arrives, earliest = notice_arrival(s, s.today)
    if earliest > effective:
        delivery_days = s.settings.delivery_days.get(s.channel or "", 0)
        how = f" (arrives {arrives.isoformat()} by {s.channel})" if delivery_days else ""
        return f"effective_on {effective.isoformat()} is too soon: earliest allowed is {earliest.isoformat()}{how}"
    return None


def renewal_window(s: Situation, sent: date) -> tuple[date, date, date] | None:
    """(arrival of a notice sent on ``sent``, earliest and latest arrival allowed) before a fixed term ends."""
    field_name = s.message_type.term_end_field
    window = s.country.renewal_notice
    if not field_name or window is None or s.data.get(field_name) is None:
        return None
    ends: date = s.data[field_name]
    earliest, latest = ((-months, -days) for months, days in window)
    delivery_days = s.settings.delivery_days.get(s.channel or "", 0)
    arrives = s.country.calendar.add_working_days(sent, delivery_days) if delivery_days else sent
    return arrives, add_duration(ends, earliest), add_duration(ends, latest)


def renewal_notice(s: Situation) -> str | None:
    """Where the country sets one (Sweden: 90 to 60 days; ellagen and Energimarknadsinspektionen's
    guidance), the notice that a fixed-term contract ends must arrive within that window before the end:
    refused under ``notice_period`` like a late price notice, never sent out of it."""
    window = renewal_window(s, s.today)
    if window is None:
        return None
    arrives, first, last = window
    field_name = s.message_type.term_end_field
    ends = s.data[field_name]
    by = f" by {s.channel}" if s.settings.delivery_days.get(s.channel or "", 0) else ""
    if arrives > last:
        return (
            f"{field_name} {ends.isoformat()} is too soon: in {s.recipient.country} the customer must be told "
            f"by {last.isoformat()} (this would arrive {arrives.isoformat()}{by})"
        )
    if arrives < first:
        return (
            f"{field_name} {ends.isoformat()} is too far off: in {s.recipient.country} the notice may arrive "
            f"from {first.isoformat()} (this would arrive {arrives.isoformat()}{by})"
        )
    return None


#: (reason code, categories it applies to, rule). Order is the order reasons are listed.
RULES: tuple[tuple[str, frozenset[str], Rule], ...] = (
    ("no_consent", frozenset({"marketing"}), no_consent),
    ("opted_out", frozenset({"marketing"}), opted_out),
    ("unsubscribed", frozenset({"service"}), unsubscribed),
    ("do_not_contact", frozenset({"marketing"}), do_not_contact),
    ("register_unavailable", frozenset({"marketing"}), register_unavailable),
    ("minor", frozenset({"marketing"}), minor),
    ("quiet_period", frozenset({"marketing"}), quiet_period),
    ("retention_expired", frozenset({"marketing"}), retention_expired),
    ("frequency_cap", frozenset({"marketing"}), frequency_cap),
    ("address_suppressed", frozenset({"service", "marketing"}), address_suppressed),
    ("notice_period", frozenset({"statutory"}), notice_period),
    ("notice_period", frozenset({"service", "marketing"}), renewal_notice),
)

#: Every reason code a decision can carry (SPEC §4).
REASON_CODES: tuple[str, ...] = (*dict.fromkeys(code for code, _, _ in RULES), "no_address")
