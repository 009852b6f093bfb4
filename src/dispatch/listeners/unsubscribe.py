"""A message's unsubscribe URL (its List-Unsubscribe header), for messages that must carry one."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..context import needs_unsubscribe

if TYPE_CHECKING:
    from ..links import LinkSigner
    from ..messages import MessageTypeRegistry
    from ..store import Claimed


class UnsubscribeLinks:
    """``DeliveryHooks.unsubscribe_url``: a signed link for marketing (and every type that asks for
    an opt-out), None for the rest."""

    def __init__(self, types: MessageTypeRegistry, links: Callable[[], LinkSigner]) -> None:
        self.types = types
        self.links = links  # the signer is made on first use (its secret may live in the store)

    def __call__(self, message: Claimed) -> str | None:
        mtype = self.types.get(message.message_type) if message.message_type in self.types else None
        if message.category == "marketing" or (mtype is not None and needs_unsubscribe(mtype, message.category)):
            return self.links().unsubscribe_url(message.id)
        return None
