"""What the preference page shows, and which ledger entries a submitted form makes (SPEC §11).

Pure functions over a :class:`~dispatch.models.Recipient` (as stored with the
message the link came from) and the consent ledger: no HTTP, no templates. The
state shown is the state the policy engine acts on — the mapping's consents merged
with the ledger, the newest entry winning — so a box is ticked exactly when that
kind of message may go.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import phonenumbers

from ..errors import InputError
from ..models import ALL_CHANNELS, Consent, Recipient

#: Channels a price or terms notice may be sent by, as offered on the page.
NOTICE_CHANNELS = ("email", "sms", "letter")
#: Channels marketing consent is asked for, one box each.
MARKETING_CHANNELS = ("email", "sms", "letter", "phone")
#: Electronic marketing needs consent (or soft opt-in); letters and calls are opt-out.
_ELECTRONIC = frozenset({"email", "sms"})


@dataclass(frozen=True, slots=True)
class Preferences:
    """One recipient's choices as the page shows them."""

    #: Channels offered for notices (those with a usable address), in the type's order.
    notice_options: tuple[str, ...]
    #: The channel notices go by now (one of ``notice_options``), or None when none is usable.
    notice_channel: str | None
    #: Channels on which marketing may be sent now.
    marketing: frozenset[str]
    #: A full direct-marketing ban (objection) is in force.
    marketing_ban: bool
    #: The ban comes from the customer's record (``marketing_blocked``) and cannot be lifted here.
    ban_locked: bool
    newsletter: bool
    survey: bool


@dataclass(frozen=True, slots=True)
class Change:
    """One ledger entry to record."""

    purpose: str
    channel: str
    granted: bool


def current_preferences(
    person: Recipient,
    ledger: Sequence[Consent],
    *,
    usable: Callable[[str], bool],
    notice_order: Sequence[str],
    marketing_channels: Sequence[str] = MARKETING_CHANNELS,
    now: datetime,
) -> Preferences:
    """The page's view of ``person``: the mapping's consents merged with ``ledger`` (newest wins)."""
    entries = sorted((c for c in (*person.consents, *ledger) if c.at <= now), key=lambda c: c.at)
    options = tuple(c for c in notice_order if c in NOTICE_CHANNELS and usable(c))
    chosen = [c.channel for c in entries if c.purpose == "notice_channel" and c.granted and c.channel in options]
    if chosen:
        notice: str | None = chosen[-1]
    else:
        prefs = person.preferred_channels
        wanted = [prefs.get(k) for k in ("price_change", "statutory", "default")]
        notice = next((c for c in wanted if c in options), options[0] if options else None)

    def latest(purpose: str, channel: str) -> Consent | None:
        for entry in reversed(entries):
            if entry.purpose == purpose and entry.channel in (channel, ALL_CHANNELS):
                return entry
        return None

    marketing_entries = [c for c in entries if c.purpose == "marketing"]
    ban = person.marketing_blocked or bool(
        marketing_entries and marketing_entries[-1].channel == ALL_CHANNELS and not marketing_entries[-1].granted
    )
    allowed = set()
    if not ban:
        for channel in marketing_channels:
            entry = latest("marketing", channel)
            if entry is not None:
                on = entry.granted
            elif channel in _ELECTRONIC:
                on = person.status == "active"  # soft opt-in for own customers
            else:
                on = True
            if on:
                allowed.add(channel)
    newsletter = latest("newsletter", ALL_CHANNELS)
    survey = latest("survey", ALL_CHANNELS)
    return Preferences(
        notice_options=options,
        notice_channel=notice,
        marketing=frozenset(allowed),
        marketing_ban=ban,
        ban_locked=person.marketing_blocked,
        newsletter=newsletter.granted if newsletter is not None else person.newsletter,
        survey=survey.granted if survey is not None else True,
    )


def changes_from_form(
    before: Preferences, form: Mapping[str, Sequence[str]], marketing_channels: Sequence[str] = MARKETING_CHANNELS
) -> list[Change]:
    """The ledger entries that turn ``before`` into what the submitted ``form`` says.

    ``form`` maps field names to their values (a checkbox left empty is absent):
    ``notice_channel`` (one channel), ``marketing`` (channels, repeated),
    ``marketing_ban``, ``newsletter``, ``survey``. Values that the page did not
    offer raise :class:`~dispatch.errors.InputError` and nothing is recorded.
    """
    problems = []
    notice = list(form.get("notice_channel") or [])
    if len(notice) > 1 or (notice and notice[0] not in before.notice_options):
        problems.append("notice_channel is not one of the channels offered")
    marketing = set(form.get("marketing") or [])
    if not marketing <= set(marketing_channels):
        problems.append("marketing names a channel that was not offered")
    flags = {}
    for name in ("marketing_ban", "newsletter", "survey"):
        values = list(form.get(name) or [])
        if values not in ([], ["on"]):
            problems.append(f"{name} must be a ticked or empty box")
        flags[name] = bool(values)
    if problems:
        raise InputError("the form was not filled in as offered:", problems)

    out: list[Change] = []
    if notice and notice[0] != before.notice_channel:
        out.append(Change("notice_channel", notice[0], True))
    ban = flags["marketing_ban"] or before.ban_locked
    if ban and not before.marketing_ban:
        out.append(Change("marketing", ALL_CHANNELS, False))
    elif not ban and before.marketing_ban:
        # Lifting the ban: each channel is set explicitly, as ticked, after it.
        out.extend(Change("marketing", c, c in marketing) for c in marketing_channels)
    elif not ban:
        for channel in marketing_channels:
            wanted = channel in marketing
            if wanted != (channel in before.marketing):
                out.append(Change("marketing", channel, wanted))
    if flags["newsletter"] != before.newsletter:
        out.append(Change("newsletter", ALL_CHANNELS, flags["newsletter"]))
    if flags["survey"] != before.survey:
        out.append(Change("survey", ALL_CHANNELS, flags["survey"]))
    return out


def stop_all_marketing(before: Preferences) -> list[Change]:
    """The one-click "stop all marketing" of the page: a full direct-marketing ban, unless one is in force.

    An objection to direct marketing must be honoured on every channel at once
    (GDPR art. 21(2)-(3)); the page offers it as one button.
    """
    return [] if before.marketing_ban else [Change("marketing", ALL_CHANNELS, False)]


@dataclass(frozen=True, slots=True)
class OptOutSummary:
    """What an opt-out changed, as the done page says it: kinds of message that stop and that may go on.

    Kinds are ``marketing:<channel>``, ``newsletter`` and ``survey``. Statutory notices
    (price and terms changes) are never among them: they go whatever the customer chose.
    """

    stopped: tuple[str, ...]
    continuing: tuple[str, ...]
    #: The channel statutory notices go by (None: no usable address is known).
    notice_channel: str | None


def opt_out_summary(
    after: Preferences, purpose: str, channel: str, marketing_channels: Sequence[str] = MARKETING_CHANNELS
) -> OptOutSummary:
    """What stopped with an opt-out from ``purpose`` on ``channel`` (``all``: every channel), and what goes on."""
    if purpose == "marketing":
        stopped = tuple(f"marketing:{c}" for c in marketing_channels if channel == ALL_CHANNELS or c == channel) or (
            f"marketing:{channel}",
        )
    else:
        stopped = (purpose,)
    continuing = [f"marketing:{c}" for c in marketing_channels if c in after.marketing]
    if after.newsletter:
        continuing.append("newsletter")
    if after.survey:
        continuing.append("survey")
    return OptOutSummary(stopped, tuple(k for k in continuing if k not in stopped), after.notice_channel)


@dataclass(frozen=True, slots=True)
class Masked:
    """An address as the page may show it, and the parts a screen reader is told instead of the dots."""

    shown: str
    #: Phone numbers: the last two digits ("ending in 43"); None for email.
    ending: str | None = None
    #: Email: the first character of the mailbox and the domain.
    first: str | None = None
    domain: str | None = None


def mask_email(address: str) -> str:
    """``m•••@example.fi``: the first character of the mailbox and the domain."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}•••@{domain}" if local else "•••"


def mask_phone(number: str) -> str:
    """``+358 •••• ••67``: the country code and the last two digits of an E.164 number."""
    try:
        code = str(phonenumbers.parse(number).country_code)
    except phonenumbers.NumberParseException:
        return "•••"
    digits = number.lstrip("+")[len(code) :]
    if len(digits) < 4:
        return f"+{code} •••"
    return f"+{code} •••• ••{digits[-2:]}"


def masked_addresses(person: Recipient) -> dict[str, Masked]:
    """The masked email and phone of ``person`` (what the page may show of them), per channel."""
    out: dict[str, Masked] = {}
    if person.email:
        local, _, domain = person.email.rpartition("@")
        out["email"] = Masked(mask_email(person.email), first=local[:1] or None, domain=domain or None)
    if person.phone:
        shown = mask_phone(person.phone)
        ending = shown[-2:] if shown[-2:].isdigit() else None
        out["sms"] = out["phone"] = Masked(shown, ending=ending)
    return out
