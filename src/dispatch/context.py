"""The variables a template sees (the translators' contract, SPEC §5).

Every template gets:

``recipient``
    ``id``, ``name`` (from the address, may be None), ``country``, ``language``,
    ``kind``, ``status``, ``email``, ``phone``, ``address`` (mapping or None).
``message``
    ``id``, ``type``, ``category`` (the decided one: a renewal of another product is
    ``marketing``), ``channel``, ``language``, ``locale``, ``country``, ``currency``,
    ``date`` (today in the recipient's time zone), ``unsubscribe_url`` (marketing,
    newsletters and surveys; None otherwise), ``send_after`` and ``deadline``
    (datetimes or None).
``company``
    ``name``, ``email``, ``phone``, ``website``, ``address`` (list of lines),
    ``business_id``, ``service_hours``, ``terms_url`` — per-country values applied.
``vat``
    ``rate`` (percent as ``Decimal``, 0 where exempt), ``included`` (True for
    households: the prices shown include VAT) and ``exempt`` (household electricity
    in Nordland, Troms and Finnmark carries no VAT). Templates show it with
    ``{% include "_partials/vat.txt" %}``.
``unsubscribe_url``, ``preferences_url``
    the opt-out link and the preference page (str or None).
the data fields
    every field of the message data at top level (``effective_on``,
    ``price_elements``...), dates as ``date``, amounts as ``Decimal``, texts given
    per language already resolved to the message's language. Optional fields that
    were not given are not defined (``{% if duration is defined %}``).
per type
    ``contract_confirmation``: ``withdrawal_ends_on`` (the last day of the 14-day
    withdrawal right: households only, None for businesses) and ``terms_url`` (the
    data's, else ``company.terms_url``); ``renewal_offer`` and ``marketing``:
    ``offer_url`` (the data's, else ``company.website``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from .config import DEFAULT_VAT_RATES, VatConfig
from .messages import MessageData, MessageType
from .models import Decision, Recipient

RESERVED = ("recipient", "message", "company", "vat", "unsubscribe_url", "preferences_url")
#: Context values some types add beside their data (see the module docstring).
DERIVED = {
    "contract_confirmation": ("withdrawal_ends_on", "terms_url"),
    "renewal_offer": ("offer_url",),
    "marketing": ("offer_url",),
}
#: Days a consumer may withdraw from a distance or off-premises contract (Directive 2011/83/EU Art 9).
WITHDRAWAL_DAYS = 14


@dataclass(frozen=True, slots=True)
class Vat:
    """The VAT a message's prices carry for its recipient."""

    #: Percent, e.g. ``Decimal("25.5")``; 0 where household electricity is exempt.
    rate: Decimal
    #: True for households: the prices shown include VAT. Businesses see prices without VAT.
    included: bool
    #: True where household electricity is VAT-exempt (Northern Norway).
    exempt: bool


def vat_for(recipient: Recipient, config: VatConfig | None = None) -> Vat:
    """The VAT that applies to ``recipient``'s electricity prices.

    The exemption is decided by the postal code of the recipient's address; without
    an address the country's rate applies.
    """
    config = config or VatConfig()
    country = recipient.country
    rate = config.rates.get(country, DEFAULT_VAT_RATES.get(country, 0.0))
    household = recipient.kind != "business"
    address = recipient.address
    postal_code = address.postal_code if address is not None else None
    exempt = household and postal_code is not None and _in_ranges(postal_code, config.household_exempt.get(country, ()))
    return Vat(rate=Decimal("0") if exempt else Decimal(str(rate)).normalize(), included=household, exempt=exempt)


def _in_ranges(postal_code: str, ranges: Any) -> bool:
    digits = "".join(ch for ch in str(postal_code) if ch.isdigit())
    if not digits:
        return False
    code = int(digits)
    for item in ranges:
        low, _, high = item.partition("-")
        if int(low) <= code <= int(high or low):
            return True
    return False


def recipient_view(recipient: Recipient) -> dict[str, Any]:
    return {
        "id": recipient.id,
        "name": recipient.name,
        "country": recipient.country,
        "language": recipient.language,
        "kind": recipient.kind,
        "status": recipient.status,
        "email": recipient.email,
        "phone": recipient.phone,
        "address": recipient.address.as_dict() if recipient.address else None,
    }


def build_context(
    *,
    message_type: MessageType,
    decision: Decision,
    recipient: Recipient,
    data: MessageData,
    chain: tuple[str, ...],
    message_id: str,
    locale: str,
    currency: str,
    today: date,
    company: Mapping[str, Any],
    unsubscribe_url: str | None,
    preferences_url: str | None = None,
    vat: VatConfig | None = None,
) -> dict[str, Any]:
    """The render context for one message (see the module docstring).

    ``vat`` is the ``[vat]`` configuration (default: the built-in rates).
    """
    context: dict[str, Any] = dict(data.localized(chain))
    for name in RESERVED:
        context.pop(name, None)
    context["recipient"] = recipient_view(recipient)
    context["message"] = {
        "id": message_id,
        "type": message_type.name,
        "category": decision.category,
        "channel": decision.channel,
        "language": decision.language,
        "locale": locale,
        "country": recipient.country,
        "currency": currency,
        "date": today,
        "unsubscribe_url": unsubscribe_url,
        "send_after": decision.send_after,
        "deadline": decision.deadline,
    }
    context["company"] = company
    context["vat"] = vat_for(recipient, vat)
    context["unsubscribe_url"] = unsubscribe_url
    context["preferences_url"] = preferences_url
    if message_type.name == "contract_confirmation":
        signed_on = context.get("signed_on")
        household = recipient.kind != "business"
        context["withdrawal_ends_on"] = (
            signed_on + timedelta(days=WITHDRAWAL_DAYS) if household and isinstance(signed_on, date) else None
        )
        context["terms_url"] = context.get("terms_url") or company.get("terms_url")
    if message_type.name in ("renewal_offer", "marketing"):
        context["offer_url"] = context.get("offer_url") or company.get("website")
    return context


def needs_unsubscribe(message_type: MessageType, category: str) -> bool:
    """Marketing, newsletters and surveys carry an unsubscribe (objection) link."""
    return message_type.unsubscribe or category == "marketing"
