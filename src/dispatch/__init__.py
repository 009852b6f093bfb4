"""dispatch: multichannel customer messages for Nordic electricity retailers.

>>> from dispatch import Dispatcher
>>> with Dispatcher.from_config() as d:                     # doctest: +SKIP
...     receipt = d.dispatch("price_change", recipient, data, idempotency_key="pc-2027-05:C-1001")

See SPEC §1 for the public API; everything importable from here is stable.
"""

from __future__ import annotations

from typing import Any

from . import errors
from ._default import close_default, default_dispatcher
from .channels import Channel, ChannelContext
from .dispatcher import Dispatcher
from .errors import DispatchError
from .hookspecs import hookimpl
from .messages import FieldSpec, MessageType
from .models import Consent, Decision, DeliveryResult, OutgoingMessage, Receipt, Recipient
from .registers import Register, RegisterEntry

__all__ = [
    "Channel",
    "ChannelContext",
    "Consent",
    "Decision",
    "DeliveryResult",
    "DispatchError",
    "Dispatcher",
    "FieldSpec",
    "MessageType",
    "OutgoingMessage",
    "Receipt",
    "Recipient",
    "Register",
    "RegisterEntry",
    "close_default",
    "decide",
    "default_dispatcher",
    "dispatch",
    "errors",
    "hookimpl",
]


def dispatch(message_type: str, recipient: Any, data: Any = None, **kwargs: Any) -> Receipt:
    """:meth:`Dispatcher.dispatch` on the default dispatcher (configured from
    ``$DISPATCH_CONFIG`` or ``./dispatch.toml``, else the embedded defaults; it is
    closed — and what it queued delivered — when the program exits)."""
    return default_dispatcher().dispatch(message_type, recipient, data, **kwargs)


def decide(message_type: str, recipient: Any, data: Any = None, **kwargs: Any) -> Decision:
    """:meth:`Dispatcher.decide` on the default dispatcher."""
    return default_dispatcher().decide(message_type, recipient, data, **kwargs)
