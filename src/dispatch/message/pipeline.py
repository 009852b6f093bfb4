"""The pipeline of one message: inputs → facts → decide → render → record → submit (SPEC §1).

Each stage is one method with typed values in and out, and every way a message is
made — :meth:`Dispatcher.dispatch`, a campaign batch, a statutory fallback — runs
the same stages:

- :meth:`Pipeline.inputs` validates the type, the recipient and the data (every problem
  named at once; nothing written);
- :meth:`Pipeline.facts` reads what the rules need from the store — the consent ledger,
  contact history, register matches — for many recipients at once, and never creates a store;
- :meth:`Pipeline.decide` runs the pure policy engine;
- :meth:`Pipeline.record` renders an allowed message and builds its
  :class:`~dispatch.store.MessageRecord` (a suppressed one is recorded too, with its reasons);
- :meth:`Pipeline.submit` stores the records (the lifecycle announces their first state),
  remembers the recipients and hands the allowed ones to the queue — the one last stage of
  :meth:`Dispatcher.dispatch`, a campaign batch and a statutory fallback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from ..channels import Channel
from ..clock import now_utc
from ..config import Config
from ..context import build_context, needs_unsubscribe
from ..errors import DispatchError, InputError, InvalidData, StoreOutage
from ..formatting import CURRENCY
from ..ledger import ConsentLedger
from ..lifecycle import Lifecycle, Status
from ..links import LinkSigner
from ..mailboxes import DigitalFirst
from ..messages import MessageData, MessageType, MessageTypeRegistry, country_data_problems, validate_data
from ..metrics import count_decisions
from ..models import Decision, Recipient
from ..policy import Facts, LanguageChains, PolicySettings, RegisterInfo, decide
from ..policy.facts import ConsentView
from ..queue import queue_name
from ..recipients import parse_recipient
from ..register_book import RegisterBook
from ..render import Renderer
from ..render_cache import VariantRenderer
from ..serialize import data_to_json, to_json
from ..store import MessageRecord, Store
from ..store.suppressions import normalise

#: Data a phone task carries for the agent to record the written offer after a sale (dispatch.offers).
OFFER_TERMS = ("product", "price_elements", "duration")


@dataclass(frozen=True, slots=True)
class Inputs:
    """Validated input of one message: its type, recipient, data and the moment of deciding."""

    message_type: MessageType
    recipient: Recipient
    data: MessageData
    now: datetime


@dataclass(frozen=True, slots=True)
class Rendered:
    """A message's rendered parts (possibly compact: variant id plus own values), meta and locale."""

    parts: Mapping[str, str]
    meta: dict[str, Any]
    locale: str
    #: The version of the template set the parts were rendered from (SPEC §5).
    template_version: str | None = None


@dataclass(frozen=True, slots=True)
class Readers:
    """The store-backed views the facts stage reads (None when no store exists yet)."""

    store: Store
    consents: ConsentLedger
    registers: RegisterBook


class Pipeline:
    """The stages of SPEC §1's pipeline, over the parts a :class:`~dispatch.Dispatcher` wires."""

    def __init__(
        self,
        *,
        config: Config,
        types: MessageTypeRegistry,
        channels: Mapping[str, Channel],
        renderer: Renderer,
        policy: PolicySettings,
        chains: LanguageChains,
        registers: Mapping[str, RegisterInfo],
        company: Callable[[str, str | None], dict[str, Any]],
        readers: Callable[[bool], Readers | None],
        links: Callable[[], LinkSigner],
        lifecycle: Lifecycle,
        embedded: bool,
        digital_first: DigitalFirst | None = None,
        approvals: Any = None,
        enqueue: Callable[[list[MessageRecord], datetime], None] | None = None,
    ) -> None:
        self.config = config
        self.types = types
        self.channels = channels
        self.renderer = renderer
        self.variants = VariantRenderer(renderer)
        self.policy = policy
        self.chains = chains
        self.registers = registers
        self._company = company
        self._readers = readers
        self._links = links
        self.lifecycle = lifecycle
        self.embedded = embedded
        self.digital_first = digital_first
        #: Four-eyes approval of template versions (:class:`dispatch.approvals.Approvals`), if wired.
        self.approvals = approvals
        #: Hands stored messages to the queue (:meth:`dispatch.runtime.Runtime.enqueue`).
        self._enqueue = enqueue

    # -- inputs ----------------------------------------------------------------------------

    def recipient(self, value: Mapping[str, Any] | Recipient) -> Recipient:
        """Validate a recipient mapping (SPEC §3) against the known channels."""
        return parse_recipient(value, channels=self.channels, default_language=self.config.languages.default)

    def inputs(
        self,
        message_type: str,
        recipient: Mapping[str, Any] | Recipient,
        data: Mapping[str, Any] | None,
        now: datetime | None,
    ) -> Inputs:
        """Validate everything at once; raises one :class:`DispatchError` naming every problem."""
        mtype = self.types.get(message_type)
        problems: list[str] = []
        first: DispatchError | None = None
        person = values = None
        for step in ("recipient", "data"):
            try:
                if step == "recipient":
                    person = self.recipient(recipient)
                else:
                    values = validate_data(mtype, data)
            except DispatchError as exc:
                problems.append(str(exc))
                first = first or exc
        if first is None and person is not None and values is not None:
            # Country-specific data (SPEC §2) can only be checked once the recipient's country is known.
            missing = country_data_problems(mtype, values, person.country)
            if missing:
                first = InvalidData(f"{mtype.name} data is invalid for {person.country}:", missing)
                problems.append(str(first))
        if first is not None:
            raise first if len(problems) == 1 else InputError("invalid input:", problems)
        moment = now or now_utc()
        if not isinstance(moment, datetime) or moment.tzinfo is None:
            raise InputError("now must be timezone-aware (a datetime with tzinfo, e.g. datetime.now(UTC))")
        return Inputs(mtype, person, values, moment)  # type: ignore[arg-type]

    # -- facts -----------------------------------------------------------------------------

    def facts(
        self, message_type: MessageType, data: MessageData, people: Sequence[Recipient], now: datetime
    ) -> dict[str, Facts]:
        """History, ledger and register matches for ``people`` — only what the rules will read."""
        from ..policy.engine import effective_category

        category = effective_category(message_type, data)
        readers = self._readers(False)
        if readers is None:  # no store yet: nothing recorded, no register loaded (the engine fails closed)
            return {}
        suppressed = self._suppressed(readers.store, message_type, people)
        # Notices read the ledger's notice_channel; letters routed to digital mailboxes its paper_letters (SPEC §6).
        routes_letters = self.digital_first is not None and "letter" in message_type.channels
        if category == "statutory" and not message_type.notice_field and not routes_letters:
            return {pid: Facts(suppressed=channels) for pid, channels in suppressed.items()}
        ids = [p.id for p in people]
        ledger = readers.consents.for_recipients(ids)
        history: dict = {}
        listed: dict = {}
        as_of: dict = {}  # every marketing recipient gets it: without it the engine fails closed
        if category == "marketing":
            history = readers.store.history(ids, now - timedelta(days=366))
            listed = readers.registers.listed_on(people, now)
            as_of = readers.registers.as_of()
        return {
            p.id: Facts(
                history.get(p.id, ()),
                ledger.get(p.id, ()),
                listed.get(p.id, frozenset()),
                as_of,
                suppressed.get(p.id, frozenset()),
            )
            for p in people
            if as_of or p.id in ledger or p.id in history or p.id in listed or p.id in suppressed
        }

    def _suppressed(
        self, store: Store, message_type: MessageType, people: Sequence[Recipient]
    ) -> dict[str, frozenset[str]]:
        """Per recipient, the channels (of those the type may use) whose address is on the suppression list."""
        addresses = {
            (p.id, channel): value
            for p in people
            for channel in message_type.channels
            if channel in ("email", "sms", "phone", "letter")
            and (value := self.address(channel, p)) is not None
            # A letter that may go to a digital mailbox is stopped only where it would be printed (SPEC §6).
            and not (channel == "letter" and self.digital_first and self.digital_first.may_skip_postal_suppression(p))
        }
        if not addresses:
            return {}
        try:
            listed = store.suppressed((channel, value) for (_pid, channel), value in addresses.items())
        except StoreOutage:  # a store from before the suppression list (not migrated yet): nothing listed
            return {}
        out: dict[str, set[str]] = {}
        for (pid, channel), value in addresses.items():
            if (channel, normalise(channel, value)) in listed:
                out.setdefault(pid, set()).add(channel)
        return {pid: frozenset(channels) for pid, channels in out.items()}

    def _ledger(self, person: Recipient) -> tuple[Any, ...]:
        """One recipient's consent-ledger entries (empty without a store)."""
        readers = self._readers(False)
        if readers is None:
            return ()
        return tuple(readers.consents.for_recipients([person.id]).get(person.id, ()))

    # -- decide ----------------------------------------------------------------------------

    def decide(self, inputs: Inputs, facts: Facts | None = None, *, only_channel: str | None = None) -> Decision:
        """The policy engine's decision (pure); ``only_channel`` limits the choice to that channel
        (a statutory fallback is re-checked for the channel it moves to)."""
        address = self.address
        if only_channel is not None:

            def address(channel: str, recipient: Recipient) -> Any:
                return self.address(channel, recipient) if channel == only_channel else None

        decision = decide(
            inputs.message_type,
            inputs.recipient,
            inputs.data,
            inputs.now,
            settings=self.policy,
            chains=self.chains,
            address=address,
            has_parts=self.has_parts,
            facts=facts or Facts(),
            registers=self.registers,
        )
        decision = self.approval_gate(decision)
        if self.digital_first is not None and decision.allowed and decision.channel == "letter":
            decision = self._letter_route(inputs, decision, facts or Facts())
        return decision

    def approval_gate(self, decision: Decision) -> Decision:
        """Add reason ``template_unapproved`` when the category needs an approved template version
        (``[templates] require_approval``) and the chosen language × channel has none (SPEC §5)."""
        if self.approvals is None or not self.approvals.required_categories or decision.channel is None:
            return decision
        refused = self.approvals.refusal(decision.category, decision.message_type, decision.language, decision.channel)
        if refused is None:
            return decision
        return replace(
            decision,
            allowed=False,
            reasons=[*decision.reasons, "template_unapproved"],
            notes={**decision.notes, "template_unapproved": refused.refusal()},
        )

    def _letter_route(self, inputs: Inputs, decision: Decision, facts: Facts) -> Decision:
        """Say in the decision where a letter goes (SPEC §6): which digital mailboxes first, or paper and why."""
        assert self.digital_first is not None
        person = inputs.recipient
        consents = ConsentView(person.consents, facts.ledger, now=inputs.now)
        providers, note = self.digital_first.plan(person, decision.category, consents)
        if not note:
            return decision
        readers = self._readers(False)  # deciding reads the store, never creates it
        if providers and readers is not None:
            known = self.digital_first.cached(readers.store, providers[0], person, inputs.now)
            if known is not None:
                note += f" ({providers[0]} mailbox: {'yes' if known else 'no'}, as last looked up)"
        return replace(decision, notes={**decision.notes, "letter_route": note})

    def address(self, channel: str, recipient: Recipient) -> Any:
        plugin = self.channels.get(channel)
        return plugin.address(recipient) if plugin else None

    def has_parts(self, message_type: str, channel: str, language: str) -> bool:
        plugin = self.channels.get(channel)
        return plugin is not None and self.renderer.has_parts(message_type, plugin.parts, language)

    # -- render ----------------------------------------------------------------------------

    def render(self, inputs: Inputs, decision: Decision, message_id: str, links: LinkSigner | None = None) -> Rendered:
        """Render the parts of an allowed message for its channel and language."""
        mtype, person, values = inputs.message_type, inputs.recipient, inputs.data
        channel = self.channels[decision.channel]  # type: ignore[index]
        chain = self.chains.chain(decision.language, decision.category)
        chain = (decision.language, *tuple(lang for lang in chain if lang != decision.language))
        locale = self.renderer.formatter(decision.language, person.country).locale
        signer = links or self._links()
        opt_out = needs_unsubscribe(mtype, decision.category)  # an opt-out, and a link to the preference page
        unsubscribe = signer.unsubscribe_url(message_id) if opt_out else None
        preferences = signer.preferences_url(message_id) if opt_out else None
        tz = self.policy.countries[person.country].tz
        context = build_context(
            message_type=mtype,
            decision=decision,
            recipient=person,
            data=values,
            chain=chain,
            message_id=message_id,
            locale=locale,
            currency=CURRENCY.get(person.country, "EUR"),
            today=inputs.now.astimezone(tz).date(),
            company=self._company(person.country, decision.language),
            unsubscribe_url=unsubscribe,
            preferences_url=preferences,
            vat=self.config.vat,
        )
        version = self.renderer.template_version(mtype.name, channel.name, channel.parts, decision.language)
        if self.config.templates.render_cache:
            parts = self.variants.render(
                mtype.name,
                channel.parts,
                decision.language,
                person.country,
                context,
                values.render_cache,
                channel.finalize_part,
                version=version,
            )
        else:
            parts = self.renderer.render_parts(mtype.name, channel.parts, decision.language, person.country, context)
            parts = {part: channel.finalize_part(part, text) for part, text in parts.items()}
        return Rendered(parts, channel.prepare(mtype, parts) or {}, locale, version)

    # -- record ----------------------------------------------------------------------------

    def record(
        self,
        inputs: Inputs,
        decision: Decision,
        message_id: str,
        *,
        idempotency_key: str | None = None,
        campaign_id: str | None = None,
        fallback_of: str | None = None,
        keep_data: bool = True,
    ) -> MessageRecord:
        """The stored form of a decision; an allowed message is rendered into it.

        ``keep_data`` stores the message data with it (a campaign keeps its data once instead).
        """
        person = inputs.recipient
        record = MessageRecord(
            id=message_id,
            recipient_id=person.id,
            country=person.country,
            message_type=inputs.message_type.name,
            category=decision.category,
            channel=decision.channel,
            language=decision.language,
            status=Status.QUEUED if decision.allowed else Status.SUPPRESSED,
            allowed=decision.allowed,
            reasons=list(decision.reasons),
            notes=dict(decision.notes),
            legal_basis=decision.legal_basis,
            rules_version=decision.rules_version,
            decided_at=inputs.now,
            idempotency_key=idempotency_key,
            campaign_id=campaign_id,
            requested_language=decision.requested_language,
            send_after=decision.send_after,
            deadline=decision.deadline,
            fallback_of=fallback_of,
        )
        if decision.allowed:
            rendered = self.render(inputs, decision, message_id)
            record.locale = rendered.locale
            record.template_version = rendered.template_version
            record.queue = queue_name(decision.channel, decision.category)  # type: ignore[arg-type]
            # Marked as handed to the queue already (saves an UPDATE per message), except in
            # embedded mode, where the in-memory queue may not take it yet (see Runtime.enqueue).
            record.enqueued_at = None if self.embedded else now_utc()
            record.address = self.channels[decision.channel].address(person)  # type: ignore[index]
            meta = dict(rendered.meta)
            if decision.calling_window:  # a call task carries its calling window (SPEC §4)
                meta["calling_window"] = [moment.isoformat() for moment in decision.calling_window]
            if decision.channel == "letter" and self.digital_first is not None:
                providers, _note = self.digital_first.plan(
                    person, decision.category, ConsentView(person.consents, self._ledger(person), now=inputs.now)
                )
                if providers:  # the letter channel's route (masked wherever history shows it)
                    meta["digital_mailbox"] = {"providers": list(providers), "national_id": person.national_id}
            if decision.channel == "phone":  # the terms an agent records as the written offer (SPEC §13)
                meta["offer_terms"] = {k: to_json(inputs.data[k]) for k in OFFER_TERMS if k in inputs.data}
            record.meta = meta or None
            record.content = {
                **(getattr(rendered.parts, "compact", None) or {"parts": dict(rendered.parts)}),
                "inputs": {"recipient": person.as_dict(), "data": data_to_json(inputs.data) if keep_data else None},
            }
        return record

    # -- submit ----------------------------------------------------------------------------

    def submit(
        self,
        store: Store,
        records: list[MessageRecord],
        decisions: Iterable[Decision] = (),
        *,
        people: Sequence[Recipient] = (),
        now: datetime,
    ) -> set[str]:
        """The last stage: store ``records`` in one transaction (the lifecycle announces each one's
        first state), remember ``people``'s latest contact data, and hand the allowed messages that
        were stored to the queue. Returns the ids stored (a key another process took is left out)."""
        stored = self.store(store, records, decisions)
        if people:
            store.upsert_recipients(people, now)
        self.enqueue([r for r in records if r.allowed and r.id in stored], now)
        return stored

    def submit_one(
        self,
        store: Store,
        record: MessageRecord,
        decision: Decision,
        *,
        person: Recipient | None = None,
        now: datetime,
        stored: Callable[[], None] | None = None,
    ) -> None:
        """:meth:`submit` for one message: raises :class:`~dispatch.store.DuplicateKey` (nothing
        written) for a used idempotency key. ``stored`` runs once the message is stored and before
        it is queued (a fallback moves the message it replaces then)."""
        self.store_one(store, record, decision)
        if stored is not None:
            stored()
        if person is not None:
            store.upsert_recipients([person], now)
        if record.allowed:
            self.enqueue([record], now)

    def enqueue(self, records: list[MessageRecord], now: datetime) -> None:
        """Hand stored, allowed messages to the queue."""
        if records:
            assert self._enqueue is not None, "the pipeline was built without a queue"
            self._enqueue(records, now)

    # -- store (the first half of submit) ---------------------------------------------------

    def store(self, store: Store, records: list[MessageRecord], decisions: Iterable[Decision] = ()) -> set[str]:
        """Write records in one transaction; the lifecycle announces each one's first state. Returns the ids stored."""
        stored = self.lifecycle.admit(store, records, self.variants.variants)
        count_decisions(decisions)
        return stored

    def store_one(self, store: Store, record: MessageRecord, decision: Decision) -> None:
        """Write one record (raises :class:`~dispatch.store.DuplicateKey` for a used key)."""
        self.lifecycle.admit_one(store, record, self.variants.variants)
        count_decisions([decision])


__all__ = ["Inputs", "Pipeline", "Readers", "Rendered"]
