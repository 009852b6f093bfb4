"""Statutory fallback: a notice that failed for good is sent once more on the type's next channel.

SPEC §2: the customer must be reached. When a statutory message fails permanently
(an SMTP 5xx, an invalid number, a bounce reported later), the message type's
``fallback_channels`` name where it goes next (email → letter for the built-in
types). The new message runs through the same pipeline stages as any other,
rendered from the inputs stored with the original; the original moves to
``fallback``. Each message falls back at most once (the new message's
idempotency key is ``fallback:<original id>``).

A change notice is re-checked for its new channel (a letter takes days to arrive):
if it can no longer meet the notice lead time it still goes — the customer must be
told — but its record carries ``notice_period`` with the earliest lawful effective
date for that customer, and a ``notice.late`` event is emitted (SPEC §2, §10).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..clock import now_utc
from ..errors import DispatchError
from ..events import Event, EventBus
from ..ids import new_id
from ..lifecycle import Lifecycle, Status
from ..messages import validate_data
from ..policy.engine import choose_language
from ..store import DuplicateKey
from .pipeline import Inputs, Pipeline

if TYPE_CHECKING:
    from .runtime import Runtime

logger = logging.getLogger("dispatch.fallback")


class Fallback:
    """Re-sends failed statutory messages on their type's next channel."""

    def __init__(self, pipeline: Pipeline, runtime: Runtime, lifecycle: Lifecycle, events: EventBus) -> None:
        self.pipeline = pipeline
        self.runtime = runtime
        self.lifecycle = lifecycle
        self.events = events

    def after_failure(self, message: Any, reason: str) -> str | None:
        """Fall back for ``message`` (a claimed message or a stored row) if it is statutory.

        Returns the new message's id, or None when there is nothing to do.
        """
        if _get(message, "category") != "statutory":
            return None
        message_id, failed_channel = _get(message, "id"), _get(message, "channel")
        mtype = self.pipeline.types.get(_get(message, "message_type"))
        store = self.runtime.store
        content = _get(message, "content") or {}
        if "inputs" not in content:  # a claim carries the parts only when the row was read lean
            content = (store.message(message_id) or {}).get("content") or {}
        stored = content.get("inputs") or {}
        try:
            person = self.pipeline.recipient(stored.get("recipient") or {})
        except DispatchError:
            logger.error("statutory message %s failed and its stored recipient cannot be read", message_id)
            return None
        data = stored.get("data")
        campaign_id = _get(message, "campaign_id")
        if data is None and campaign_id:
            data = (store.campaign(campaign_id) or {}).get("data")
        tried = {failed_channel}
        if earlier := _get(message, "fallback_of"):  # never back to the channel that already failed
            tried.add((store.message(earlier, content=False) or {}).get("channel"))
        channel = next(
            (
                c
                for c in _next_channels(mtype, failed_channel, tried)
                if c in self.pipeline.channels and self.pipeline.address(c, person) is not None
            ),
            None,
        )
        if channel is None:
            logger.error(
                "statutory message %s failed on %s and recipient %s has no address on a fallback channel",
                message_id,
                failed_channel,
                person.id,
            )
            return None
        now = now_utc()
        inputs = Inputs(mtype, person, validate_data(mtype, data), now)
        base = self.pipeline.decide(inputs, only_channel=channel)
        late = "notice_period" in base.reasons
        language = _get(message, "language")
        if not self.pipeline.has_parts(mtype.name, channel, language):
            language = choose_language(
                person, mtype, "statutory", channel, self.pipeline.chains, self.pipeline.has_parts
            )
        approvals = self.pipeline.approvals
        refused = approvals.refusal(base.category, mtype.name, language, channel) if approvals else None
        if refused is not None:  # four eyes (SPEC §5): not even a fallback goes out in an unapproved text
            logger.error(
                "statutory message %s failed on %s; no fallback by %s: %s",
                message_id,
                failed_channel,
                channel,
                refused.refusal(),
            )
            return None
        decision = replace(
            base,
            allowed=True,
            reasons=["notice_period"] if late else [],
            channel=channel,
            language=language,
            send_after=None,
            notes={**base.notes, "fallback": f"{failed_channel} failed for good: {reason}"[:300]},
        )
        fallback_id = new_id()
        record = self.pipeline.record(
            inputs,
            decision,
            fallback_id,
            idempotency_key=f"fallback:{message_id}",
            campaign_id=campaign_id,
            fallback_of=message_id,
        )

        def replaced() -> None:  # once the new message is stored, before it is queued
            self.lifecycle.move(
                store,
                message_id,
                Status.FALLBACK,
                now,
                f"re-sent as {fallback_id} by {channel}",
                detail={"fallback_id": fallback_id},
            )

        try:
            self.pipeline.submit_one(store, record, decision, now=now, stored=replaced)
        except DuplicateKey:
            return None  # fell back already
        if late:
            self.events.emit(
                [
                    Event(
                        "notice.late",
                        now,
                        {
                            "message_id": fallback_id,
                            "fallback_of": message_id,
                            "recipient_id": person.id,
                            "message_type": mtype.name,
                            "channel": channel,
                            "effective_on": str(inputs.data.get(mtype.notice_field or "", "")),
                            "earliest_effective_on": base.notes.get("earliest_effective_on"),
                        },
                    )
                ]
            )
            logger.warning(
                "statutory message %s re-sent by %s arrives too late for its effective date", fallback_id, channel
            )
        logger.info(
            "statutory message %s failed on %s; re-sent as %s by %s", message_id, failed_channel, fallback_id, channel
        )
        return fallback_id


def _next_channels(mtype: Any, failed: str, tried: set[str | None]) -> tuple[str, ...]:
    """Where a failed statutory message goes next: the type's fallback channels, and where those are
    used up (a returned paper letter, the usual last resort: SPEC §6) its other channels in order;
    never a channel this message's chain has tried."""
    return tuple(c for c in mtype.fallback_for(failed) or mtype.channels if c not in tried)


def _get(message: Any, name: str) -> Any:
    return message.get(name) if isinstance(message, dict) else getattr(message, name)
