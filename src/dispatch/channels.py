"""The base class of channel plugins.

A channel turns a rendered :class:`~dispatch.models.OutgoingMessage` into a real
delivery: an email, an SMS, a printed letter, a call task. Subclass
:class:`Channel`, set the class attributes, implement :meth:`Channel.deliver`, and
register the class from the ``dispatch_channels`` hook::

    class PushChannel(Channel):
        name = "push"
        parts = {"title": "push.title.txt", "text": "push.txt"}
        address_kind = "custom"

        def address(self, recipient):
            return recipient_token(recipient.id)

        async def deliver(self, message):
            ...
            return DeliveryResult(provider_id=...)

Settings come from ``[channels.<name>]`` and are checked against
``settings_class`` (a dataclass): an unknown key is an error naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import ConfigError, PermanentDeliveryError, TransientDeliveryError

if TYPE_CHECKING:
    from .config import Config
    from .messages import MessageType
    from .models import DeliveryResult, OutgoingMessage, Recipient


@dataclass
class NoSettings:
    """Settings of a channel that takes none."""


@dataclass
class ChannelContext:
    """What the core gives every channel: where its files go and the configuration."""

    outbox: Path
    config: Config
    company: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Derives a secret key for one purpose from the deployment's signing secret (see :meth:`signing_key`).
    keys: Callable[[str], bytes] | None = None

    def company_for(self, country: str) -> Mapping[str, Any]:
        """The sender details for messages to ``country`` (per-country overrides applied)."""
        return self.company.get(country) or self.company.get("*") or {}

    def company_in(self, country: str, language: str) -> Mapping[str, Any]:
        """The sender details for a message to ``country`` in ``language``: values given per language
        (an address with Swedish place names, a Swedish service address...) resolved for it."""
        from .company import company_details

        return company_details(self.config.company, country, language)

    def signing_key(self, purpose: str) -> bytes:
        """A secret key for ``purpose`` (e.g. ``"verp"``), the same in every process of the deployment.

        Derived from ``[links] secret`` (the embedded default keeps one in the store), so a
        worker that signs and ``dispatch serve`` that verifies agree. Call it when the key is
        needed, not at start-up: the store may not be open yet.
        """
        if self.keys is None:
            raise ConfigError("this channel was built without a signing secret")
        return self.keys(purpose)


class Channel:
    """Base class of channel plugins (see the module docstring)."""

    #: The channel's name, used in preferences, templates and queues.
    name: ClassVar[str] = ""
    #: Template parts: part name → file name under ``templates/<lang>/<type>/``.
    parts: ClassVar[Mapping[str, str]] = {}
    #: Dataclass for ``[channels.<name>]``.
    settings_class: ClassVar[type] = NoSettings
    #: Which recipient field the default :meth:`address` reads:
    #: ``email``, ``mobile`` (an SMS-capable phone), ``phone`` or ``postal``.
    address_kind: ClassVar[str] = "email"
    #: The channel this one is a route of (a digital mailbox is a route of ``letter``, SPEC §6): such a
    #: channel is never queued nor chosen by the policy engine; its host channel sends through it.
    route_of: ClassVar[str | None] = None
    #: Errors (beyond dispatch's own delivery errors) that mean "failed for good": never retried.
    permanent_errors: ClassVar[tuple[type[Exception], ...]] = (PermanentDeliveryError,)
    #: Errors that mean "try again later" (retried with back-off); anything else a channel raises is a bug.
    transient_errors: ClassVar[tuple[type[Exception], ...]] = (TransientDeliveryError,)

    def __init__(self, settings: Any, context: ChannelContext) -> None:
        self.settings = settings
        self.context = context

    @property
    def embedded(self) -> bool:
        """True when the channel writes local files instead of calling a provider."""
        return True

    def address(self, recipient: Recipient) -> Any | None:
        """The recipient's usable address on this channel, or ``None``.

        Must be pure and fast: the policy engine calls it for every decision.
        """
        if self.address_kind == "email":
            return recipient.email
        if self.address_kind == "mobile":
            return recipient.phone if recipient.phone_is_mobile else None
        if self.address_kind == "phone":
            return recipient.phone
        if self.address_kind == "postal":
            return recipient.address.as_dict() if recipient.address else None
        return None

    async def deliver(self, message: OutgoingMessage) -> DeliveryResult:
        """Deliver one message. Raise a transient or permanent delivery error on failure.

        Delivery must be idempotent for the same ``message.id``: a crash may make the
        queue hand the same message over again.
        """
        raise NotImplementedError(f"channel {self.name!r} does not implement deliver()")

    def check_rendered(self, message_type: MessageType, parts: Mapping[str, str]) -> list[str]:
        """Problems with rendered parts, for ``dispatch templates check`` (e.g. too many SMS segments)."""
        return []

    def finalize_part(self, part: str, text: str) -> str:
        """Transform one rendered part before it is stored and sent (e.g. inline CSS).

        Runs once per rendered variant in bulk (see :mod:`dispatch.render_cache`), so it must
        treat text it did not produce as opaque: the per-person values are filled in later.
        Default: unchanged.
        """
        return text

    def prepare(self, message_type: MessageType, parts: Mapping[str, str]) -> dict[str, Any]:
        """Facts to store with the message when it is queued (e.g. SMS segment count)."""
        return {}

    def preview_headers(self, message: OutgoingMessage) -> dict[str, str]:
        """What the recipient sees around the content (an email's From), for ``dispatch preview``.

        Default: nothing.
        """
        return {}

    def preview_images(self, message: OutgoingMessage) -> list[bytes]:
        """The message as the recipient sees it, as PNG images page by page (a letter), for ``dispatch preview``.

        Default: none (the page shows the rendered parts).
        """
        return []

    def finish_batch(self) -> dict[str, Any] | None:
        """Called when a run ends: close print batches and the like. Returns a summary or None."""
        return None

    async def aclose(self) -> None:
        """Release connections; called on the delivery event loop at shutdown."""


def build_channels(
    config: Config,
    classes: Mapping[str, type[Channel]],
    companies: Mapping[str, Mapping[str, Any]],
    keys: Callable[[str], bytes] | None = None,
) -> dict[str, Channel]:
    """One instance of every registered channel, with its ``[channels.<name>]`` settings checked.

    ``companies`` holds the sender details per country (``"*"`` is the fallback: Finland's).
    A section for a channel no plugin provides is an error naming it.
    """
    from .config import build_section

    unknown = sorted(set(config.channels) - set(classes))
    if unknown:
        raise ConfigError(
            f"unknown channel section(s): {', '.join('channels.' + n for n in unknown)} "
            f"(installed: {', '.join(sorted(classes))})"
        )
    company = {"*": companies.get("FI", {}), **companies}
    outbox = config.path(config.outbox)
    out: dict[str, Channel] = {}
    for name, cls in classes.items():
        raw = dict(config.channels.get(name, {}))
        if "from" in raw:  # SPEC §8 writes the sender as `from`, a Python keyword: it is `sender` here
            if "sender" in raw:
                raise ConfigError(f"channels.{name}: give `from` or `sender`, not both")
            raw["sender"] = raw.pop("from")
        settings = build_section(cls.settings_class, raw, f"channels.{name}")
        out[name] = cls(settings, ChannelContext(outbox=outbox / name, config=config, company=company, keys=keys))
    return out
