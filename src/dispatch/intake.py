"""What bulk intake — campaigns (:mod:`dispatch.campaign`) and scheduled campaigns
(:mod:`dispatch.scheduled`) — needs of the dispatcher, and nothing more.

The :class:`~dispatch.Dispatcher` hands its :attr:`~dispatch.Dispatcher.intake` to them,
so neither module knows the Dispatcher (no type-level cycle dispatcher ↔ campaign ↔
scheduled), and a campaign reaches the pipeline's stages the way a single message does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .messages import MessageData, validate_data

if TYPE_CHECKING:
    from .approvals import Approvals
    from .channels import Channel
    from .config import Config
    from .message.pipeline import Pipeline
    from .message.runtime import Runtime
    from .messages import MessageTypeRegistry
    from .models import Recipient
    from .render import Renderer
    from .store import Store


@dataclass(frozen=True, slots=True, eq=False)
class Intake:
    """The parts a campaign uses: the pipeline (validate, decide, render, submit), the runtime
    (the store, the releaser, the embedded worker), four-eyes approval and the preview."""

    pipeline: Pipeline
    runtime: Runtime
    approvals: Approvals
    #: Renders one message's parts without recording it (:meth:`dispatch.Dispatcher.preview`).
    preview: Callable[..., dict[str, str]]
    config: Config
    embedded: bool
    is_closed: Callable[[], bool]
    #: Builds a dispatcher from a configuration in another process (several intake processes).
    factory: Callable[[Config], Any]

    @property
    def store(self) -> Store:
        """The store, opened (and migrated) on first use."""
        return self.runtime.store

    @property
    def types(self) -> MessageTypeRegistry:
        return self.pipeline.types

    @property
    def channels(self) -> Mapping[str, Channel]:
        return self.pipeline.channels

    @property
    def renderer(self) -> Renderer:
        return self.pipeline.renderer

    @property
    def closed(self) -> bool:
        """The dispatcher was closed (a scheduled release then waits for the next process)."""
        return self.is_closed()

    def parse_recipient(self, recipient: Mapping[str, Any] | Recipient) -> Recipient:
        """Validate a recipient mapping (SPEC §3) against the known channels."""
        return self.pipeline.recipient(recipient)

    def validate_data(self, message_type: str, data: Mapping[str, Any] | None) -> MessageData:
        """Validate message data for a type once, to reuse for every recipient."""
        return validate_data(self.types.get(message_type), data)


def intake_of(host: Any) -> Intake:
    """``host``'s :class:`Intake`: itself, or a :class:`~dispatch.Dispatcher`'s ``intake``."""
    return host if isinstance(host, Intake) else host.intake


__all__ = ["Intake", "intake_of"]
