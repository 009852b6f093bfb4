"""Offers that need written acceptance (SPEC §13): the offer, its acceptance link, its end.

An electricity contract sold by phone binds the consumer only when they accept a written
offer after the call: FI Kuluttajansuojalaki 6 luku 12 a § (693/2022, in force 1.1.2023),
SE lagen (2005:59) om distansavtal 2 kap. 3 a § (in force 1.9.2018, prop. 2017/18:129),
NO angrerettloven (LOV-2014-06-20-27) § 10 (telephone sales: the offer confirmed in
writing on a durable medium, the consumer bound only by a written acceptance after the
call). So a phone sale never makes a contract in dispatch; it makes an offer:

1. :meth:`Offers.create` (``Dispatcher.offer``) records the offer (state ``open``) and
   sends it as a ``sales_offer`` message by the customer's channel — email, SMS or letter,
   never the phone — with a signed, expiring link to the acceptance page
   (:mod:`dispatch.web.offers`). An offer whose message is suppressed is ``unsent``.
2. :meth:`Offers.accept` records the durable evidence — offer id, content hash, the
   moment, the wording version shown, the channel the offer came by — emits
   ``offer.accepted`` and sends the ``contract_confirmation`` with the offer's data.
   Accepting twice changes nothing; after ``valid_until`` it is refused.
3. :meth:`Offers.decline` (``offer.declined``); :meth:`Offers.expire_due` lapses what
   was not accepted by the end of its ``valid_until`` day in the country's time zone
   (``offer.lapsed``): no contract, no confirmation. The worker runs it every few seconds,
   like the release of scheduled campaigns; ``dispatch offers expire`` runs it at once.

Every state an offer reaches is one append-only row (:mod:`dispatch.store.offers`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from .clock import now_utc
from .errors import DispatchError, InputError
from .events import Event
from .ids import new_id
from .lifecycle import Status
from .links import ExpiringTokens
from .metrics import count_offer
from .models import Receipt, Recipient
from .serialize import to_json
from .store import is_outage
from .store.offers import OfferBook

if TYPE_CHECKING:
    from .store import Store


class OfferHost(Protocol):
    """What offers use of the :class:`~dispatch.Dispatcher` they sit on (named here, so this module
    does not import the Dispatcher: no type-level cycle dispatcher ↔ offers)."""

    config: Any
    events: Any
    policy: Any
    channels: Mapping[str, Any]
    runtime: Any
    offers: Offers

    @property
    def store(self) -> Store: ...

    @property
    def closed(self) -> bool: ...

    def dispatch(self, message_type: str, recipient: Any, data: Any = None, **options: Any) -> Receipt: ...

    def parse_recipient(self, recipient: Any) -> Recipient: ...


logger = logging.getLogger("dispatch.offers")

#: The states of an offer. ``open`` leaves once: to accepted, declined or lapsed.
STATES = ("open", "unsent", "accepted", "declined", "lapsed")
#: The acceptance link keeps working this long after the offer lapsed, to say so clearly.
LINK_GRACE = timedelta(days=30)
#: Data fields dispatch adds to a sales_offer; they are not part of the offer's terms.
ADDED_FIELDS = ("offer_id", "accept_url", "accept_code_url")
#: Letters print a short code (``/o/K7MQ2XWD9H``) instead of a 60-character token; kept in the store.
_CODE_KEY = "offer-code:"


class UnknownOffer(InputError):
    """No offer has that id."""


class OfferClosed(InputError):
    """The offer can no longer be accepted or declined (``state``: where it is)."""

    def __init__(self, message: str, state: str) -> None:
        super().__init__(message)
        self.state = state


class OfferChanged(InputError):
    """What the customer was shown is not the offer as sent (its content hash differs)."""


class OfferReceipt(NamedTuple):
    """What :meth:`Dispatcher.offer` returns: the offer message's receipt and the offer id."""

    receipt: Receipt
    offer_id: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of an acceptance or a decline: the offer as stored now, and whether it already was."""

    offer: dict[str, Any]
    already: bool = False

    @property
    def state(self) -> str:
        return str(self.offer["state"])


def content_hash(offer_id: str, person: Recipient, terms: Mapping[str, Any]) -> str:
    """SHA-256 of the offer as sent: its id, the customer, the kind (VAT, withdrawal right), the terms."""
    body = {
        "offer_id": offer_id,
        "recipient_id": person.id,
        "country": person.country,
        "kind": person.kind,
        "terms": {k: v for k, v in terms.items() if k not in ADDED_FIELDS},
    }
    raw = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


# -- signed links -------------------------------------------------------------------------------


class OfferLinks:
    """Signs and verifies acceptance links: ``/offer/<offer id>.<expiry>.<tag>``.

    The token names the offer (no personal data) and the moment the link stops working;
    only the exact, canonical token verifies (:class:`dispatch.links.ExpiringTokens`).
    """

    def __init__(self, secret: str, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._tokens = ExpiringTokens(secret, "dispatch.offer", "offer")

    def token(self, offer_id: str, expires: datetime) -> str:
        return self._tokens.sign(offer_id, expires)

    def url(self, offer_id: str, expires: datetime) -> str:
        return f"{self.base_url}/offer/{self.token(offer_id, expires)}"

    def verify(self, token: str, now: datetime | None = None) -> str:
        """The offer id of a valid token; :class:`~dispatch.links.ExpiredToken` or
        :class:`~dispatch.links.InvalidToken` otherwise."""
        return self._tokens.verify(token, now or now_utc())


# -- the offers ---------------------------------------------------------------------------------


class Offers:
    """Creates, accepts, declines and lapses offers for one :class:`~dispatch.Dispatcher`."""

    def __init__(self, d: OfferHost) -> None:
        self.d = d
        self._links: OfferLinks | None = None

    @property
    def book(self) -> OfferBook:
        return OfferBook(self.d.store)

    @property
    def links(self) -> OfferLinks:
        if self._links is None:
            secret = self.d.config.links.secret or self.d.store.link_secret()
            self._links = OfferLinks(secret, self.d.config.links.base_url)
        return self._links

    def lapses_at(self, valid_until: date, country: str) -> datetime:
        """The moment an offer valid until ``valid_until`` lapses: that day's end in ``country``'s time zone."""
        tz = self.d.policy.countries[country].tz
        return datetime.combine(valid_until + timedelta(days=1), time(0), tz).astimezone(UTC)

    # -- create ------------------------------------------------------------------------------

    def create(
        self,
        recipient: Mapping[str, Any] | Recipient,
        data: Mapping[str, Any] | None,
        *,
        idempotency_key: str | None = None,
        now: datetime | None = None,
    ) -> OfferReceipt:
        """Record an offer and send it as a ``sales_offer`` (see the module docstring).

        Bad input raises a :class:`~dispatch.errors.DispatchError` naming the field, and writes nothing.
        """
        d = self.d
        if isinstance(data, Mapping) and any(k in data for k in ADDED_FIELDS):
            raise InputError("offer data must not carry offer_id, accept_url or accept_code_url: dispatch makes them")
        inputs = d.pipeline.inputs("sales_offer", recipient, data, now)  # raises before anything is written
        person, values, moment = inputs.recipient, inputs.data, inputs.now
        lapses = self.lapses_at(values["valid_until"], person.country)
        today = moment.astimezone(d.policy.countries[person.country].tz).date()
        problems = []
        if values["valid_until"] < values["sold_on"]:
            problems.append("valid_until is before sold_on")
        if lapses <= moment:
            problems.append(f"valid_until {values['valid_until'].isoformat()} has passed (today is {today})")
        if values["sold_on"] > today:
            problems.append("sold_on is in the future")
        if problems:
            raise InputError("sales_offer data is invalid:", problems)
        if idempotency_key is not None:
            existing = d.store.find_by_key(idempotency_key) if isinstance(idempotency_key, str) else None
            offer = self.book.by_message(existing["id"]) if existing else None
            if existing and offer:
                return OfferReceipt(Receipt.from_row(existing, status="duplicate"), offer["id"])
            if existing:
                raise InputError("idempotency_key was used for another message, not an offer; choose another")
        offer_id = new_id()
        terms = {k: to_json(v) for k, v in values.items()}
        digest = content_hash(offer_id, person, terms)
        self.book.insert(
            {
                "id": offer_id,
                "recipient_id": person.id,
                "country": person.country,
                "content_hash": digest,
                "valid_until": lapses,
                "state": "open",
                "terms": terms,
                "recipient": to_json(person.as_dict()),
                "created_at": moment,
            },
            {"state": "open", "at": moment, "source": "dispatch", "content_hash": digest},
        )
        sent = {
            **terms,
            "offer_id": offer_id,
            "accept_url": self.links.url(offer_id, lapses + LINK_GRACE),
            "accept_code_url": self.code_url(offer_id, lapses + LINK_GRACE),
        }
        try:
            receipt = d.dispatch("sales_offer", person, sent, idempotency_key=idempotency_key, now=moment)
        except Exception:
            self.book.move(offer_id, "open", "unsent", {"at": moment, "source": "dispatch"})
            raise
        self.book.sent(offer_id, receipt.message_id, receipt.channel, receipt.language)
        if receipt.status == Status.QUEUED and receipt.channel == "sms":
            self._durable_copy(offer_id, person, sent, idempotency_key, moment)
        if receipt.status == Status.SUPPRESSED:
            why = {"reasons": list(receipt.reasons)}
            self.book.move(offer_id, "open", "unsent", {"at": moment, "source": "dispatch", "evidence": why})
            count_offer("unsent")
        else:
            count_offer("sent")
        logger.info("offer %s sent to %s as message %s", offer_id, person.id, receipt.message_id)
        return OfferReceipt(receipt, offer_id)

    def _durable_copy(
        self, offer_id: str, person: Recipient, sent: dict[str, Any], key: str | None, moment: datetime
    ) -> None:
        """An SMS carries the key terms and the link; the whole offer also goes in durable form, by
        email or else by letter (FI KSL 6:12 a §, SE 2005:59 2 kap. 3 a §, NO angrerettloven § 10)."""
        d = self.d
        durable = next(
            (c for c in ("email", "letter") if c in d.channels and d.channels[c].address(person) is not None), None
        )
        if durable is None:
            return
        mapping = person.as_dict()
        mapping["preferred_channels"] = {**(mapping.get("preferred_channels") or {}), "sales_offer": durable}
        receipt = d.dispatch("sales_offer", mapping, sent, idempotency_key=f"{key}:copy" if key else None, now=moment)
        if receipt.status != Status.SUPPRESSED:
            self.book.set_copy(offer_id, receipt.message_id)

    def check_sendable(self, data: Any) -> None:
        """Raise :class:`InputError` unless ``data`` is that of a recorded, open offer: a sales_offer is
        sent by :meth:`create` (``Dispatcher.offer``), which records it and signs its link, never directly."""
        offer_id = data.get("offer_id") if isinstance(data, Mapping) else None
        offer = self.book.get(offer_id) if isinstance(offer_id, str) else None
        if offer is None or offer["state"] != "open" or not data.get("accept_url"):
            raise InputError("a sales_offer is sent with Dispatcher.offer(), which records it and signs its link")

    # -- short codes for letters ------------------------------------------------------------

    def code_url(self, offer_id: str, expires: datetime) -> str:
        """A new short URL of the acceptance page, for paper (``/o/<code>``), valid until ``expires``."""
        from .links import SHORT_CODE_ALPHABET, SHORT_CODE_LENGTH

        record = json.dumps({"offer_id": offer_id, "expires": expires.astimezone(UTC).isoformat()})
        for _ in range(8):
            code = "".join(secrets.choice(SHORT_CODE_ALPHABET) for _ in range(SHORT_CODE_LENGTH))
            if self.d.store.setting(_CODE_KEY + code, lambda: record) == record:
                return f"{self.links.base_url}/o/{code}"
        raise DispatchError("could not find a free short code")  # pragma: no cover - 31**10 codes

    def resolve_code(self, code: str, now: datetime | None = None) -> tuple[str, datetime]:
        """The offer id and link expiry of a short code; :class:`~dispatch.links.InvalidToken` when unknown,
        :class:`~dispatch.links.ExpiredToken` when over."""
        from .links import SHORT_CODE_ALPHABET, SHORT_CODE_LENGTH, ExpiredToken, InvalidToken

        if len(code) != SHORT_CODE_LENGTH or any(c not in SHORT_CODE_ALPHABET for c in code):
            raise InvalidToken("short code is not valid")
        raw = self.d.store.setting(_CODE_KEY + code)
        if raw is None:
            raise InvalidToken("short code is not known")
        record = json.loads(raw)
        expires = datetime.fromisoformat(record["expires"])
        if (now or now_utc()) >= expires:
            raise ExpiredToken("short code has expired", str(record["offer_id"]))
        return str(record["offer_id"]), expires

    # -- reading -----------------------------------------------------------------------------

    def get(self, offer_id: str) -> dict[str, Any]:
        """The stored offer (raises :class:`UnknownOffer`)."""
        offer = self.book.get(offer_id) if isinstance(offer_id, str) else None
        if offer is None:
            raise UnknownOffer(f"no offer {offer_id!r}")
        return offer

    def state_at(self, offer: Mapping[str, Any], now: datetime) -> str:
        """The offer's state as the customer sees it at ``now``: an open offer past its moment is lapsed."""
        if offer["state"] == "open" and now >= offer["valid_until"]:
            return "lapsed"
        return str(offer["state"])

    def parse_recipient(self, offer: Mapping[str, Any]) -> Recipient:
        return self.d.parse_recipient(offer["recipient"])

    # -- accept, decline, lapse ------------------------------------------------------------------

    def accept(
        self,
        offer_id: str,
        *,
        content_hash: str,
        wording_version: str,
        source: str = "acceptance_page",
        now: datetime | None = None,
    ) -> Outcome:
        """Accept the offer as shown (``content_hash``, ``wording_version``): record the evidence,
        emit ``offer.accepted`` and send the contract confirmation. Idempotent.

        Raises :class:`OfferClosed` (declined, lapsed, past ``valid_until``, unsent) and
        :class:`OfferChanged` (the content shown is not the offer as sent).
        """
        moment = now or now_utc()
        offer = self.get(offer_id)
        if offer["state"] == "accepted":
            return Outcome(self._confirm(offer), already=True)
        self._closed_check(offer, moment)
        if not hmac.compare_digest(str(content_hash), offer["content_hash"]):
            raise OfferChanged("the offer shown is not the offer as sent")
        channel, messages = self._came_by(offer)
        evidence = {
            "offer_id": offer_id,
            "message_id": offer["message_id"],
            "messages": messages,
            "content_hash": offer["content_hash"],
            "wording_version": wording_version,
            "channel": channel,
            "accepted_at": moment.isoformat(),
        }
        row = {
            "at": moment,
            "source": source,
            "content_hash": offer["content_hash"],
            "wording_version": wording_version,
            "channel": channel,
            "evidence": evidence,
        }
        if not self.book.move(offer_id, "open", "accepted", row):
            offer = self.get(offer_id)
            if offer["state"] == "accepted":  # a concurrent acceptance won: the same outcome
                return Outcome(self._confirm(offer), already=True)
            raise OfferClosed(f"offer {offer_id} is {offer['state']}", offer["state"])
        count_offer("accepted")
        offer = self._confirm(self.get(offer_id), moment, fresh=True)
        self._emit("offer.accepted", offer, moment, wording_version=wording_version)
        logger.info("offer %s accepted; contract confirmation %s", offer_id, offer["contract_message_id"])
        return Outcome(offer)

    def _came_by(self, offer: Mapping[str, Any]) -> tuple[str | None, list[dict[str, Any]]]:
        """The channel the offer reached the customer by — its message, or the last of the statutory
        fallbacks sent in its place that went out (a bounced email's letter) — and those messages."""
        chain = self.book.chain(offer["message_id"]) if offer.get("message_id") else []
        went = [m for m in chain if m["status"] in (Status.SENT, Status.DELIVERED)]
        channel = went[-1]["channel"] if went else offer["channel"]
        if offer.get("copy_message_id"):  # an SMS offer's durable copy is evidence too
            chain += self.book.chain(offer["copy_message_id"])
        return channel, [{"id": m["id"], "channel": m["channel"], "status": m["status"]} for m in chain]

    def decline(
        self,
        offer_id: str,
        *,
        wording_version: str | None = None,
        source: str = "acceptance_page",
        now: datetime | None = None,
    ) -> Outcome:
        """Decline the offer (``offer.declined``); declining twice changes nothing."""
        moment = now or now_utc()
        offer = self.get(offer_id)
        if offer["state"] == "declined":
            return Outcome(offer, already=True)
        self._closed_check(offer, moment)
        row = {"at": moment, "source": source, "wording_version": wording_version, "channel": offer["channel"]}
        if not self.book.move(offer_id, "open", "declined", row):
            offer = self.get(offer_id)
            if offer["state"] == "declined":
                return Outcome(offer, already=True)
            raise OfferClosed(f"offer {offer_id} is {offer['state']}", offer["state"])
        count_offer("declined")
        offer = self.get(offer_id)
        self._emit("offer.declined", offer, moment)
        logger.info("offer %s declined", offer_id)
        return Outcome(offer)

    def _closed_check(self, offer: dict[str, Any], moment: datetime) -> None:
        if offer["state"] == "open" and moment >= offer["valid_until"]:
            self._lapse(offer, moment, "acceptance_page")
            raise OfferClosed(f"offer {offer['id']} lapsed", "lapsed")
        if offer["state"] != "open":
            raise OfferClosed(f"offer {offer['id']} is {offer['state']}", str(offer["state"]))

    def expire_due(self, now: datetime | None = None, *, source: str = "worker") -> list[str]:
        """Lapse every open offer whose ``valid_until`` day has ended by ``now``; returns their ids.

        Also sends the contract confirmation of any accepted offer still without one (a crash in between).
        """
        moment = now or now_utc()
        lapsed = []
        for offer_id in self.book.due(moment):
            offer = self.book.get(offer_id)
            if offer is not None and self._lapse(offer, moment, source):
                lapsed.append(offer_id)
        for offer_id in self.book.unconfirmed():
            offer = self.book.get(offer_id)
            if offer is not None:
                self._confirm(offer)
        return lapsed

    def _lapse(self, offer: dict[str, Any], moment: datetime, source: str) -> bool:
        # The lapse is dated when the offer ended, not when it was noticed.
        at = min(moment, offer["valid_until"])
        if offer.get("message_id") is None:  # recorded but never sent (a crash in between): nothing to lapse
            self.book.move(offer["id"], "open", "unsent", {"at": at, "source": source})
            return False
        if not self.book.move(offer["id"], "open", "lapsed", {"at": at, "source": source}):
            return False
        count_offer("lapsed")
        self._emit("offer.lapsed", {**offer, "state": "lapsed"}, at)
        logger.info("offer %s lapsed unaccepted", offer["id"])
        return True

    # -- the contract confirmation ----------------------------------------------------------------

    def contract_data(self, offer: Mapping[str, Any], accepted_at: datetime) -> dict[str, Any]:
        """The ``contract_confirmation`` data of an accepted offer: signed on the day of acceptance.

        Supply starts on the offer's ``starts_on``, else after the 14-day withdrawal period
        (Directive 2011/83/EU Art 9; the customer may ask for an earlier start).
        """
        terms = offer["terms"]
        signed_on = accepted_at.astimezone(self.d.policy.countries[offer["country"]].tz).date()
        data: dict[str, Any] = {
            "signed_on": signed_on.isoformat(),
            "product": terms["product"],
            "starts_on": terms.get("starts_on") or (signed_on + timedelta(days=14)).isoformat(),
            "price_elements": terms["price_elements"],
            "terms_url": terms["terms_url"],
        }
        duration = terms["duration"]
        if isinstance(duration, Mapping):
            data["ends_on"] = duration["until"]
        else:
            data["duration"] = duration
        if terms.get("contract_number"):
            data["contract_number"] = terms["contract_number"]
        return data

    def _confirm(
        self, offer: dict[str, Any], accepted_at: datetime | None = None, *, fresh: bool = False
    ) -> dict[str, Any]:
        """Send the contract confirmation of an accepted offer unless it was (idempotent by key).

        ``fresh``: right after the acceptance, decided as of its moment; a late retry is decided now.
        """
        if offer.get("contract_message_id"):
            return offer
        if accepted_at is None:
            row = next((s for s in self.book.states(offer["id"]) if s["state"] == "accepted"), None)
            accepted_at = row["at"] if row else now_utc()
        try:
            receipt = self.d.dispatch(
                "contract_confirmation",
                offer["recipient"],
                self.contract_data(offer, accepted_at),
                idempotency_key=f"offer-contract:{offer['id']}",
                now=accepted_at if fresh else max(accepted_at, now_utc()),
            )
        except DispatchError as exc:
            logger.error("offer %s: the contract confirmation could not be sent: %s", offer["id"], exc)
            return offer
        self.book.set_contract(offer["id"], receipt.message_id)
        return {**offer, "contract_message_id": receipt.message_id}

    # -- events -------------------------------------------------------------------------------------

    def _emit(self, kind: str, offer: Mapping[str, Any], at: datetime, **extra: Any) -> None:
        data = {
            "offer_id": offer["id"],
            "message_id": offer["message_id"],
            "recipient_id": offer["recipient_id"],
            "state": kind.split(".")[1],
            "channel": offer["channel"],
            "content_hash": offer["content_hash"],
        }
        if offer.get("contract_message_id"):
            data["contract_message_id"] = offer["contract_message_id"]
        data.update(extra)
        self.d.events.emit([Event(kind, at, data)])


def install_lapser(d: OfferHost) -> None:
    """Have ``d``'s worker round (the one that releases scheduled campaigns) lapse due offers too."""
    previous = d.runtime.releaser

    def round_() -> None:
        if previous is not None:
            previous()
        if not d.closed and d.runtime.existing_store() is not None:
            try:
                d.offers.expire_due()
            except Exception as exc:  # the next round tries again; an outage is the runtime's to report
                if is_outage(exc):
                    raise
                logger.exception("lapsing due offers failed")

    round_.offers = True  # type: ignore[attr-defined]
    if not getattr(previous, "offers", False):
        d.runtime.releaser = round_


__all__ = [
    "ADDED_FIELDS",
    "LINK_GRACE",
    "STATES",
    "OfferChanged",
    "OfferClosed",
    "OfferLinks",
    "OfferReceipt",
    "Offers",
    "Outcome",
    "UnknownOffer",
    "content_hash",
    "install_lapser",
]
