"""The provider refused a send because the person opted out with it: the consent ledger is told."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..errors import RecipientOptedOut
    from ..message.aftersend import AfterSend
    from ..store import Claimed


class RecordOptOut:
    """``DeliveryHooks.opted_out``: records the opt-out (see :meth:`dispatch.aftersend.AfterSend.opted_out_at_send`)."""

    def __init__(self, aftersend: AfterSend) -> None:
        self.aftersend = aftersend

    def __call__(self, message: Claimed, error: RecipientOptedOut) -> None:
        self.aftersend.opted_out_at_send(message, error)
