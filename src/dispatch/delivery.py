"""The worker side: claim a stored message, hand it to its channel, record the outcome.

:class:`Deliverer` is what the queue's actors call with a message id. Delivery is
idempotent: a message is claimed with a compare-and-set, so when the queue hands
the same id over twice (a redelivery after a crash, a relay) only one worker sends
it and the other sees that it is no longer ``queued``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pluggy
from dramatiq import Retry
from dramatiq.middleware import CurrentMessage

from .channels import Channel
from .errors import PermanentDeliveryError, RecipientOptedOut, TransientDeliveryError
from .models import DeliveryResult, OutgoingMessage
from .queue import AsyncRunner, RateLimits
from .store import Store, now_utc, worker_identity

logger = logging.getLogger("dispatch.delivery")


@dataclass
class DeliveryHooks:
    """Callbacks into the dispatcher for what a worker cannot decide alone."""

    #: A statutory message failed for good: send it another way (returns the new id).
    fallback: Callable[[dict[str, Any], str], str | None]
    #: The provider says the person opted out: record it in the consent ledger.
    opted_out: Callable[[dict[str, Any], RecipientOptedOut], None]
    #: Builds the unsubscribe URL of a message (None for messages without one).
    unsubscribe_url: Callable[[dict[str, Any]], str | None]


class Deliverer:
    """Delivers messages by id (the function behind every queue actor)."""

    def __init__(
        self,
        store: Callable[[], Store],
        channels: Mapping[str, Channel],
        runner: AsyncRunner,
        pm: pluggy.PluginManager,
        hooks: DeliveryHooks,
        *,
        max_retries: int,
        timeout: float = 300.0,
        rate_limits: RateLimits | None = None,
    ) -> None:
        self._store = store
        self.channels = channels
        self.runner = runner
        self.pm = pm
        self.hooks = hooks
        self.max_retries = max_retries
        self.timeout = timeout
        self.rate_limits = rate_limits

    @property
    def store(self) -> Store:
        return self._store()

    def __call__(self, message_id: str) -> None:
        """The queue actor: a transient failure becomes a quiet :class:`dramatiq.Retry` with backoff."""
        try:
            self.deliver(message_id, retries=_current_retries())
        except TransientDeliveryError as exc:
            raise Retry(f"transient failure ({exc.code or type(exc.__cause__ or exc).__name__})") from None

    def deliver(self, message_id: str, *, retries: int = 0) -> str:
        """Deliver one message; returns the state it ends in (or ``skipped``)."""
        worker = f"{worker_identity()}/{uuid.uuid4().hex[:8]}"
        if self.rate_limits is not None and self.rate_limits.limiters:
            channel_name = self.store.channel_of(message_id)
            if channel_name:
                self.rate_limits.wait(channel_name)
        started = now_utc()
        row = self.store.claim(message_id, worker, started)
        if row is None:
            logger.debug("message %s is not queued any more; skipped", message_id)
            return "skipped"
        channel = self.channels.get(row["channel"])
        if channel is None:
            self._finish(row, worker, started, "dead", error=f"no channel {row['channel']!r} is installed")
            return "dead"
        message = self._outgoing(row)
        result: DeliveryResult | None = None
        error: Exception | None = None
        try:
            result = self.runner.run(channel.deliver(message), timeout=self.timeout)
        except RecipientOptedOut as exc:
            error = exc
            self._finish(row, worker, started, "failed", error=exc)
            self._safely(self.hooks.opted_out, row, exc)
            self._fallback(row, exc)
        except PermanentDeliveryError as exc:
            error = exc
            self._finish(row, worker, started, "failed", error=exc)
            self._fallback(row, exc)
        except Exception as exc:  # transient, including timeouts and unexpected provider errors
            error = (
                exc
                if isinstance(exc, TransientDeliveryError)
                else TransientDeliveryError(f"{type(exc).__name__}: {exc}")
            )
            final = retries >= self.max_retries
            self._finish(row, worker, started, "dead" if final else "queued", error=error)
            self._notify(message, None, error)
            code = getattr(error, "code", None) or type(exc).__name__
            if final:
                logger.warning("message %s dead after %d attempts (%s)", message_id, row["attempts"], code)
                return "dead"
            logger.info("message %s: transient failure (%s), attempt %d; retrying", message_id, code, row["attempts"])
            if error is exc:
                raise
            raise error from exc
        else:
            self._finish(row, worker, started, "delivered", result=result)
        self._notify(message, result, error)
        return "delivered" if error is None else "failed"

    # -- helpers -----------------------------------------------------------------------

    def _outgoing(self, row: dict[str, Any]) -> OutgoingMessage:
        content = row["content"] or {}
        return OutgoingMessage(
            id=row["id"],
            message_type=row["message_type"],
            category=row["category"],
            channel=row["channel"],
            language=row["language"],
            locale=row["locale"] or row["language"],
            country=row["country"],
            recipient_id=row["recipient_id"],
            address=row["address"],
            parts=content.get("parts", {}),
            unsubscribe_url=self.hooks.unsubscribe_url(row),
            send_after=row["send_after"],
            deadline=row["deadline"],
            attempt=row["attempts"],
            meta=dict(row["meta"] or {}),
        )

    def _finish(
        self,
        row: dict[str, Any],
        worker: str,
        started,
        status: str,
        *,
        result: DeliveryResult | None = None,
        error: Exception | None = None,
    ) -> None:
        finished = now_utc()
        provider_id = result.provider_id if result else getattr(error, "provider_id", None)
        detail = dict(result.detail) if result else {}
        if error is not None and getattr(error, "code", None):
            detail["code"] = error.code
        outcome = {"delivered": "delivered", "queued": "transient", "dead": "transient"}.get(status, "permanent")
        attempt = {
            "message_id": row["id"],
            "attempt": row["attempts"],
            "worker": worker,
            "started_at": started,
            "finished_at": finished,
            "outcome": outcome,
            "provider_id": provider_id,
            "error": str(error) if error else None,
            "detail": detail or None,
        }
        ok = self.store.finish(
            row["id"],
            worker,
            status=status,
            now=finished,
            provider_id=provider_id,
            error=str(error) if error else None,
            meta={**(row["meta"] or {}), **detail} if detail else None,
            attempt=attempt,
        )
        if not ok:
            logger.warning("message %s: claim lost before recording %s", row["id"], status)

    def _fallback(self, row: dict[str, Any], error: Exception) -> None:
        if row["category"] != "statutory":
            return
        new_id = self._safely(self.hooks.fallback, row, str(error))
        if new_id:
            logger.info("statutory message %s failed on %s; re-sent as %s", row["id"], row["channel"], new_id)

    def _notify(self, message: OutgoingMessage, result: DeliveryResult | None, error: Exception | None) -> None:
        try:
            self.pm.hook.dispatch_delivery_attempted(message=message, result=result, error=error)
        except Exception:
            logger.exception("a dispatch_delivery_attempted hook failed for message %s", message.id)

    @staticmethod
    def _safely(fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception:
            logger.exception("delivery callback %s failed", getattr(fn, "__name__", fn))
            return None


def _current_retries() -> int:
    message = CurrentMessage.get_current_message()
    if message is None:
        return 0
    return int(message.options.get("retries", 0))


def lease_for(timeout: float) -> timedelta:
    """How long a claim may stay unfinished before the relay calls it stale."""
    return timedelta(seconds=timeout * 2 + 60)
