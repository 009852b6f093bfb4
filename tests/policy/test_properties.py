"""Properties of ``decide()`` over random recipients, histories, registers and moments.

* it never raises anything but a :class:`DispatchError`;
* a statutory message never carries a marketing reason (only no_address, notice_period);
* no marketing message is allowed to a minor, to a marketing_blocked person, or to
  anyone whose newest marketing consent entry for the chosen channel (or "all") is
  a withdrawal;
* the same instant gives the same decision whatever time zone ``now`` is given in;
* a decision is well formed: allowed exactly when there is no reason, reasons known
  and unique, ``send_after`` never before ``now`` and inside calling hours for calls.
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from policykit import LANDLINE, REGISTERS, TYPES, TZ, Kit, address_probe, person

from dispatch.errors import DispatchError
from dispatch.messages import validate_data
from dispatch.models import Consent
from dispatch.policy import REASON_CODES, Contact, Facts, decide
from dispatch.recipients import parse_recipient
from dispatch.samples import sample_data

KIT = Kit()
COUNTRIES = ("FI", "SE", "NO")
CHANNELS = ("email", "sms", "letter", "phone")
PREFERENCE_KEYS = (*TYPES, "statutory", "service", "marketing", "default")
MARKETING_REASONS = {
    "no_consent",
    "opted_out",
    "unsubscribed",
    "do_not_contact",
    "minor",
    "quiet_period",
    "retention_expired",
    "frequency_cap",
}
#: Zones ``now`` may be given in: the three countries', UTC and some far away.
ZONES = (UTC, *TZ.values(), ZoneInfo("America/St_Johns"), ZoneInfo("Pacific/Kiritimati"), ZoneInfo("Asia/Kolkata"))
MOBILE = {"FI": "+358401234567", "SE": "+46701234567", "NO": "+4741234567"}

#: ``POLICY_EXAMPLES=5000 pytest tests/policy/test_properties.py`` for a deeper search.
SETTINGS = settings(
    max_examples=int(os.environ.get("POLICY_EXAMPLES", "250")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

realistic_dates = st.dates(date(1900, 1, 1), date(2100, 12, 31))
#: Dates and moments at the ends of the calendar, where date arithmetic overflows.
extreme_dates = st.dates(date(9975, 1, 1), date.max) | st.dates(date.min, date(30, 12, 31))
any_dates = realistic_dates | extreme_dates | st.dates()
moments = st.datetimes(datetime(1990, 1, 1), datetime(2090, 12, 31), timezones=st.sampled_from(ZONES))
extreme_moments = (
    moments
    | st.datetimes(datetime(9997, 1, 1), timezones=st.sampled_from(ZONES))
    | st.datetimes(max_value=datetime(3, 1, 1), timezones=st.sampled_from(ZONES))
)
consent_moments = st.datetimes(datetime(1990, 1, 1), datetime(2100, 1, 1), timezones=st.sampled_from(ZONES))
#: Earlier (or scheduled) messages: anywhere in the last 400 days, or close to a window's edge.
history_offsets = st.floats(-400, 30, allow_nan=False).map(lambda days: timedelta(days=days)) | st.builds(
    lambda days, minutes: timedelta(days=days, minutes=minutes),
    st.sampled_from((-365, -7, 7)),
    st.integers(-120, 120),
)


def consents(moment_strategy=consent_moments):
    return st.lists(
        st.builds(
            Consent,
            purpose=st.sampled_from(("marketing", "marketing", "newsletter", "survey")),
            channel=st.sampled_from((*CHANNELS, "all")),
            granted=st.booleans(),
            at=moment_strategy,
            source=st.just("test"),
        ),
        max_size=5,
    )


@st.composite
def cases(draw, dates=realistic_dates, nows=moments):
    """(message type name, recipient, validated data, now, facts)."""
    country = draw(st.sampled_from(COUNTRIES))
    now = draw(nows)
    mapping = person(
        country,
        id="P-1",
        language=draw(st.sampled_from((None, "fi", "sv", "en"))),
        kind=draw(st.sampled_from((None, "household", "business"))),
        status=draw(st.sampled_from((None, "prospect", "active", "former"))),
        birth_date=draw(st.none() | dates),
        last_invoice_paid_on=draw(st.none() | dates),
        data_verified_on=draw(st.none() | dates),
        email=draw(st.sampled_from((None, f"someone@example.{country.lower()}"))),
        phone=draw(st.sampled_from((None, MOBILE[country], LANDLINE[country]))),
        address=draw(st.sampled_from((None, person(country)["address"]))),
        preferred_channels=draw(
            st.dictionaries(st.sampled_from(PREFERENCE_KEYS), st.sampled_from(CHANNELS), max_size=3)
        ),
        consents=draw(consents()),
        marketing_blocked=draw(st.booleans()),
        newsletter=draw(st.booleans()),
    )
    type_name = draw(st.sampled_from(tuple(TYPES)))
    data = dict(sample_data(type_name, country))
    data["effective_on"] = draw(dates)
    data["signed_on"] = draw(dates)
    data["current_product"] = draw(st.sampled_from((data.get("product"), "Spot")))  # required for renewal_offer
    history = []
    for offset in draw(st.lists(history_offsets, max_size=6)):
        try:
            moment = now + offset
        except OverflowError:
            continue  # no history before the calendar begins
        category = draw(st.sampled_from(("marketing", "marketing", "service", "statutory")))
        history.append(Contact(moment, "marketing", draw(st.sampled_from(CHANNELS)), category))
    facts = Facts(
        history=tuple(history),
        ledger=tuple(draw(consents())),
        listed_on=frozenset(draw(st.sets(st.sampled_from(tuple(REGISTERS)), max_size=2))),
    )
    return type_name, parse_recipient(mapping), validate_data(TYPES[type_name], data), now, facts


def run(case, now=None):
    type_name, recipient, data, moment, facts = case
    return decide(
        TYPES[type_name],
        recipient,
        data,
        now or moment,
        settings=KIT.settings,
        chains=KIT.chains,
        address=address_probe,
        has_parts=_all_parts,
        facts=facts,
        registers=REGISTERS,
    )


def _all_parts(message_type, channel, language):
    return True


def _is_minor(born: date | None, now: datetime, country: str) -> bool:
    if born is None:
        return False
    today = now.astimezone(TZ[country]).date()
    year = born.year + 18
    adult_on = date(year, 3, 1) if (born.month, born.day) == (2, 29) else born.replace(year=year)
    return today < adult_on


def _newest_marketing_entry(entries: list[Consent], channel: str) -> Consent | None:
    newest = None
    for entry in entries:  # mapping first, then the ledger: at equal times the later one wins
        relevant = entry.purpose == "marketing" and entry.channel in (channel, "all")
        if relevant and (newest is None or entry.at >= newest.at):
            newest = entry
    return newest


# -- properties ---------------------------------------------------------------------------


@SETTINGS
@given(cases(dates=any_dates, nows=extreme_moments))
def test_decide_raises_nothing_but_dispatch_errors(case):
    with contextlib.suppress(DispatchError):
        run(case)


@SETTINGS
@given(cases())
def test_statutory_messages_never_carry_a_marketing_reason(case):
    d = run(case)
    if TYPES[case[0]].category == "statutory":
        assert d.category == "statutory"
        assert set(d.reasons) <= {"no_address", "notice_period"}
        assert d.legal_basis in ("contract", "legal_obligation")


@SETTINGS
@given(cases())
def test_no_marketing_to_minors_objectors_or_withdrawn_consents(case):
    _, recipient, _, now, facts = case
    d = run(case)
    if d.category != "marketing" or not d.allowed:
        return
    assert not _is_minor(recipient.birth_date, now, recipient.country)
    assert not recipient.marketing_blocked
    newest = _newest_marketing_entry([*recipient.consents, *facts.ledger], d.channel)
    assert newest is None or newest.granted
    assert d.legal_basis in ("consent", "soft_opt_in", "legitimate_interest")


@SETTINGS
@given(cases(), st.sampled_from(ZONES))
def test_the_same_instant_in_any_time_zone_gives_the_same_decision(case, zone):
    now = case[3]
    assert run(case, now.astimezone(zone)) == run(case)


@SETTINGS
@given(cases())
def test_decisions_are_well_formed(case):
    type_name, recipient, _, now, _ = case
    d = run(case)
    assert d.allowed == (not d.reasons)
    assert len(set(d.reasons)) == len(d.reasons)
    assert set(d.reasons) <= set(REASON_CODES)
    assert (d.channel is None) == ("no_address" in d.reasons)
    assert d.channel is None or d.channel in TYPES[type_name].channels
    if d.category != "marketing":
        assert not set(d.reasons) & (MARKETING_REASONS - {"unsubscribed"})
    if d.send_after is not None:
        assert d.send_after >= now
        assert d.channel == "phone" or (d.channel == "sms" and d.category == "marketing")
    if d.channel == "phone":
        local = d.send_after.astimezone(TZ[recipient.country])
        country = KIT.settings.countries[recipient.country]
        assert local.isoweekday() in country.calling_days
        assert not country.calendar.is_holiday(local.date())
        assert country.calling_start <= local.time() < country.calling_end
    if d.channel == "sms" and d.category == "marketing" and d.send_after is not None:
        local = d.send_after.astimezone(TZ[recipient.country])
        assert local.time() == time(8, 0)
    if type_name == "contract_confirmation":
        assert d.deadline is not None and d.deadline.date() > case[2]["signed_on"]
    else:
        assert d.deadline is None
