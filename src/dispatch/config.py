"""Configuration: one TOML file (SPEC §8), every key optional, unknown keys an error.

:func:`load_config` reads ``dispatch.toml`` (or the path given, or
``DISPATCH_CONFIG``) into a :class:`Config`. Sections are dataclasses; a key that
is not a field, or a value of the wrong type, raises :class:`ConfigError` naming
its full path (``policy.countries.NO.calling_days``). Secrets can come from the
environment instead of the file.

Channel sections (``[channels.<name>]``) are handed to the channel plugin that
owns them, which checks its own keys the same way (:func:`build_section`).
"""

from __future__ import annotations

import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError

DEFAULT_CONFIG_NAME = "dispatch.toml"
T = typing.TypeVar("T")


@dataclass
class StoreConfig:
    url: str = "sqlite:///dispatch.db"
    #: Compress stored message bodies (zlib) to keep bulk runs small.
    compress: bool = True


@dataclass
class BrokerConfig:
    url: str = "memory://"
    #: Seconds a message may stay enqueued (not claimed) before the relay hands it over again.
    stuck_after: int = 600
    #: Redis: milliseconds without a heartbeat after which a worker process counts as dead and the
    #: batches it had taken but not finished go back to the queue.
    heartbeat_timeout_ms: int = 30_000
    #: Transient failures are retried this many times (exponential backoff) before dead-lettering.
    max_retries: int = 8
    min_backoff_ms: int = 2_000
    max_backoff_ms: int = 3_600_000
    #: Seconds ``close()`` waits for the embedded worker to deliver what was queued.
    drain_timeout: float = 600.0
    #: Messages per second per channel, shared by every worker (on Redis), e.g. {sms = 10}.
    rate_limits: dict[str, int] = field(default_factory=dict)


@dataclass
class WorkerConfig:
    processes: int = 1
    threads: int = 8
    queues: list[str] = field(default_factory=list)
    #: Message ids per queue message: a worker claims, sends and records this many at a time.
    batch_size: int = 100
    #: Seconds a claim holds without renewal; workers renew theirs every third of it, and a
    #: crashed worker's messages are back in the queue within about one lease (SPEC §7).
    lease: float = 30.0
    #: Seconds between relay rounds (re-enqueue what was lost, release expired claims).
    relay_interval: float = 10.0
    #: Folder for delivery outcomes kept while the store is unreachable (relative to the config file).
    journal: str = ".dispatch-journal"
    #: Seconds one send may take before it counts as a transient failure.
    send_timeout: float = 300.0
    #: First port for each worker process's /metrics (process N uses port + N); 0: no metrics server.
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"


@dataclass
class LoggingConfig:
    #: "human" (lines) or "json" (one object per line); --log-format and DISPATCH_LOG_FORMAT win.
    format: str = "human"
    #: debug, info, warning, error; -v / -vv and DISPATCH_LOG_LEVEL win.
    level: str = "warning"


@dataclass
class TemplatesConfig:
    #: Extra template folders searched before the built-in ones (each holds fi/, sv/, nb/, en/).
    paths: list[str] = field(default_factory=list)
    #: Render each variant once and fill in per-recipient values (see dispatch.render_cache).
    render_cache: bool = True
    #: Limits of one rendered part: wall time and characters of output (see dispatch.render_limits).
    max_render_seconds: float = 5.0
    max_output_chars: int = 2_000_000
    #: Categories whose messages go out only in a template version a second person approved
    #: (SPEC §5, four eyes), e.g. ["statutory"]; empty: no approval needed (see dispatch.approvals).
    require_approval: list[str] = field(default_factory=list)
    #: The language translations are made from: changing it makes the approved translations stale.
    source_language: str = "fi"

    def __post_init__(self) -> None:
        from .models import CATEGORIES, LANGUAGES

        unknown = [c for c in self.require_approval if c not in CATEGORIES]
        if unknown:
            raise ConfigError(
                f"templates.require_approval: unknown categor(y/ies) {', '.join(map(repr, unknown))}"
                f" (known: {', '.join(CATEGORIES)})"
            )
        if self.source_language not in LANGUAGES:
            raise ConfigError(
                f"templates.source_language: {self.source_language!r} is not one of {', '.join(LANGUAGES)}"
            )


@dataclass
class LanguagesConfig:
    #: Fallback chain per preferred language for service and marketing messages.
    fallback: dict[str, list[str]] = field(
        default_factory=lambda: {"fi": ["fi", "sv", "en"], "sv": ["sv", "fi", "en"], "nb": ["nb", "en"], "en": ["en"]}
    )
    #: Languages a statutory message may use, per preferred language. A statutory
    #: message is never sent in a language outside this chain.
    statutory: dict[str, list[str]] = field(
        default_factory=lambda: {"fi": ["fi", "sv"], "sv": ["sv", "fi"], "nb": ["nb", "en"], "en": ["en"]}
    )
    #: Default language per country.
    default: dict[str, str] = field(default_factory=lambda: {"FI": "fi", "SE": "sv", "NO": "nb"})
    #: Babel locale per language and country ("*" for any): {"sv" = {"FI" = "sv_FI", "*" = "sv_SE"}}.
    locales: dict[str, dict[str, str]] = field(default_factory=dict)
    #: How a language writes a price unit the data gives: {fi = {"c/kWh" = "snt/kWh"}} prints Finnish
    #: text in sentit (Kielitoimisto's abbreviation); empty keeps c/kWh, as most Finnish retailers print it.
    unit_labels: dict[str, dict[str, str]] = field(default_factory=dict)


def _default_company_countries() -> dict[str, dict[str, Any]]:
    return {
        "SE": {
            "name": "Pohjola Energi AB",
            "email": "kundservice@example.se",
            "phone": "+46 8 123 456 00",
            "website": "https://energi.example.se",
            "address": ["Kraftgatan 3", "111 22 Stockholm"],
            "business_id": "556677-8899",
            "business_id_label": {
                "fi": "Organisaationumero",
                "sv": "Org.nr",
                "en": "Company reg. no.",
                "nb": "Org.nr.",
            },
            "service_hours": {
                "fi": "ma–pe klo 8–17",
                "sv": "mån–fre kl. 8–17",
                "en": "Mon–Fri 8am–5pm",
                "nb": "man.–fre. kl. 8–17",
            },
            "terms_url": "https://energi.example.se/avtalsvillkor",
        },
        "NO": {
            "name": "Pohjola Energi AS",
            "email": "kundeservice@example.no",
            "phone": "+47 22 12 34 56",
            "website": "https://energi.example.no",
            "address": ["Strømveien 7", "0150 Oslo"],
            "business_id": "912 345 678",
            "business_id_label": {"fi": "Organisaationumero", "sv": "Org.nr", "en": "Org. no.", "nb": "Org.nr."},
            "service_hours": {
                "fi": "ma–pe klo 8–16",
                "sv": "mån–fre kl. 8–16",
                "en": "Mon–Fri 8am–4pm",
                "nb": "man.–fre. kl. 8–16",
            },
            "terms_url": "https://energi.example.no/vilkar",
        },
    }


@dataclass
class CompanyConfig:
    """Sender details shown in messages; ``countries`` overrides them per country."""

    name: str = "Pohjolan Energia Oy"
    #: The e-mail address, website and terms link may be given per language: Swedish-speaking Finns get
    #: the Swedish-language service address and pages (Language Act 423/2003 and a bilingual market).
    email: str | dict[str, str] = field(
        default_factory=lambda: {
            "fi": "asiakaspalvelu@example.fi",
            "sv": "kundservice@example.fi",
            "en": "customerservice@example.fi",
            "nb": "customerservice@example.fi",
        }
    )
    phone: str = "+358 9 4289 1000"
    website: str | dict[str, str] = field(
        default_factory=lambda: {
            "fi": "https://energia.example.fi",
            "sv": "https://energia.example.fi/sv",
            "en": "https://energia.example.fi/en",
            "nb": "https://energia.example.fi/en",
        }
    )
    #: Address lines, or lines per language: Finland's place names differ in Swedish (Helsingfors).
    address: list[str] | dict[str, list[str]] = field(
        default_factory=lambda: {
            "fi": ["Sähkötie 1", "00100 Helsinki"],
            "sv": ["Elvägen 1", "00100 Helsingfors"],
            "en": ["Sähkötie 1", "00100 Helsinki"],
            "nb": ["Sähkötie 1", "00100 Helsinki"],
        }
    )
    business_id: str = "1234567-8"
    #: What the business ID is called, per language (it depends on the country that issued it).
    business_id_label: str | dict[str, str] = field(
        default_factory=lambda: {"fi": "Y-tunnus", "sv": "FO-nummer", "en": "Business ID", "nb": "Foretaks-ID"}
    )
    #: A text, or one per language: {fi = "ma–pe klo 8–18", sv = "...", en = "..."}.
    service_hours: str | dict[str, str] = field(
        default_factory=lambda: {
            "fi": "ma–pe klo 8–18",
            "sv": "mån–fre kl. 8–18",
            "en": "Mon–Fri 8am–6pm",
            "nb": "man.–fre. kl. 8–18",
        }
    )
    #: How many minutes the satisfaction survey takes, as the survey messages say.
    survey_minutes: int = 2
    #: The contract terms (sopimusehdot) the confirmation links to, unless the data gives ``terms_url``.
    terms_url: str | dict[str, str] = field(
        default_factory=lambda: {
            "fi": "https://energia.example.fi/sopimusehdot",
            "sv": "https://energia.example.fi/sv/avtalsvillkor",
            "en": "https://energia.example.fi/en/terms",
            "nb": "https://energia.example.fi/en/terms",
        }
    )
    #: Per-country overrides, e.g. [company.countries.SE] name = "Pohjola Energi AB".
    countries: dict[str, dict[str, Any]] = field(default_factory=_default_company_countries)
    #: The company's own time zone (IANA name): ``dispatch campaign --at`` without an offset is read in it.
    time_zone: str = "Europe/Helsinki"

    def __post_init__(self) -> None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"company.time_zone {self.time_zone!r} is not a time zone name such as Europe/Helsinki"
            ) from None


#: VAT on electricity per country, in percent (SPEC §5).
DEFAULT_VAT_RATES: dict[str, float] = {"FI": 25.5, "SE": 25.0, "NO": 25.0}
#: Postal codes where household electricity is VAT-exempt: Nordland, Troms and Finnmark
#: (merverdiavgiftsloven § 6-6). 8000–9999 is Nordland, Troms, Finnmark and Svalbard;
#: 7980–7982 is Bindal, the one Nordland municipality with Trøndelag postal codes.
DEFAULT_VAT_HOUSEHOLD_EXEMPT: dict[str, list[str]] = {"NO": ["7980-7982", "8000-9999"]}
_POSTAL_RANGE = re.compile(r"^\d{4,5}(-\d{4,5})?$")


@dataclass
class VatConfig:
    """``[vat]``: the VAT household prices include, per country, and where households are exempt.

    ``rates`` are percentages (``FI = 25.5``); a country not given keeps its default.
    ``household_exempt`` lists postal codes or ranges (``"8000-9999"``) per country where
    household electricity carries no VAT.
    """

    rates: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_VAT_RATES))
    household_exempt: dict[str, list[str]] = field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_VAT_HOUSEHOLD_EXEMPT.items()}
    )

    def __post_init__(self) -> None:
        for country, rate in self.rates.items():
            if country not in DEFAULT_VAT_RATES:
                raise ConfigError(f"vat.rates.{country}: unknown country (FI, SE or NO)")
            if not 0 <= rate < 100:
                raise ConfigError(f"vat.rates.{country} must be a percentage from 0 to 100, not {rate}")
        for country, codes in self.household_exempt.items():
            if country not in DEFAULT_VAT_RATES:
                raise ConfigError(f"vat.household_exempt.{country}: unknown country (FI, SE or NO)")
            bad = [c for c in codes if not _POSTAL_RANGE.match(c)]
            if bad:
                raise ConfigError(
                    f"vat.household_exempt.{country}: {', '.join(map(repr, bad))} "
                    'must be postal codes or ranges like "8000-9999"'
                )


@dataclass
class LinksConfig:
    #: Where the unsubscribe and preference pages are served (``dispatch serve``).
    base_url: str = "http://127.0.0.1:8025"
    #: Secret that signs tokens in links; env DISPATCH_LINK_SECRET; if unset, one is
    #: generated and kept in the store so links keep working across runs.
    secret: str | None = None
    #: Mailbox for mailto: unsubscribe (List-Unsubscribe).
    unsubscribe_mailto: str | None = None
    #: Days a preference-page link in a message stays valid.
    preferences_days: int = 90
    #: Days a short code printed on a letter (``/p/CODE``) stays valid.
    short_code_days: int = 400


@dataclass
class CampaignsConfig:
    """``[campaigns]``: limits on bulk sends."""

    #: ``--at`` / ``campaign(at=...)`` may schedule at most this many days ahead: a scheduled
    #: campaign keeps its recipients' personal data until its release (GDPR Art 5(1)(e)).
    schedule_horizon_days: int = 365


@dataclass
class WebConfig:
    """``dispatch serve``: where it listens and who may see the operator view."""

    host: str = "127.0.0.1"
    port: int = 8025
    #: Bearer token (or HTTP Basic password) for the read-only operator view; env
    #: DISPATCH_OPERATOR_TOKEN. Unset: the operator view is off.
    operator_token: str | None = None
    #: Seconds in-flight requests get to finish on shutdown.
    shutdown_timeout: int = 10
    #: How many pages opened by a link token or a short code one client address may request
    #: (a moving window, per ``serve`` process); beyond it: 429. See dispatch.web.ratelimit.
    rate_limit: str = "60/minute"
    #: Which company (country of ``[company.countries]``) an error page shows when it cannot tell
    #: from the message (a damaged link, an unknown short code), by the host name the page was
    #: asked for: ``{"energi.example.se" = "SE"}``. Never chosen from the browser's language.
    brand_hosts: dict[str, str] = field(default_factory=dict)
    #: The company shown for a host not in ``brand_hosts`` (FI, SE or NO).
    brand_country: str = "FI"

    def __post_init__(self) -> None:
        from .models import COUNTRIES

        if self.brand_country not in COUNTRIES:
            raise ConfigError(f"web.brand_country must be one of {', '.join(COUNTRIES)}")
        hosts: dict[str, str] = {}
        for host, country in self.brand_hosts.items():
            name = host.strip().lower().rstrip(".")
            if not _HOST_NAME.match(name):
                raise ConfigError(
                    f"web.brand_hosts.{host}: must be a host name such as energia.example.fi (no scheme, port or path)"
                )
            if country not in COUNTRIES:
                raise ConfigError(f"web.brand_hosts.{host} must be one of {', '.join(COUNTRIES)}")
            if name in hosts:
                raise ConfigError(f"web.brand_hosts names {name} twice")
            hosts[name] = country
        self.brand_hosts = hosts


#: A host name (letters, digits, hyphens, dots) for ``[web] brand_hosts``.
_HOST_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


#: Hosts an ``http://`` webhook endpoint may name without ``allow_http`` (the same machine).
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


@dataclass
class WebhooksConfig:
    """``[webhooks]``: events POSTed to these endpoints, signed per Standard Webhooks (dispatch.webhooks)."""

    #: Receiver URLs; every event goes to each of them. Empty: no webhooks (and no outbox rows).
    endpoints: list[str] = field(default_factory=list)
    #: ``whsec_`` + base64 of 24 to 64 random bytes; env DISPATCH_WEBHOOK_SECRET.
    secret: str | None = field(default=None, repr=False)
    #: Event types sent (SPEC §10 names); empty: all of them.
    events: list[str] = field(default_factory=list)
    #: Seconds one POST may take before it counts as failed.
    timeout: float = 10.0
    #: POSTs in flight at once (kept-alive connections per process).
    concurrency: int = 64
    #: Retries back off exponentially from ``min_backoff`` to ``max_backoff`` seconds (with jitter) ...
    min_backoff: float = 5.0
    max_backoff: float = 1800.0
    #: ... until the event is this many seconds old; then its delivery is ``dead`` (3 days).
    max_age: float = 259_200.0
    #: Seconds delivered rows are kept in the outbox table (for operators) before they are purged.
    keep_delivered: float = 604_800.0
    #: Seconds between looks at the outbox table when nothing wakes the sender.
    poll_interval: float = 1.0
    #: Seconds ``close()`` keeps sending what is due before it stops (the rest waits in the table).
    drain_timeout: float = 5.0
    #: ``http://`` endpoints are refused unless they are on this machine or this is true.
    allow_http: bool = False

    def __post_init__(self) -> None:
        from urllib.parse import urlsplit

        for index, url in enumerate(self.endpoints):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"webhooks.endpoints[{index}] must be an http(s) URL")
            if parts.scheme == "http" and not self.allow_http and parts.hostname not in _LOOPBACK_HOSTS:
                raise ConfigError(
                    f"webhooks.endpoints[{index}] is plain http to another machine; use https "
                    "(or set webhooks.allow_http = true)"
                )
        if len(set(self.endpoints)) != len(self.endpoints):
            raise ConfigError("webhooks.endpoints lists an endpoint twice")
        if self.endpoints and not self.secret:
            raise ConfigError("webhooks.endpoints needs webhooks.secret (or DISPATCH_WEBHOOK_SECRET)")
        if self.secret is not None:
            from .webhook_secret import secret_key

            secret_key(self.secret, "webhooks.secret")
        from .events import EVENT_TYPES

        unknown = [e for e in self.events if e not in EVENT_TYPES]
        if unknown:
            raise ConfigError(f"webhooks.events: unknown event type(s) {', '.join(unknown)} ({', '.join(EVENT_TYPES)})")
        for name in ("timeout", "min_backoff", "max_backoff", "max_age", "poll_interval"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"webhooks.{name} must be more than 0")
        if self.concurrency < 1:
            raise ConfigError("webhooks.concurrency must be at least 1")
        if self.max_backoff < self.min_backoff:
            raise ConfigError("webhooks.max_backoff must not be less than webhooks.min_backoff")


@dataclass
class CountryRules:
    """Rules that differ by country (SPEC §2, §4); defaults are SPEC's."""

    #: Notice lead time for price and terms changes, ISO duration (P1M, P30D, P14D).
    notice_household: str = "P1M"
    notice_business: str = "P14D"
    #: Calling hours for phone tasks: ISO weekdays (1=Mon) and local hours [start, end).
    calling_days: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5])
    calling_hours: list[str] = field(default_factory=lambda: ["09:00", "20:00"])
    #: Registers older than this many days are reported as stale.
    register_refresh_days: int = 31
    #: In this country active customers are exempt from the do-not-contact registers.
    registers_exempt_active_customers: bool = False
    #: When a customer must be told that a fixed-term contract ends: [earliest, latest] before the
    #: end, ISO durations; empty where no such rule applies. Sweden: no earlier than 90 and no later
    #: than 60 days before (ellagen; Energimarknadsinspektionen, "Vad händer när mitt tidsbestämda
    #: elavtal löper ut?", ei.se 2024-02-12, and Ei's news of 2023-01-20 on its supervision).
    renewal_notice: list[str] = field(default_factory=list)


def _default_countries() -> dict[str, CountryRules]:
    return {
        "FI": CountryRules(),
        "SE": CountryRules(
            notice_household="P2M", registers_exempt_active_customers=True, renewal_notice=["P90D", "P60D"]
        ),
        "NO": CountryRules(
            notice_household="P30D",
            calling_hours=["09:00", "21:00"],
            register_refresh_days=31,
            registers_exempt_active_customers=True,
        ),
    }


@dataclass
class PolicyConfig:
    marketing_per_year: int = 4
    marketing_min_days_between: int = 7
    adult_age: int = 18
    former_quiet_months: int = 6
    former_retention_months: int = 24
    prospect_retention_months: int = 6
    #: Statutory notices and confirmations are kept this long for proof, even past retention.
    statutory_retention_years: int = 6
    #: SMS marketing is not sent between these local times (start, end).
    sms_quiet_hours: list[str] = field(default_factory=lambda: ["21:00", "08:00"])
    #: Soft bounces (mailbox full, a DSN that gave up on a 4.x.x) in a row before an address is suppressed.
    soft_bounce_limit: int = 3
    #: Working days a channel needs to reach the recipient (counts against notice lead time).
    delivery_days: dict[str, int] = field(default_factory=lambda: {"letter": 3})
    countries: dict[str, CountryRules] = field(default_factory=_default_countries)


@dataclass
class Config:
    store: StoreConfig = field(default_factory=StoreConfig)
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    templates: TemplatesConfig = field(default_factory=TemplatesConfig)
    languages: LanguagesConfig = field(default_factory=LanguagesConfig)
    company: CompanyConfig = field(default_factory=CompanyConfig)
    links: LinksConfig = field(default_factory=LinksConfig)
    web: WebConfig = field(default_factory=WebConfig)
    campaigns: CampaignsConfig = field(default_factory=CampaignsConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    vat: VatConfig = field(default_factory=VatConfig)
    webhooks: WebhooksConfig = field(default_factory=WebhooksConfig)
    #: Folder for the embedded channels' files (.eml, SMS JSON lines, PDFs, call tasks).
    outbox: str = "outbox"
    #: Per-channel settings, checked by the channel plugin that owns them.
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Extra message types: [message_types.NAME] category=..., channels=[...], fields={...}.
    message_types: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Where the configuration came from (None: embedded defaults).
    source: str | None = None
    #: The folder relative paths in the file are resolved against.
    base_dir: str = "."

    def path(self, value: str) -> Path:
        """Resolve a path from the configuration against the config file's folder."""
        candidate = Path(value).expanduser()
        return candidate if candidate.is_absolute() else Path(self.base_dir) / candidate


_ENV_SECRETS = {
    "DISPATCH_LINK_SECRET": ("links", "secret"),
    "DISPATCH_OPERATOR_TOKEN": ("web", "operator_token"),
    "DISPATCH_STORE_URL": ("store", "url"),
    "DISPATCH_BROKER_URL": ("broker", "url"),
    "DISPATCH_WEBHOOK_SECRET": ("webhooks", "secret"),
}


def load_config(path: str | os.PathLike[str] | None = None, *, overrides: dict[str, Any] | None = None) -> Config:
    """Load configuration from ``path``, ``$DISPATCH_CONFIG`` or ``./dispatch.toml``.

    With none of them present, the embedded defaults apply (SQLite store, in-process
    broker, files in ``./outbox``). ``overrides`` is a mapping merged over the file
    (used by tests and the CLI).
    """
    source: Path | None = None
    if path is not None:
        source = Path(path)
        if not source.is_file():
            raise ConfigError(f"configuration file {str(source)!r} does not exist")
    elif os.environ.get("DISPATCH_CONFIG"):
        source = Path(os.environ["DISPATCH_CONFIG"])
        if not source.is_file():
            raise ConfigError(f"DISPATCH_CONFIG points at {str(source)!r}, which does not exist")
    elif Path(DEFAULT_CONFIG_NAME).is_file():
        source = Path(DEFAULT_CONFIG_NAME)
    raw: dict[str, Any] = {}
    if source is not None:
        try:
            raw = tomllib.loads(source.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    if overrides:
        raw = _merge(raw, overrides)
    for env, (section, key) in _ENV_SECRETS.items():
        if os.environ.get(env):
            raw.setdefault(section, {})[key] = os.environ[env]
    config = build_section(Config, raw, "")
    config.source = str(source) if source else None
    config.base_dir = str(source.parent if source else Path.cwd())
    return config


def build_section(cls: type[T], raw: Any, where: str) -> T:
    """Build dataclass ``cls`` from ``raw``; unknown keys and wrong types name their path."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'configuration'} must be a table")
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = [k for k in raw if k not in known or k in ("source", "base_dir")]
    if unknown:
        names = ", ".join(_join(where, k) for k in unknown)
        raise ConfigError(f"unknown configuration key(s): {names}")
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if cls is PolicyConfig and name == "countries":
            values[name] = _country_rules(value, _join(where, name))
        else:
            values[name] = _coerce(hints[name], value, _join(where, name))
    return cls(**values)


def _country_rules(raw: Any, where: str) -> dict[str, CountryRules]:
    """Country overrides keep that country's defaults for every key not given."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table of countries")
    rules = _default_countries()
    for country, table in raw.items():
        path = _join(where, country)
        if country not in rules:
            raise ConfigError(f"{path}: unknown country (FI, SE or NO)")
        built = build_section(CountryRules, table, path)  # checks keys and types
        given = {f.name: getattr(built, f.name) for f in fields(CountryRules) if f.name in table}
        base = rules[country]
        rules[country] = CountryRules(**{**{f.name: getattr(base, f.name) for f in fields(base)}, **given})
    return rules


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where} has the wrong type")
    if is_dataclass(hint):
        return build_section(hint, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, not {_tname(value)}")
        return [_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)] if args else value
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table, not {_tname(value)}")
        if not args:
            return value
        return {k: _coerce(args[1], v, _join(where, k)) for k, v in value.items()}
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, not {_tname(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, not {_tname(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, not {_tname(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, not {_tname(value)}")
        return value
    return value


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _tname(value: Any) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "a list"}.get(
        type(value), type(value).__name__
    )
