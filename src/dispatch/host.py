"""What a plugin sees of the running dispatcher: a small host (pluggy's ``host.py``).

The ``dispatch_web_routes`` and ``dispatch_serve_services`` hooks receive a :class:`Host`
(as their ``dispatcher`` argument) rather than the whole :class:`~dispatch.Dispatcher`:
the channels, the configuration, and :meth:`Host.handle_feedback` to hand a provider's
report (a delivery receipt, a bounce, a STOP reply) to the core. A
:class:`~dispatch.Dispatcher` satisfies the protocol too, so code written for it keeps working.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .channels import Channel
    from .config import Config
    from .feedback import ProviderEvent


class Host(Protocol):
    """The part of the running dispatcher a plugin's web routes and services may use."""

    @property
    def channels(self) -> Mapping[str, Channel]:
        """The configured channels by name (``host.channels["email"]``)."""

    @property
    def config(self) -> Config:
        """The loaded configuration (``[channels.<name>]``, ``[links] base_url``...)."""

    def handle_feedback(self, event: ProviderEvent) -> bool:
        """Apply a provider's report (SPEC §10); False when it matched no message and no recipient."""


@dataclass(frozen=True, slots=True)
class PluginHost:
    """The :class:`Host` handed to plugins: three names of the serving dispatcher, nothing else."""

    channels: Mapping[str, Channel]
    config: Config
    feedback: Callable[[ProviderEvent], bool]

    @classmethod
    def of(cls, dispatcher: Any) -> PluginHost:
        """The host view of ``dispatcher`` (a :class:`~dispatch.Dispatcher`)."""
        return cls(dispatcher.channels, dispatcher.config, dispatcher.handle_feedback)

    def handle_feedback(self, event: ProviderEvent) -> bool:
        """Apply a provider's report (see :meth:`dispatch.Dispatcher.handle_feedback`)."""
        return self.feedback(event)


__all__ = ["Host", "PluginHost"]
