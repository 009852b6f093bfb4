"""The :class:`Dispatcher`: the public entry point (SPEC §1), a thin facade over the parts it wires.

- :mod:`dispatch.pipeline` — inputs → facts → decide → render → record;
- :mod:`dispatch.runtime` — the store, the queue hand-over, threads and the embedded worker;
- :mod:`dispatch.lifecycle` — every state change of a message, with :mod:`dispatch.events`
  and :mod:`dispatch.metrics` listening;
- :mod:`dispatch.delivery` — the workers' side; :mod:`dispatch.fallback` — statutory fallback.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pluggy

from . import metrics
from .approvals import Approvals
from .campaign import CampaignSummary, run_campaign
from .channels import build_channels
from .clock import now_utc
from .company import company_details
from .config import Config, load_config
from .errors import ConfigError, DispatchError, InputError, TemplateNotApproved, UnknownChannel
from .events import EventBus
from .feedback import ProviderEvent
from .formatting import Formatter
from .ids import new_id
from .intake import Intake
from .ledger import ConsentLedger
from .lifecycle import Lifecycle, RetryPolicy
from .links import LinkSigner, ShortCodes, SignedAsOf
from .listeners import FallBackOnFailure, RecordOptOut, Requeue, UnsubscribeLinks
from .mailboxes import DigitalFirst
from .message.aftersend import AfterSend
from .message.delivery import Deliverer, DeliveryHooks
from .message.fallback import Fallback
from .message.pipeline import Pipeline, Readers
from .message.runtime import Runtime
from .messages import MessageData, MessageType, MessageTypeRegistry, validate_data
from .models import Decision, Receipt, Recipient
from .offers import OfferReceipt, Offers, install_lapser
from .plugins import collect, get_plugin_manager
from .policy import LanguageChains, PolicySettings, RegisterInfo
from .policy.engine import effective_category
from .queue import Queues, RateLimits, build_broker
from .register_book import RegisterBook
from .render import Renderer, builtin_template_dir
from .render_cache import assemble
from .scheduled import install_releaser, schedule_campaign
from .serialize import custom_types
from .store import DuplicateKey, Store

logger = logging.getLogger("dispatch")


class Dispatcher:
    """Decides, renders, records and queues messages (SPEC §1).

    Build one with :meth:`from_config`. Use it as a context manager, or call
    :meth:`close`, so that the embedded worker delivers what was queued before the
    program exits. Creating one opens nothing: the store is opened on the first
    ``dispatch()`` (``decide()`` only reads a store that already exists).
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
        self.renderer = Renderer(
            roots,
            locales=config.languages.locales,
            unit_labels=config.languages.unit_labels,
            extra_filters=registered.filters,
            max_seconds=config.templates.max_render_seconds,
            max_output=config.templates.max_output_chars,
        )
        self._companies: dict[tuple[str, str | None], dict[str, Any]] = {}
        self._secret: str | None = None
        self.channels = build_channels(
            config, registered.channels, {c: self.company(c, "en") for c in ("FI", "SE", "NO")}, self.signing_key
        )
        unknown = sorted(set(config.broker.rate_limits) - set(self.channels))
        if unknown:
            raise ConfigError(f"broker.rate_limits names unknown channel(s): {', '.join(unknown)}")
        self.digital_first = self._digital_first(config)
        self._register_classes = registered.registers
        self.embedded = config.broker.url.startswith("memory:")
        self.events = EventBus(self.pm)
        self.lifecycle = Lifecycle([self.events.on_transitions, metrics.on_transitions])
        self.runtime = Runtime(config, self._open_store)
        self._links: LinkSigner | None = None
        self._short_codes: ShortCodes | None = None
        self._consents: ConsentLedger | None = None
        self._registers: RegisterBook | None = None
        self._readers: Readers | None = None
        #: Template versions, four-eyes approval and translation drift (SPEC §5).
        self.approvals = Approvals(
            config.templates,
            self.renderer,
            self.channels,
            lambda create: self.runtime.store if create else self.runtime.existing_store(),
        )
        self.pipeline = Pipeline(
            config=config,
            types=self.types,
            channels=self.channels,
            renderer=self.renderer,
            policy=self.policy,
            chains=self.chains,
            registers={n: RegisterInfo(n, c.country, tuple(c.channels)) for n, c in registered.registers.items()},
            company=self._company,
            readers=self._readers_for,
            links=lambda: self.links,
            lifecycle=self.lifecycle,
            embedded=self.embedded,
            digital_first=self.digital_first,
            approvals=self.approvals,
            enqueue=self.runtime.enqueue,
        )
        self.fallback = Fallback(self.pipeline, self.runtime, self.lifecycle, self.events)
        self.aftersend = AfterSend(
            lambda: self.runtime.store,
            lambda: self.consents,
            self.lifecycle,
            self.fallback.after_failure,
            soft_bounce_limit=config.policy.soft_bounce_limit,
        )
        self.broker = build_broker(config.broker)
        self.deliverer = Deliverer(
            lambda: self.runtime.store,
            self.channels,
            lambda: self.runtime.runner,
            self.pm,
            self.lifecycle,
            DeliveryHooks(
                failed=FallBackOnFailure(self.aftersend, self.fallback),
                opted_out=RecordOptOut(self.aftersend),
                unsubscribe_url=UnsubscribeLinks(self.types, lambda: self.links),
                requeue=Requeue(self.runtime),
            ),
            self.runtime.journal,
            self.runtime.health,
            retry=RetryPolicy(
                config.broker.max_retries,
                timedelta(milliseconds=config.broker.min_backoff_ms),
                timedelta(milliseconds=config.broker.max_backoff_ms),
            ),
            lease=self.runtime.lease,
            timeout=config.worker.send_timeout,
            rate_limits=RateLimits(config.broker.rate_limits, self.broker),
        )
        self.queues = Queues(
            self.broker,
            [name for name, channel in self.channels.items() if channel.route_of is None],
            _actor_function(self.deliverer),
            batch_size=config.worker.batch_size,
        )
        self.runtime.attach(self.broker, self.queues, self.lifecycle, self.deliverer, self.events)
        #: What campaigns and scheduled campaigns use of this dispatcher (dispatch.intake).
        self.intake = Intake(
            pipeline=self.pipeline,
            runtime=self.runtime,
            approvals=self.approvals,
            preview=self.preview,
            config=config,
            embedded=self.embedded,
            is_closed=lambda: self.closed,
            factory=type(self),
        )
        install_releaser(self.intake)  # scheduled campaigns go out while the embedded worker runs
        self.offers = Offers(self)  # written offers after a phone sale (SPEC §13)
        install_lapser(self)  # ... and offers not accepted by valid_until lapse
        self._closed = False

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

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- the parts, opened on first use ----------------------------------------------------

    def _open_store(self, create: bool) -> Store | None:
        options = {"compress": self.config.store.compress, "assemble": self._assemble}
        if create:
            return Store(self.config.store.url, **options)
        return Store.open_existing(self.config.store.url, **options)

    def _assemble(self, record, values, tidy_after) -> dict[str, str]:
        return assemble(record, values, tidy_after, Renderer.tidy)

    @property
    def store(self) -> Store:
        """The store, opened (and migrated) on first use."""
        return self.runtime.store

    def _readers_for(self, create: bool) -> Readers | None:
        """The ledger and registers over the store; without ``create``, only if a store exists."""
        store = self.runtime.store if create else self.runtime.existing_store()
        if store is None:
            return None
        if self._readers is None or self._readers.store is not store:
            self._readers = Readers(
                store,
                ConsentLedger(store, self.channels, on_change=self.events.emit),
                RegisterBook(
                    store,
                    self._register_classes,
                    {c: rules.register_refresh_days for c, rules in self.config.policy.countries.items()},
                ),
            )
        return self._readers

    @property
    def consents(self) -> ConsentLedger:
        """The consent ledger (``record``, ``history``); the store is opened by the first call, not here."""
        if self._consents is None:
            self._consents = ConsentLedger(
                _OpenOnUse(lambda: self.runtime.store), self.channels, on_change=self.events.emit
            )
        return self._consents

    @property
    def registers(self) -> RegisterBook:
        """Do-not-contact registers (``import_file``, ``status``); the store is opened by the first call."""
        if self._registers is None:
            self._registers = RegisterBook(
                _OpenOnUse(lambda: self.runtime.store),
                self._register_classes,
                {c: rules.register_refresh_days for c, rules in self.config.policy.countries.items()},
            )
        return self._registers

    @property
    def links(self) -> LinkSigner:
        """Signs links in messages (secret from config or env; the embedded default keeps one in the store)."""
        if self._links is None:
            self._links = LinkSigner(
                self.signing_secret,
                self.config.links.base_url,
                preferences_lifetime=timedelta(days=self.config.links.preferences_days),
            )
        return self._links

    @property
    def signing_secret(self) -> str:
        """The deployment's signing secret: ``[links] secret`` (or ``DISPATCH_LINK_SECRET``), else the store's."""
        if self._secret is None:
            self._secret = self.config.links.secret or self.store.link_secret()
        return self._secret

    def signing_key(self, purpose: str) -> bytes:
        """A key for one purpose (``"verp"``, ...) derived from :attr:`signing_secret` (HMAC-SHA-256)."""
        return hmac.new(self.signing_secret.encode("utf-8"), b"dispatch/" + purpose.encode("ascii"), "sha256").digest()

    @property
    def short_codes(self) -> ShortCodes:
        """Short, expiring codes for the preference page printed on letters (``short_codes.url(message_id)``)."""
        if self._short_codes is None:
            self._short_codes = ShortCodes(
                self.store, self.config.links.base_url, lifetime=timedelta(days=self.config.links.short_code_days)
            )
        return self._short_codes

    # -- the public pipeline ---------------------------------------------------------------

    def message_type(self, name: str) -> MessageType:
        """The registered type ``name`` (raises :class:`UnknownMessageType`)."""
        return self.types.get(name)

    def parse_recipient(self, recipient: Mapping[str, Any] | Recipient) -> Recipient:
        """Validate a recipient mapping (SPEC §3) against the known channels."""
        return self.pipeline.recipient(recipient)

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
        """Decide whether, how and when a message may go — reads the store if there is one,
        writes nothing, creates nothing, sends nothing."""
        inputs = self.pipeline.inputs(message_type, recipient, data, now)
        facts = self.pipeline.facts(inputs.message_type, inputs.data, [inputs.recipient], inputs.now)
        return self.pipeline.decide(inputs, facts.get(inputs.recipient.id))

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
        if idempotency_key is not None and (not isinstance(idempotency_key, str) or not idempotency_key.strip()):
            raise InputError("idempotency_key must be a non-empty string")
        if message_type == "sales_offer":
            self.offers.check_sendable(data)  # only Dispatcher.offer() sends one (it records the offer)
        inputs = self.pipeline.inputs(message_type, recipient, data, now)
        store = self.store
        if idempotency_key is not None:
            existing = store.find_by_key(idempotency_key)
            if existing:
                return _duplicate(existing)
        facts = self.pipeline.facts(inputs.message_type, inputs.data, [inputs.recipient], inputs.now)
        decision = self.pipeline.decide(inputs, facts.get(inputs.recipient.id))
        if "template_unapproved" in decision.reasons:  # refused before anything is written (SPEC §5)
            raise TemplateNotApproved(decision.notes["template_unapproved"])
        record = self.pipeline.record(inputs, decision, new_id(), idempotency_key=idempotency_key)
        try:
            self.pipeline.submit_one(store, record, decision, person=inputs.recipient, now=inputs.now)
        except DuplicateKey:
            return _duplicate(store.find_by_key(idempotency_key or ""))
        return Receipt.from_decision(decision, message_id=record.id, status=str(record.status), queue=record.queue)

    def offer(
        self,
        recipient: Mapping[str, Any] | Recipient,
        data: Mapping[str, Any] | None,
        *,
        idempotency_key: str | None = None,
        now: datetime | None = None,
    ) -> OfferReceipt:
        """Record the written offer after a phone sale and send it (SPEC §13): returns
        ``(receipt, offer_id)``. The contract exists only when the customer accepts it on the
        page its link leads to; see :mod:`dispatch.offers`."""
        self._ensure_open()
        return self.offers.create(recipient, data, idempotency_key=idempotency_key, now=now)

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
        ``max_errors``, ``at`` (a timezone-aware moment: store the campaign now and
        decide and queue it then, see :func:`dispatch.scheduled.schedule_campaign`). See
        :func:`dispatch.campaign.run_campaign`.
        """
        self._ensure_open()
        if message_type == "sales_offer":  # each offer follows its own call: Dispatcher.offer()
            raise InputError("sales_offer is not sent as a campaign: each offer is sent with Dispatcher.offer()")
        at = options.pop("at", None)
        if at is not None:
            return schedule_campaign(self.intake, message_type, recipients, data, at=at, **options)
        return run_campaign(self.intake, message_type, recipients, data, **options)

    async def adispatch(self, *args: Any, **kwargs: Any) -> Receipt:
        """:meth:`dispatch` for asyncio callers (runs in a thread; the store is synchronous)."""
        return await asyncio.to_thread(self.dispatch, *args, **kwargs)

    async def aoffer(self, *args: Any, **kwargs: Any) -> OfferReceipt:
        """:meth:`offer` for asyncio callers (runs in a thread)."""
        return await asyncio.to_thread(self.offer, *args, **kwargs)

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
        inputs = self.pipeline.inputs(message_type, recipient, data, now)
        mtype = inputs.message_type
        if not isinstance(channel, str) or channel not in self.channels:
            raise UnknownChannel(f"unknown channel {channel!r} (known: {', '.join(self.channels)})")
        if channel not in mtype.channels:
            raise InputError(f"{mtype.name} is not sent by {channel} (allowed: {', '.join(mtype.channels)})")
        category = effective_category(mtype, inputs.data)
        decision = Decision(
            True,
            mtype.name,
            category,
            channel,
            language or inputs.recipient.language,
            [],
            mtype.legal_basis,
            recipient_id=inputs.recipient.id,
        )
        signer = SignedAsOf(LinkSigner("preview", self.config.links.base_url), inputs.now)
        rendered = self.pipeline.render(inputs, decision, "PREVIEW0000000000000000000", links=signer)
        return dict(rendered.parts)

    # -- after the send --------------------------------------------------------------------

    def _digital_first(self, config: Config) -> DigitalFirst | None:
        """Letters to digital mailboxes first (SPEC §6), when ``[channels.letter] digital_first`` is set."""
        letter = self.channels.get("letter")
        order = getattr(getattr(letter, "settings", None), "digital_first", None)
        if not order:
            return None
        router = DigitalFirst(order, self.channels, lambda: self.runtime.store, lambda: self.signing_key("mailbox"))
        letter.digital = router  # type: ignore[union-attr]  # the letter channel's routing hook
        return router

    def handle_feedback(self, event: ProviderEvent) -> bool:
        """Apply a provider's report (SPEC §10) — see :class:`dispatch.aftersend.AfterSend`.

        Returns False when the report matched no message and no recipient (the caller keeps it aside).
        """
        return self.aftersend.handle(event)

    # -- queue and embedded worker -------------------------------------------------------------

    def relay(self, now: datetime | None = None, *, stuck_after: timedelta | None = None, limit: int = 5000) -> int:
        """Re-enqueue what the queue may have lost (never enqueued, stuck), release expired claims."""
        return self.runtime.relay(now, stuck_after=stuck_after, limit=limit, channels=list(self.channels))

    def join(self, timeout: float | None = None) -> bool:
        """Embedded mode: wait until what was queued is delivered. True when all was."""
        if timeout is not None and timeout <= 0:
            return self.store.pending_counts(now_utc())[0] == 0
        return self.runtime.join(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Deliver what the embedded worker has queued (up to ``broker.drain_timeout``), then stop
        every thread and release every connection."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.embedded and self.runtime.embedded_running:
                wait = self.config.broker.drain_timeout if timeout is None else timeout
                drained = wait > 0 and self.join(wait)
                if not drained:
                    logger.warning(
                        "not everything was delivered before closing; it stays queued in the store "
                        "and goes out on the next run"
                    )
        finally:
            self.runtime.close(list(self.channels.values()))

    @property
    def closed(self) -> bool:
        return self._closed

    def _ensure_open(self) -> None:
        if self._closed:
            raise DispatchError("this Dispatcher is closed")

    # -- channels and company ----------------------------------------------------------------

    def _company(self, country: str, language: str | None) -> dict[str, Any]:
        """:meth:`company`, built once per country and language (render variants key on it)."""
        key = (country, language)
        company = self._companies.get(key)
        if company is None:
            company = self._companies[key] = self.company(country, language)
        return company

    def company(self, country: str, language: str | None = None) -> dict[str, Any]:
        """Sender details for ``country`` (and ``language``): see :func:`dispatch.company.company_details`."""
        return company_details(self.config.company, country, language)


class _OpenOnUse:
    """Stands for the store until something is asked of it: then the store is opened (and migrated)."""

    def __init__(self, open_store) -> None:
        self._open = open_store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._open(), name)


def _actor_function(deliverer: Deliverer):
    def deliver(message_ids: list[str]) -> None:
        deliverer(message_ids)

    deliver.__module__ = "dispatch.delivery"
    return deliver


def _duplicate(row: dict[str, Any] | None) -> Receipt:
    if row is None:  # pragma: no cover - a concurrent delete
        raise DispatchError("duplicate idempotency key, but the first message is gone")
    return Receipt.from_row(row, status="duplicate")


__all__ = ["Dispatcher"]
