"""The :class:`Dispatcher`: the public entry point (SPEC §1).

It wires the parts together — plugins, message types, the policy engine,
templates, the store, the queue — and runs the pipeline for one message:
validate → decide → render → record → enqueue.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pluggy
from ulid import ULID

from .campaign import CampaignSummary, run_campaign
from .channels import Channel, ChannelContext
from .company import company_details
from .config import Config, build_section, load_config
from .context import build_context, needs_unsubscribe
from .delivery import Deliverer, lease_for
from .embedded import EmbeddedRunner
from .errors import (
    ConfigError,
    DispatchError,
    InputError,
    PermanentDeliveryError,
    UnknownChannel,
)
from .fallback import WorkerCallbacks
from .feedback import FeedbackKind, ProviderEvent
from .formatting import CURRENCY, Formatter
from .ledger import ConsentLedger
from .links import LinkSigner, ShortCodes
from .messages import MessageData, MessageType, MessageTypeRegistry, validate_data
from .models import Decision, Receipt, Recipient
from .plugins import collect, get_plugin_manager
from .policy import Facts, LanguageChains, PolicySettings, RegisterInfo, decide
from .policy.engine import effective_category
from .queue import AsyncRunner, Queues, RateLimits, build_broker, queue_name
from .recipients import parse_recipient
from .register_book import RegisterBook
from .render import Renderer, builtin_template_dir
from .render_cache import VariantRenderer
from .serialize import custom_types, data_to_json
from .store import DuplicateKey, Store, now_utc

logger = logging.getLogger("dispatch")


class Dispatcher:
    """Decides, renders, records and queues messages (SPEC §1).

    Build one with :meth:`from_config`. Use it as a context manager, or call
    :meth:`close`, so that the embedded worker delivers what was queued before the
    program exits.
    """

    def __init__(self, config: Config, *, plugins: Iterable[Any] = (), autoload_plugins: bool | None = None) -> None:
        self.config = config
        self.pm: pluggy.PluginManager = get_plugin_manager(plugins, autoload=autoload_plugins)
        registered = collect(self.pm, builtin_filters=Formatter.FILTERS)
        self.types = MessageTypeRegistry(registered.message_types)
        for message_type in custom_types(config.message_types):
            self.types.register(message_type)
        self.policy = PolicySettings.from_config(config.policy)
        self.chains = LanguageChains(
            fallback={k: tuple(v) for k, v in config.languages.fallback.items()},
            statutory={k: tuple(v) for k, v in config.languages.statutory.items()},
        )
        roots = [config.path(p) for p in config.templates.paths] + registered.template_roots
        roots.append(builtin_template_dir())
        self.renderer = Renderer(roots, locales=config.languages.locales, extra_filters=registered.filters)
        self._variants = VariantRenderer(self.renderer)
        self._companies: dict[tuple[str, str | None], dict[str, Any]] = {}
        self.channels = self._build_channels(registered.channels)
        unknown = sorted(set(config.broker.rate_limits) - set(self.channels))
        if unknown:
            raise ConfigError(f"broker.rate_limits names unknown channel(s): {', '.join(unknown)}")
        self._store: Store | None = None
        self._links: LinkSigner | None = None
        self._short_codes: ShortCodes | None = None
        self._store_lock = threading.Lock()
        self._register_classes = registered.registers
        self._register_info = {
            n: RegisterInfo(n, c.country, tuple(c.channels)) for n, c in registered.registers.items()
        }
        self.embedded = config.broker.url.startswith("memory:")
        self.runner = AsyncRunner()
        permanent = tuple({e for ch in self.channels.values() for e in ch.permanent_errors}) or (
            PermanentDeliveryError,
        )
        self.broker = build_broker(config.broker)
        self.deliverer = Deliverer(
            lambda: self.store,
            self.channels,
            self.runner,
            self.pm,
            WorkerCallbacks(self).hooks(),
            max_retries=config.broker.max_retries,
            rate_limits=RateLimits(config.broker.rate_limits, self.broker),
        )
        self.queues = Queues(self.broker, self.channels, _actor_function(self.deliverer), permanent)
        self._embedded = EmbeddedRunner(self)
        self._closed = False

    # -- lazily opened parts ---------------------------------------------------------

    @property
    def store(self) -> Store:
        """The store, opened (and migrated) on first use; embedded mode then relays leftovers."""
        if self._store is None:
            with self._store_lock:
                if self._store is None:
                    store = Store(self.config.store.url, compress=self.config.store.compress)
                    self.consents = ConsentLedger(store, self.channels)
                    self.registers = RegisterBook(
                        store,
                        self._register_classes,
                        {c: rules.register_refresh_days for c, rules in self.config.policy.countries.items()},
                    )
                    self._store = store
            if self.embedded:
                # The in-memory queue of an earlier process is gone: everything still queued
                # in the store is re-enqueued now (claims make a double hand-over harmless).
                self.relay(stuck_after=timedelta(0))
        return self._store

    @property
    def links(self) -> LinkSigner:
        """Signs unsubscribe links (secret from config, env, or kept in the store)."""
        if self._links is None:
            secret = self.config.links.secret or self.store.link_secret()
            self._links = LinkSigner(
                secret,
                self.config.links.base_url,
                preferences_lifetime=timedelta(days=self.config.links.preferences_days),
            )
        return self._links

    @property
    def short_codes(self) -> ShortCodes:
        """Short, expiring codes for the preference page printed on letters (``short_codes.url(message_id)``)."""
        if self._short_codes is None:
            self._short_codes = ShortCodes(
                self.store, self.config.links.base_url, lifetime=timedelta(days=self.config.links.short_code_days)
            )
        return self._short_codes

    @property
    def consents(self) -> ConsentLedger:
        """The consent ledger (``record``, ``history``)."""
        self.store  # noqa: B018 - opens the store, which creates the ledger
        return self._consents

    @consents.setter
    def consents(self, value: ConsentLedger) -> None:
        self._consents = value

    @property
    def registers(self) -> RegisterBook:
        """Do-not-contact registers (``import_file``, ``status``)."""
        self.store  # noqa: B018
        return self._registers

    @registers.setter
    def registers(self, value: RegisterBook) -> None:
        self._registers = value

    @classmethod
    def from_config(
        cls,
        path: str | Path | None = None,
        *,
        overrides: Mapping[str, Any] | None = None,
        plugins: Iterable[Any] = (),
        autoload_plugins: bool | None = None,
    ) -> Dispatcher:
        """A dispatcher configured from ``path`` (or ``$DISPATCH_CONFIG``, ``./dispatch.toml``).

        With no file, the embedded defaults apply: a SQLite store in the working
        folder, an in-process queue and worker, and channels writing to ``./outbox``.
        """
        config = load_config(path, overrides=dict(overrides) if overrides else None)
        return cls(config, plugins=plugins, autoload_plugins=autoload_plugins)

    # -- context manager ---------------------------------------------------------------

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- the public pipeline -------------------------------------------------------------

    def message_type(self, name: str) -> MessageType:
        """The registered type ``name`` (raises :class:`UnknownMessageType`)."""
        return self.types.get(name)

    def parse_recipient(self, recipient: Mapping[str, Any] | Recipient) -> Recipient:
        """Validate a recipient mapping (SPEC §3) against the known channels."""
        return parse_recipient(recipient, channels=self.channels, default_language=self.config.languages.default)

    def validate_data(self, message_type: str, data: Mapping[str, Any] | None) -> MessageData:
        """Validate message data for a type once, to reuse across many calls."""
        return validate_data(self.types.get(message_type), data)

    def decide(
        self,
        message_type: str,
        recipient: Mapping[str, Any] | Recipient,
        data: Mapping[str, Any] | None = None,
        *,
        now: datetime | None = None,
    ) -> Decision:
        """Decide whether, how and when a message may go — without sending or writing anything."""
        mtype, person, values, moment = self._inputs(message_type, recipient, data, now)
        return self._decide(mtype, person, values, moment, self._facts(mtype, values, [person], moment).get(person.id))

    def dispatch(
        self,
        message_type: str,
        recipient: Mapping[str, Any] | Recipient,
        data: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        now: datetime | None = None,
    ) -> Receipt:
        """Decide, render, record and queue one message; returns a :class:`Receipt`.

        The same ``idempotency_key`` twice returns the first message's id with
        status ``duplicate``. Bad input raises a :class:`DispatchError` and
        writes nothing.
        """
        self._ensure_open()
        if idempotency_key is not None:
            if not isinstance(idempotency_key, str) or not idempotency_key.strip():
                raise InputError("idempotency_key must be a non-empty string")
            existing = self.store.find_by_key(idempotency_key)
            if existing:
                return _receipt_from_row(existing, status="duplicate")
        mtype, person, values, moment = self._inputs(message_type, recipient, data, now)
        facts = self._facts(mtype, values, [person], moment).get(person.id)
        decision = self._decide(mtype, person, values, moment, facts)
        message_id = str(ULID())
        row = self._row(mtype, person, values, decision, message_id, moment, idempotency_key)
        try:
            self.store.insert_message(row, self._variants.variants)
            self.store.upsert_recipients([person], moment)
        except DuplicateKey:
            return _receipt_from_row(self.store.find_by_key(idempotency_key or ""), status="duplicate")
        if decision.allowed:
            self._enqueue([row], moment)
        return Receipt.from_decision(decision, message_id=message_id, status=row["status"], queue=row["queue"])

    def campaign(
        self,
        message_type: str,
        recipients: Iterable[Any],
        data: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> CampaignSummary:
        """Send one type and data set to many recipients, streamed in batches (resumable).

        Options: ``campaign_id`` (re-use it to resume: what was taken is skipped),
        ``now``, ``batch_size``, ``progress`` (called with each batch's size),
        ``max_errors``. See :func:`dispatch.campaign.run_campaign`.
        """
        return run_campaign(self, message_type, recipients, data, **options)

    async def adispatch(self, *args: Any, **kwargs: Any) -> Receipt:
        """:meth:`dispatch` for asyncio callers (runs in a thread; the store is synchronous)."""
        return await asyncio.to_thread(self.dispatch, *args, **kwargs)

    async def adecide(self, *args: Any, **kwargs: Any) -> Decision:
        """:meth:`decide` for asyncio callers."""
        return await asyncio.to_thread(self.decide, *args, **kwargs)

    def preview(
        self,
        message_type: str,
        recipient: Mapping[str, Any] | Recipient,
        data: Mapping[str, Any] | None,
        *,
        channel: str,
        language: str | None = None,
        now: datetime | None = None,
    ) -> dict[str, str]:
        """Render a message's parts for ``channel`` without deciding or recording anything."""
        mtype, person, values, moment = self._inputs(message_type, recipient, data, now)
        if channel not in self.channels:
            raise UnknownChannel(f"unknown channel {channel!r} (known: {', '.join(self.channels)})")
        if channel not in mtype.channels:
            raise InputError(f"{mtype.name} is not sent by {channel} (allowed: {', '.join(mtype.channels)})")
        category = effective_category(mtype, values)
        language = language or person.language
        decision = Decision(
            True, mtype.name, category, channel, language, [], mtype.legal_basis, recipient_id=person.id
        )
        parts, _, _ = self._render(
            mtype,
            person,
            values,
            decision,
            "PREVIEW0000000000000000000",
            moment,
            links=LinkSigner("preview", self.config.links.base_url),
        )
        return parts

    # -- internals: inputs and decisions -------------------------------------------------

    def _inputs(self, message_type, recipient, data, now) -> tuple[MessageType, Recipient, MessageData, datetime]:
        mtype = self.types.get(message_type)
        problems: list[str] = []
        person = values = None
        try:
            person = self.parse_recipient(recipient)
        except DispatchError as exc:
            problems.append(str(exc))
            first = exc
        try:
            values = validate_data(mtype, data)
        except DispatchError as exc:
            problems.append(str(exc))
            first = exc
        if problems:
            if len(problems) == 1:
                raise first
            raise InputError("invalid input:", problems)
        moment = now or now_utc()
        if moment.tzinfo is None:
            raise InputError("now must be timezone-aware (e.g. datetime.now(UTC))")
        return mtype, person, values, moment

    def _facts(
        self, mtype: MessageType, values: MessageData, people: list[Recipient], now: datetime
    ) -> dict[str, Facts]:
        """History, ledger and register matches for ``people`` — only what the rules will read."""
        category = effective_category(mtype, values)
        if category == "statutory":
            return {}
        ids = [p.id for p in people]
        ledger = self.consents.for_recipients(ids)
        history: dict = {}
        listed: dict = {}
        if category == "marketing":
            history = self.store.history(ids, now - timedelta(days=366))
            listed = self.registers.listed_on(people, now)
        return {
            p.id: Facts(history.get(p.id, ()), ledger.get(p.id, ()), listed.get(p.id, frozenset()))
            for p in people
            if p.id in ledger or p.id in history or p.id in listed
        }

    def _decide(self, mtype, person, values, now, facts: Facts | None) -> Decision:
        return decide(
            mtype,
            person,
            values,
            now,
            settings=self.policy,
            chains=self.chains,
            address=self._address,
            has_parts=self._has_parts,
            facts=facts or Facts(),
            registers=self._register_info,
        )

    def _address(self, channel: str, recipient: Recipient) -> Any:
        plugin = self.channels.get(channel)
        return plugin.address(recipient) if plugin else None

    def _has_parts(self, message_type: str, channel: str, language: str) -> bool:
        plugin = self.channels.get(channel)
        return plugin is not None and self.renderer.has_parts(message_type, plugin.parts, language)

    # -- internals: rendering and recording ----------------------------------------------

    def _render(
        self, mtype, person, values, decision: Decision, message_id: str, now: datetime, links: LinkSigner | None = None
    ):
        channel = self.channels[decision.channel]
        chain = self.chains.chain(decision.language, decision.category)
        chain = (decision.language, *tuple(lang for lang in chain if lang != decision.language))
        locale = self.renderer.formatter(decision.language, person.country).locale
        signer = links or self.links
        unsubscribe = signer.unsubscribe_url(message_id) if needs_unsubscribe(mtype, decision.category) else None
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
            today=now.astimezone(tz).date(),
            company=self._company(person.country, decision.language),
            unsubscribe_url=unsubscribe,
        )
        if self.config.templates.render_cache:
            parts = self._variants.render(
                mtype.name,
                channel.parts,
                decision.language,
                person.country,
                context,
                values.render_cache,
                channel.finalize_part,
            )
        else:
            parts = self.renderer.render_parts(mtype.name, channel.parts, decision.language, person.country, context)
            parts = {part: channel.finalize_part(part, text) for part, text in parts.items()}
        meta = channel.prepare(mtype, parts)
        return parts, meta, locale

    def _row(
        self,
        mtype,
        person,
        values,
        decision: Decision,
        message_id: str,
        now: datetime,
        idempotency_key: str | None,
        campaign_id: str | None = None,
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id": message_id,
            "idempotency_key": idempotency_key,
            "campaign_id": campaign_id,
            "recipient_id": person.id,
            "country": person.country,
            "message_type": mtype.name,
            "category": decision.category,
            "channel": decision.channel,
            "language": decision.language,
            "locale": None,
            "status": "queued" if decision.allowed else "suppressed",
            "allowed": decision.allowed,
            "reasons": list(decision.reasons),
            "notes": dict(decision.notes),
            "legal_basis": decision.legal_basis,
            "rules_version": decision.rules_version,
            "requested_language": decision.requested_language,
            "decided_at": now,
            "send_after": decision.send_after,
            "deadline": decision.deadline,
            "queue": None,
            "address": None,
            "content": None,
            "meta": None,
            "enqueued_at": None,
        }
        if decision.allowed:
            parts, meta, locale = self._render(mtype, person, values, decision, message_id, now)
            row.update(
                locale=locale,
                queue=queue_name(decision.channel, decision.category),
                # Marked as handed to the queue already (saves an UPDATE per message), except in
                # embedded mode, where the in-memory queue may not take it yet (see _enqueue).
                enqueued_at=None if self.embedded else now_utc(),
                address=self.channels[decision.channel].address(person),
                meta=meta or None,
                content={
                    **(getattr(parts, "compact", None) or {"parts": dict(parts)}),
                    "inputs": {"recipient": person.as_dict(), "data": None if campaign_id else data_to_json(values)},
                },
            )
        return row

    def _held(self, send_after: datetime | None, now: datetime) -> bool:
        """Embedded mode keeps messages due later in the store; the relay enqueues them when due."""
        return self.embedded and bool(_delay_ms(send_after, now))

    def _enqueue(self, rows: list[dict[str, Any]], now: datetime, *, fresh: bool = True) -> None:
        """Hand stored messages to the queue. A failure leaves them for the relay.

        ``fresh`` rows were stored with ``enqueued_at`` already set (saving an UPDATE per
        message); if the broker refuses them, that mark is cleared so the relay takes them
        at once. Rows from the relay are marked after they are enqueued.
        """
        items = []
        for row in rows:
            if self._held(row.get("send_after"), now):
                continue
            items.append((row["queue"], row["id"], _delay_ms(row.get("send_after"), now)))
        if not items:
            return
        if self.embedded:
            self._embedded.start()
            room = self._embedded.room()
            if len(items) > room:  # the rest waits in the store; the feeder hands it over as the queue drains
                items = items[:room]
                self._embedded.overflowed()
            if not items:
                return
            fresh = False  # embedded rows are stored as not yet handed over; mark what was
        ids = [mid for _, mid, _ in items]
        try:
            self.queues.enqueue_many(items)
        except Exception as exc:  # the broker is down: the store has them, the relay retries
            logger.warning("could not enqueue %d message(s), the relay will retry: %s", len(items), exc)
            if fresh:
                self.store.clear_enqueued(ids)
            return
        if not fresh:
            self.store.mark_enqueued(ids, now_utc())

    def relay(self, now: datetime | None = None, *, stuck_after: timedelta | None = None, limit: int = 5000) -> int:
        """Re-enqueue what the queue may have lost: never enqueued, stuck, or claimed by a dead worker.

        ``stuck_after`` (default ``[broker] stuck_after``) is how long an enqueued message may
        stay unfinished before it counts as lost.
        """
        now = now or now_utc()
        if stuck_after is None:
            stuck_after = timedelta(seconds=self.config.broker.stuck_after)
        lease = lease_for(self.deliverer.timeout)
        horizon = timedelta(0) if self.embedded else timedelta(days=6)
        rows = self.store.due_for_relay(now, stuck_after=stuck_after, lease=lease, horizon=horizon, limit=limit)
        rows = [r for r in rows if r["channel"] in self.channels]
        for row in rows:
            row["queue"] = row["queue"] or queue_name(row["channel"], row["category"])
        if rows:
            logger.info("relay: re-enqueueing %d message(s)", len(rows))
            self._enqueue(rows, now, fresh=False)
        return len(rows)

    # -- internals: the embedded worker ------------------------------------------------

    def join(self, timeout: float | None = None) -> bool:
        """Embedded mode: wait until what was queued is delivered. True when all was."""
        if not self.embedded:
            return True
        if timeout is not None and timeout <= 0:
            return self.store.pending_counts(now_utc())[0] == 0
        return self._embedded.join(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Deliver what the embedded worker has queued (up to ``broker.drain_timeout``), then release everything."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.embedded and self._embedded.running:
                drained = self.join(self.config.broker.drain_timeout if timeout is None else timeout)
                if not drained:
                    logger.warning(
                        "not everything was delivered before closing; it stays queued in the store "
                        "and goes out on the next run"
                    )
            self._embedded.stop()
            for channel in self.channels.values():
                try:
                    channel.finish_batch()
                except Exception:
                    logger.exception("channel %s failed to finish its batch", channel.name)
            for channel in self.channels.values():
                try:
                    self.runner.run(channel.aclose(), timeout=30)
                except Exception:
                    logger.exception("channel %s failed to close", channel.name)
        finally:
            self.runner.stop()
            self.broker.close()
            if self._store is not None:
                self._store.close()

    def _ensure_open(self) -> None:
        if self._closed:
            raise DispatchError("this Dispatcher is closed")

    # -- internals: plugins, channels, company -------------------------------------------

    def _build_channels(self, classes: Mapping[str, type[Channel]]) -> dict[str, Channel]:
        unknown = sorted(set(self.config.channels) - set(classes))
        if unknown:
            raise ConfigError(
                f"unknown channel section(s): {', '.join('channels.' + n for n in unknown)} "
                f"(installed: {', '.join(sorted(classes))})"
            )
        company = {"*": self.company("FI", "en")} | {c: self.company(c, "en") for c in ("FI", "SE", "NO")}
        outbox = self.config.path(self.config.outbox)
        out: dict[str, Channel] = {}
        for name, cls in classes.items():
            raw = dict(self.config.channels.get(name, {}))
            if "from" in raw:  # SPEC §8 writes the sender as `from`, a Python keyword: it is `sender` here
                if "sender" in raw:
                    raise ConfigError(f"channels.{name}: give `from` or `sender`, not both")
                raw["sender"] = raw.pop("from")
            settings = build_section(cls.settings_class, raw, f"channels.{name}")
            out[name] = cls(settings, ChannelContext(outbox=outbox / name, config=self.config, company=company))
        return out

    def _company(self, country: str, language: str | None) -> dict[str, Any]:
        """:meth:`company`, built once per country and language (render variants key on it)."""
        key = (country, language)
        company = self._companies.get(key)
        if company is None:
            company = self._companies[key] = self.company(country, language)
        return company

    def handle_feedback(self, event: ProviderEvent) -> None:
        """Apply what a provider reported after the send (SPEC §10).

        Minimal version (the web engineer's, keeping the behaviour of the old Twilio
        webhooks until the lifecycle work replaces it): the provider status is recorded
        on the message; a permanent failure of a message we counted as delivered marks
        it failed and sends a statutory message again by letter; opt-outs and
        complaints withdraw marketing consent on that channel; an opt-in (SMS START)
        grants it again.
        """
        now = now_utc()
        message = None
        if event.message_id:
            message = self.store.message(event.message_id, content=False)
        elif event.provider_id:
            message = self.store.message_by_provider_id(event.provider_id)
        source = "sms_stop" if event.source == "sms_inbound" else "provider"
        evidence = f"{event.source or 'provider'} {event.provider_id or ''} {event.code or ''}".strip()
        if message is not None:
            status = str(event.detail.get("status") or event.kind.value)
            self.store.record_provider_status(message["id"], status, event.code, now)
            failed = event.permanent and event.kind in (FeedbackKind.BOUNCED, FeedbackKind.OPTED_OUT)
            if (
                failed
                and message["status"] == "delivered"
                and self.store.mark_failed_after_delivery(
                    message["id"], f"provider status {status} ({event.code})", now
                )
                and message["category"] == "statutory"
            ):
                WorkerCallbacks(self).fallback(self.store.message(message["id"]), f"{status} ({event.code})")
        if event.kind in (FeedbackKind.OPTED_OUT, FeedbackKind.COMPLAINED, FeedbackKind.OPTED_IN):
            if message is not None:
                recipients = [message["recipient_id"]]
            elif event.address:
                recipients = self.store.recipients_by_address(event.channel, event.address)
            else:
                recipients = []
            for recipient_id in recipients:
                self.consents.record(
                    recipient_id,
                    "marketing",
                    event.kind == FeedbackKind.OPTED_IN,
                    channel=event.channel,
                    source=source,
                    evidence=evidence,
                )
            logger.info("provider %s on %s: %d recipient(s)", event.kind.value, event.channel, len(recipients))

    def company(self, country: str, language: str | None = None) -> dict[str, Any]:
        """Sender details for ``country`` (and ``language``): see :func:`dispatch.company.company_details`."""
        return company_details(self.config.company, country, language)


def _actor_function(deliverer: Deliverer):
    def deliver(message_id: str) -> None:
        deliverer(message_id)

    deliver.__module__ = "dispatch.delivery"
    return deliver


def _delay_ms(send_after: datetime | None, now: datetime) -> int | None:
    if send_after is None:
        return None
    delta = (send_after - now).total_seconds()
    return int(delta * 1000) if delta > 1 else None


def _receipt_from_row(row: dict[str, Any] | None, *, status: str) -> Receipt:
    if row is None:  # pragma: no cover - a concurrent delete
        raise DispatchError("duplicate idempotency key, but the first message is gone")
    return Receipt(
        allowed=row["allowed"],
        message_type=row["message_type"],
        category=row["category"],
        channel=row["channel"],
        language=row["language"],
        reasons=list(row["reasons"] or []),
        legal_basis=row["legal_basis"],
        send_after=row["send_after"],
        deadline=row["deadline"],
        recipient_id=row["recipient_id"],
        requested_language=row["requested_language"],
        notes=dict(row["notes"] or {}),
        rules_version=row["rules_version"],
        message_id=row["id"],
        status=status,
        queue=row["queue"],
    )


__all__ = ["Dispatcher"]
