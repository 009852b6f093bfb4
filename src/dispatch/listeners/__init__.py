"""What a worker's delivery asks of the rest of dispatch, one named listener per file
(as Dramatiq keeps one middleware per file): :class:`~dispatch.delivery.DeliveryHooks` is
built from these in :class:`~dispatch.Dispatcher`.

- :class:`FallBackOnFailure` — a message failed for good (``failed.py``);
- :class:`RecordOptOut` — the provider says the person opted out (``opted_out.py``);
- :class:`UnsubscribeLinks` — a message's unsubscribe URL for its headers (``unsubscribe.py``);
- :class:`Requeue` — messages handed to the queue again with a delay (``requeue.py``).
"""

from __future__ import annotations

from .failed import FallBackOnFailure
from .opted_out import RecordOptOut
from .requeue import Requeue
from .unsubscribe import UnsubscribeLinks

__all__ = ["FallBackOnFailure", "RecordOptOut", "Requeue", "UnsubscribeLinks"]
