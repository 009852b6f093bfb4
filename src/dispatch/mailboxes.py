"""Digital mailboxes (SPEC §6): letters go to Kivra, OmaPosti or Digipost first, and to paper otherwise.

A digital mailbox is a *route* of the letter channel, not a channel of its own: a
message decided for ``letter`` stays one message, and the letter channel asks
:class:`DigitalFirst` before printing. The very PDF the paper letter would have been
goes to the first provider, in the per-country order of ``[channels.letter]
digital_first``, that has a mailbox for the person which accepts the sender; when
none has (or a provider refuses), the letter is printed — within the same
delivery attempt, so the message's life is one ``queued → sending → sent|delivered``
with the route and the providers tried recorded on the attempt.

Each provider is a channel plugin subclassing :class:`MailboxChannel` (registered
like any channel, so ``[channels.kivra]`` holds its settings and a consent can name
it), but never queued nor chosen by the policy engine on its own.

Who goes digital (:meth:`DigitalFirst.plan`, pure, at decision time):

- a person with a ``national_id`` (SPEC §3), in a country with an order configured;
- not a customer who chose paper letters (consent-ledger purpose ``paper_letters``,
  channel ``letter``, granted) — that choice always wins;
- marketing only to a provider the person consented to by name (purpose ``marketing``,
  channel ``kivra``...): a digital mailbox is electronic mail, and direct marketing by
  electronic mail to a natural person needs prior consent — Finland: laki sähköisen
  viestinnän palveluista 917/2014 §200; Sweden: marknadsföringslagen 2008:486 §19;
  Norway: markedsføringsloven §15. No soft opt-in is assumed for a mailbox.

Whether the person has a mailbox (:meth:`DigitalFirst.eligible`) is the provider's
look-up, cached in the store per provider and person (a keyed hash of the national
id) for the provider's ``eligibility_ttl_hours``; concurrent look-ups of one person
are made once, and :meth:`DigitalFirst.refresh` looks many people up in bulk where
the provider's API offers a list (Kivra's ``usermatch``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import logging
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from .channels import Channel
from .clock import now_utc
from .errors import ConfigError, PermanentDeliveryError
from .feedback import FeedbackKind, ProviderEvent
from .models import DeliveryResult, OutgoingMessage, Recipient

if TYPE_CHECKING:
    from .policy.facts import ConsentView
    from .store import Store

logger = logging.getLogger("dispatch.mailboxes")

#: The consent-ledger purpose of "I want paper letters" (channel ``letter``).
PAPER_LETTERS = "paper_letters"
#: Longest subject sent: Kivra advises 30-35 characters so that it shows in full on a phone.
MAX_SUBJECT = 60


class AddressSuppressed(PermanentDeliveryError):
    """A letter that would go on paper to a postal address on the suppression list."""


class MailboxRejected(PermanentDeliveryError):
    """The provider will not deliver to this person (no mailbox, closed, the sender not accepted)."""


@dataclass(frozen=True, slots=True)
class MailboxLetter:
    """What a provider receives: the letter's PDF, its subject and who sends it."""

    message_id: str
    national_id: str
    country: str
    language: str
    message_type: str
    category: str
    subject: str
    pdf: bytes
    #: The sender's details for ``country`` (``name``, ``business_id``...) from ``[company]``.
    sender: Mapping[str, Any] = field(default_factory=dict)


class MailboxChannel(Channel):
    """Base class of digital-mailbox providers (see the module docstring)."""

    address_kind = "national_id"
    parts: ClassVar[Mapping[str, str]] = {}
    #: Countries whose people the provider serves.
    countries: ClassVar[tuple[str, ...]] = ()
    #: The channel this one is a route of: never queued, never chosen on its own.
    route_of: ClassVar[str | None] = "letter"

    def address(self, recipient: Recipient) -> str | None:
        return recipient.national_id if recipient.country in self.countries else None

    @property
    def embedded(self) -> bool:
        return not self.configured

    @property
    def configured(self) -> bool:
        """True when the deployment gave the provider's settings (no settings: never used)."""
        return False

    @property
    def ttl(self) -> timedelta:
        """How long a look-up's answer is trusted (``eligibility_ttl_hours``)."""
        return timedelta(hours=float(getattr(self.settings, "eligibility_ttl_hours", 24)))

    @property
    def lookup_batch(self) -> int:
        """Most people one look-up call may name (1: no bulk look-up in the provider's API)."""
        return 1

    async def lookup(self, national_ids: Sequence[str]) -> dict[str, bool] | None:
        """``national id → has a mailbox that accepts the sender``; None when the provider offers no look-up."""
        return None

    async def send_letter(self, letter: MailboxLetter) -> DeliveryResult:
        """Deliver ``letter``; raise :class:`MailboxRejected` when the provider refuses the person."""
        raise NotImplementedError

    async def receipt(self, message_id: str) -> bool | None:
        """The provider's receipt for a letter it took: True delivered, None not known (yet)."""
        return None

    async def deliver(self, message: OutgoingMessage) -> DeliveryResult:
        raise PermanentDeliveryError(
            f"{self.name} carries letters: send by letter with [channels.letter] digital_first", code="not_a_channel"
        )


def person_key(secret: bytes, country: str, national_id: str) -> str:
    """The cache's name for a person: an HMAC of the national id (the number itself is never stored)."""
    return hmac.new(secret, f"{country}:{national_id}".encode(), hashlib.sha256).hexdigest()


class DigitalFirst:
    """Routes letters to digital mailboxes first (see the module docstring)."""

    def __init__(
        self,
        order: Mapping[str, Sequence[str]],
        channels: Mapping[str, Channel],
        store: Callable[[], Store],
        secret: Callable[[], bytes],
    ) -> None:
        self.order = {country.upper(): tuple(names) for country, names in order.items()}
        self.channels = channels
        self._store = store
        self._secret = secret
        self._key: bytes | None = None
        self._inflight: dict[tuple[str, str], asyncio.Future[bool | None]] = {}
        #: Look-up calls made per provider (bulk calls count once), and people looked up.
        self.lookup_calls: Counter[str] = Counter()
        self.people_looked_up: Counter[str] = Counter()
        for country, names in self.order.items():
            for name in names:
                if not isinstance(channels.get(name), MailboxChannel):
                    raise ConfigError(
                        f"channels.letter.digital_first.{country}: {name!r} is not a digital mailbox provider "
                        f"(installed: {', '.join(n for n, c in channels.items() if isinstance(c, MailboxChannel))})"
                    )
                if country not in channels[name].countries:  # type: ignore[attr-defined]
                    raise ConfigError(f"channels.letter.digital_first.{country}: {name} does not serve {country}")

    # -- deciding ------------------------------------------------------------------------

    def may_skip_postal_suppression(self, recipient: Recipient) -> bool:
        """True when a letter to ``recipient`` may reach a digital mailbox, so a suppressed postal address
        alone does not stop it (:meth:`deliver` refuses to print it)."""
        return bool(recipient.national_id) and bool(self.order.get(recipient.country))

    def plan(self, recipient: Recipient, category: str, consents: ConsentView) -> tuple[tuple[str, ...], str]:
        """The providers to try for a letter to ``recipient``, in order, and a note saying why (pure)."""
        order = self.order.get(recipient.country, ())
        if not order:
            return (), ""
        if consents.granted(PAPER_LETTERS, "letter"):
            return (), "paper: the customer chose paper letters"
        if not recipient.national_id:
            return (), "paper: no national_id to address a digital mailbox"
        providers = [name for name in order if self._mailbox(name).configured]
        if not providers:
            return (), f"paper: no digital mailbox provider configured for {recipient.country}"
        if category == "marketing":  # electronic direct marketing needs consent (module docstring)
            providers = [name for name in providers if consents.granted("marketing", name) is True]
            if not providers:
                return (), "paper: no marketing consent for a digital mailbox"
        return tuple(providers), f"digital mailbox first: {', '.join(providers)}; paper if none accepts"

    def cached(self, store: Store, provider: str, recipient: Recipient, now: datetime | None = None) -> bool | None:
        """What ``store``'s cache says of ``recipient``'s mailbox at ``provider`` (None: not known or expired)."""
        if not recipient.national_id:
            return None
        key = self._person(recipient.country, recipient.national_id)
        found = store.mailbox_eligibility(provider, [key]).get(key)
        if found is None or found[1] + self._mailbox(provider).ttl <= (now or now_utc()):
            return None
        return found[0]

    # -- looking up ----------------------------------------------------------------------

    async def eligible(self, provider: str, country: str, national_id: str) -> bool | None:
        """Has the person a mailbox at ``provider`` that accepts the sender?

        Cached for the provider's TTL; a person is looked up once however many letters wait for the answer.
        """
        channel = self._mailbox(provider)
        key = self._person(country, national_id)
        store = self._store()
        found = store.mailbox_eligibility(provider, [key]).get(key)
        if found is not None and found[1] + channel.ttl > now_utc():
            return found[0]
        running = self._inflight.get((provider, key))
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[bool | None] = asyncio.get_running_loop().create_future()
        self._inflight[(provider, key)] = future
        try:
            answer = await self._lookup(channel, {key: national_id})
            future.set_result(answer.get(key))
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs it as unhandled
            raise
        finally:
            del self._inflight[(provider, key)]
        return future.result()

    async def refresh(self, provider: str, people: Sequence[tuple[str, str]], *, force: bool = False) -> int:
        """Look up many ``(country, national id)`` at once (in the provider's batches); returns calls made.

        Without ``force`` only people whose cached answer is missing or expired are looked up.
        """
        channel = self._mailbox(provider)
        keys = {self._person(c, nid): nid for c, nid in people}
        if not force:
            fresh = self._store().mailbox_eligibility(provider, keys)
            now = now_utc()
            keys = {k: nid for k, nid in keys.items() if k not in fresh or fresh[k][1] + channel.ttl <= now}
        calls_before = self.lookup_calls[provider]
        items = list(keys.items())
        size = max(1, channel.lookup_batch)
        for start in range(0, len(items), size):
            await self._lookup(channel, dict(items[start : start + size]))
        return self.lookup_calls[provider] - calls_before

    async def _lookup(self, channel: MailboxChannel, people: Mapping[str, str]) -> dict[str, bool | None]:
        answers = await channel.lookup(list(people.values()))
        self.lookup_calls[channel.name] += 1
        self.people_looked_up[channel.name] += len(people)
        if answers is None:  # the provider documents no look-up: it decides at the send
            return dict.fromkeys(people)
        out = {key: bool(answers.get(nid, False)) for key, nid in people.items()}
        self._store().record_mailbox_eligibility(channel.name, out, now_utc())
        return dict(out)

    # -- delivering ----------------------------------------------------------------------

    async def deliver(
        self, message: OutgoingMessage, pdf: bytes, sender: Mapping[str, Any]
    ) -> tuple[DeliveryResult | None, list[str]]:
        """Send ``message``'s PDF to the first provider that takes it: ``(result, tried)``; ``(None, tried)``: paper.

        ``tried`` lists ``provider: reason`` for each provider passed over (codes, never personal data).
        A provider's transient failure is raised: the letter waits and is tried again, not printed.
        """
        route = message.meta.get("digital_mailbox") if isinstance(message.meta, dict) else None
        if not isinstance(route, dict) or not route.get("national_id"):
            return self._paper(message, [])
        national_id = str(route["national_id"])
        tried: list[str] = []
        letter = MailboxLetter(
            message_id=message.id,
            national_id=national_id,
            country=message.country,
            language=message.language,
            message_type=message.message_type,
            category=message.category,
            subject=letter_subject(message),
            pdf=pdf,
            sender=sender,
        )
        for name in route.get("providers") or ():
            channel = self.channels.get(name)
            if not isinstance(channel, MailboxChannel) or not channel.configured:
                tried.append(f"{name}: not configured")
                continue
            has_mailbox = await self.eligible(name, message.country, national_id)
            if has_mailbox is False:
                tried.append(f"{name}: no mailbox")
                continue
            try:
                result = await channel.send_letter(letter)
            except MailboxRejected as exc:
                self._store().record_mailbox_eligibility(
                    name, {self._person(message.country, national_id): False}, now_utc()
                )
                tried.append(f"{name}: refused {exc.code or ''}".strip())
                logger.info("letter %s: %s refused it (%s); next route", message.id, name, exc.code)
                continue
            result.detail.update(route=name, **({"tried": tried} if tried else {}))
            return result, tried
        return self._paper(message, tried)

    def _paper(self, message: OutgoingMessage, tried: list[str]) -> tuple[None, list[str]]:
        """Paper it is — unless the postal address came back before (returned mail, SPEC §6).

        With digital-first on, the policy lets a letter to a suppressed postal address through for a
        person with a ``national_id`` (a mailbox may take it); here, where it would be printed, it fails
        for good instead (a statutory letter then falls back to its next channel).
        """
        if message.address and self._store().suppressed([("letter", message.address)]):
            raise AddressSuppressed(
                "the postal address is suppressed (returned mail) and no digital mailbox took the letter",
                code="address_suppressed",
            )
        return None, tried

    # -- receipts ------------------------------------------------------------------------

    async def receipts(self, handle: Callable[[ProviderEvent], bool], limit: int = 1000) -> int:
        """Ask each provider about the letters it took but has not confirmed; a confirmed one becomes
        ``delivered`` through ``handle`` (``Dispatcher.handle_feedback``). Returns how many did."""
        done = 0
        for name, channel in self.channels.items():
            if not isinstance(channel, MailboxChannel) or not channel.configured:
                continue
            for message_id, _provider_id in self._store().letters_awaiting_receipt(name, limit):
                if await channel.receipt(message_id) is True:
                    event = ProviderEvent(
                        FeedbackKind.DELIVERED, "letter", now_utc(), message_id=message_id, source=f"{name}_receipt"
                    )
                    done += bool(handle(event))
        return done

    # -- helpers -------------------------------------------------------------------------

    def _mailbox(self, name: str) -> MailboxChannel:
        channel = self.channels.get(name)
        if not isinstance(channel, MailboxChannel):
            raise ConfigError(f"{name!r} is not a digital mailbox provider")
        return channel

    def _person(self, country: str, national_id: str) -> str:
        if self._key is None:
            self._key = self._secret()
        return person_key(self._key, country, national_id)


_HEADING = re.compile(r"<h[1-3][^>]*>(.*?)</h[1-3]>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def letter_subject(message: OutgoingMessage) -> str:
    """The subject a mailbox shows: the letter's first heading, as plain text, shortened if long."""
    found = _HEADING.search(message.parts.get("html", ""))
    text = html.unescape(_TAG.sub("", found.group(1))) if found else message.message_type.replace("_", " ")
    text = " ".join(text.split())
    return text if len(text) <= MAX_SUBJECT else text[: MAX_SUBJECT - 1].rstrip() + "…"


__all__ = [
    "PAPER_LETTERS",
    "AddressSuppressed",
    "DigitalFirst",
    "MailboxChannel",
    "MailboxLetter",
    "MailboxRejected",
    "letter_subject",
    "person_key",
]
