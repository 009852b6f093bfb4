"""A message failed for good: a refused address is noted, a statutory message falls back (SPEC §2, §6)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import AddressRejected

if TYPE_CHECKING:
    from ..message.aftersend import AfterSend
    from ..message.fallback import Fallback
    from ..store import Claimed


class FallBackOnFailure:
    """``DeliveryHooks.failed``: an address the provider refused goes to the after-send handling
    (suppression list), then a statutory message is re-sent on its type's next channel."""

    def __init__(self, aftersend: AfterSend, fallback: Fallback) -> None:
        self.aftersend = aftersend
        self.fallback = fallback

    def __call__(self, message: Claimed, _transition: Any, error: Exception) -> None:
        if isinstance(error, AddressRejected):
            self.aftersend.rejected_at_send(message, error)
        self.fallback.after_failure(message, str(error))
