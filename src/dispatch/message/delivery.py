"""The worker side: claim a batch of stored messages, send them concurrently, record the outcomes.

:class:`Deliverer` is what the queue's actors call with a list of message ids. Per
batch it makes one claim transaction (a compare-and-set, so a message handed over
twice is sent once), hands every message to its channel at once on the shared
event loop (connection pools do the rest), and records every outcome in one
transaction. Errors are sorted by kind:

- :class:`~dispatch.errors.TransientDeliveryError`, timeouts and network errors → tried
  again later (:class:`~dispatch.lifecycle.RetryPolicy`), ``dead`` when retries run out;
- :class:`~dispatch.errors.PermanentDeliveryError` → ``failed`` at once (a statutory
  message then falls back to its next channel);
- anything else is a bug in the channel → ``failed``, its traceback logged once.

What a provider accepted is appended to the process's accepted-outcome log at once
(:class:`~dispatch.journal.AcceptedLog`: it survives a SIGKILL), then written to the
store with whatever else finished within :data:`GROUP_WAIT`. If the store cannot take
the outcomes, they are kept in the :class:`OutcomeJournal` and written when it is back:
what a provider accepted is never sent again.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pluggy
from dramatiq import Retry

from ..channels import Channel
from ..clock import now_utc
from ..errors import PermanentDeliveryError, RecipientOptedOut, TransientDeliveryError
from ..lifecycle import Lifecycle, RetryPolicy, Status, Transition
from ..metrics import observe_latency
from ..models import DeliveryResult, OutgoingMessage
from ..queue import AsyncRunner, RateLimits
from ..store import Claimed, Outcome, Store, is_outage, worker_identity
from .group_commit import GroupCommit
from .journal import OutcomeJournal, StoreHealth

logger = logging.getLogger("dispatch.delivery")

#: Seconds the threads of a worker gather finished sends before writing their outcomes, and the
#: most outcomes per write (:class:`~dispatch.group_commit.GroupCommit`). A longer wait means fewer,
#: larger transactions; it no longer widens what a SIGKILL can double, since every accepted send is
#: in the accepted-outcome log before it waits here.
GROUP_WAIT = 0.03
GROUP_MAX = 512
#: Exceptions a channel may let through that still mean "the network, try again".
NETWORK_ERRORS: tuple[type[BaseException], ...] = (OSError, TimeoutError, asyncio.TimeoutError, ConnectionError)


@dataclass
class DeliveryHooks:
    """What a worker asks of the rest of dispatch when a delivery does not simply succeed."""

    #: A message failed for good: fall back to its type's next channel if it is statutory.
    failed: Callable[[Claimed, Transition, Exception], None]
    #: The provider says the person opted out: record it in the consent ledger.
    opted_out: Callable[[Claimed, RecipientOptedOut], None]
    #: The unsubscribe URL of a message (None for messages without one).
    unsubscribe_url: Callable[[Claimed], str | None]
    #: Hand messages to the queue again: (queue, message id, delay ms).
    requeue: Callable[[list[tuple[str, str, int | None]]], None]


class Deliverer:
    """Delivers batches of messages by id (the function behind every queue actor)."""

    def __init__(
        self,
        store: Callable[[], Store],
        channels: Mapping[str, Channel],
        runner: Callable[[], AsyncRunner],
        pm: pluggy.PluginManager,
        lifecycle: Lifecycle,
        hooks: DeliveryHooks,
        journal: OutcomeJournal,
        health: StoreHealth,
        *,
        retry: RetryPolicy,
        lease: timedelta,
        timeout: float = 300.0,
        rate_limits: RateLimits | None = None,
    ) -> None:
        self._store = store
        self.channels = channels
        self._runner = runner
        self.pm = pm
        self.lifecycle = lifecycle
        self.hooks = hooks
        self.journal = journal
        self.health = health
        self.retry = retry
        self.lease = lease
        self.timeout = timeout
        self.rate_limits = rate_limits
        self.worker = worker_identity()
        #: Claims this process holds now (the heartbeat renews their leases while this is non-empty).
        self.holding = 0
        self._holding_lock = threading.Lock()
        #: Outcomes of all this process's delivery threads, written together.
        self.outcomes = GroupCommit(self._record, wait=GROUP_WAIT, limit=GROUP_MAX)

    def __call__(self, message_ids: Sequence[str] | str) -> None:
        """The queue actor. If the store cannot be reached, the batch comes back later (quietly)."""
        ids = [message_ids] if isinstance(message_ids, str) else list(message_ids)
        try:
            self.deliver(ids)
        except Exception as exc:
            if not is_outage(exc):
                raise
            self.health.failed(exc, "claiming messages")
            raise Retry(delay=5_000) from None

    def deliver(self, message_ids: Sequence[str]) -> dict[str, Status]:
        """Deliver a batch; returns the state each claimed message ended in (others were not ours).

        Outcomes are recorded as they come in (whatever finished while the last write ran goes
        in the next one), so a crash can leave only a handful of sent-but-unrecorded messages.
        """
        store = self._store()
        if len(self.journal):
            self.journal.flush(store, self.lifecycle)
        started = now_utc()
        claimed = self.lifecycle.claim(store, message_ids, self.worker, started, self.lease)
        self.health.ok()
        if not claimed:
            return {}
        try:
            runner = self._runner()
        except Exception as exc:  # nothing was handed to a channel: the claims go straight back
            self._give_back(claimed, started, exc)
            raise
        ended: dict[str, Status] = {}
        traced: set[str] = set()  # channels whose bug was logged with its traceback in this batch
        with self._holding_lock:
            self.holding += 1
        try:
            for finished in self._send(claimed, runner):
                outcomes, errors = self._classify(finished, traced)
                self.outcomes.write(outcomes, gather=self.holding > 1)
                self._after(claimed, outcomes, errors)
                ended.update((o.message_id, o.target) for o in outcomes)
        finally:
            with self._holding_lock:
                self.holding -= 1
        return ended

    # -- sending ---------------------------------------------------------------------------

    def _send(
        self, claimed: list[Claimed], runner: AsyncRunner
    ) -> Iterator[list[tuple[Claimed, OutgoingMessage | None, Any, datetime]]]:
        """Hand every claimed message to its channel; yield results in groups as they come in."""
        work: list[tuple[Claimed, Channel, OutgoingMessage]] = []
        missing = []
        for row in claimed:
            channel = self.channels.get(row.channel)
            if channel is None:
                error = PermanentDeliveryError(f"no channel {row.channel!r} is installed", code="no_channel")
                missing.append((row, None, error, now_utc()))
            else:
                work.append((row, channel, self._outgoing(row)))
        if missing:
            yield missing
        if not work:
            return
        limited = self.rate_limits is not None and self.rate_limits.limiters
        if limited:  # one at a time, each in its own rate-limit slot
            for row, channel, message in work:
                self.rate_limits.wait(row.channel)  # type: ignore[union-attr]
                begun = now_utc()
                result = runner.run(self._one(channel, message), timeout=self.timeout + 30)
                yield [(row, message, result, begun)]
            return
        results: queue.SimpleQueue = queue.SimpleQueue()
        begun = now_utc()

        async def run_all() -> None:
            async def one(index: int, channel: Channel, message: OutgoingMessage) -> None:
                results.put((index, await self._one(channel, message)))

            await asyncio.gather(*(one(i, channel, message) for i, (_row, channel, message) in enumerate(work)))

        future = runner.submit(run_all())
        remaining = len(work)
        deadline = time.monotonic() + self.timeout + 30
        while remaining:
            try:
                first = results.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:  # the loop is stuck: treat what is left as transient failures
                future.cancel()
                break
            group = [first]
            # Whatever else has finished goes along; the group commit gathers the other threads'.
            while len(group) < remaining:
                try:
                    group.append(results.get_nowait())
                except queue.Empty:
                    break
            remaining -= len(group)
            yield [(work[i][0], work[i][2], result, begun) for i, result in group]
        if remaining:
            done = set()
            while True:
                try:
                    done.add(results.get_nowait()[0])
                except queue.Empty:
                    break
            stuck = TransientDeliveryError("the delivery loop did not answer in time", code="timeout")
            yield [(work[i][0], work[i][2], stuck, begun) for i in range(len(work)) if i not in done]

    async def _one(self, channel: Channel, message: OutgoingMessage) -> Any:
        started = now_utc()
        try:
            async with asyncio.timeout(self.timeout):  # no task of its own, unlike wait_for
                result = await channel.deliver(message)
            if isinstance(result, DeliveryResult):  # on disk the moment it is known (survives a SIGKILL)
                self.journal.accepted.note(self.worker, [self._accepted(message, result, started)])
            return result
        except TimeoutError:
            return TransientDeliveryError(f"no answer within {self.timeout:.0f} s", code="timeout")
        except Exception as exc:
            return exc

    def _classify(self, finished, traced: set[str]) -> tuple[list[Outcome], dict[str, Exception]]:
        """Outcomes (and errors) of finished sends, by kind of error (see the module docstring).

        A channel's bug is logged with its traceback once per batch (``traced`` holds the channels
        logged so far), however the batch's results come in.
        """
        outcomes: list[Outcome] = []
        errors: dict[str, Exception] = {}
        for row, message, result, begun in finished:
            if isinstance(result, DeliveryResult):
                target = Status.DELIVERED if result.status == Status.DELIVERED else Status.SENT
                detail = dict(result.detail)  # kept with the attempt; the message keeps what was known before
                outcomes.append(
                    self._outcome(
                        row,
                        target,
                        begun,
                        provider_id=result.provider_id,
                        detail=detail,
                        cause="provider accepted" if target == Status.SENT else "provider confirmed",
                    )
                )
                if message is not None:
                    self._notify(message, result, None)
                continue
            error = result
            errors[row.id] = error
            channel = self.channels.get(row.channel)
            permanent = (PermanentDeliveryError, *getattr(channel, "permanent_errors", ()))
            transient = (TransientDeliveryError, *NETWORK_ERRORS, *getattr(channel, "transient_errors", ()))
            if isinstance(error, permanent):
                target = Status.DEAD if message is None else Status.FAILED
                outcomes.append(self._outcome(row, target, begun, error=error, cause=_cause(error)))
            elif isinstance(error, transient):
                target, retry_at = self.retry.after_transient(row.attempts, now_utc())
                outcomes.append(self._outcome(row, target, begun, error=error, cause=_cause(error), retry_at=retry_at))
                if target == Status.DEAD:
                    logger.warning("message %s dead after %d attempts (%s)", row.id, row.attempts, _code(error))
            else:  # a bug in the channel: retrying would only repeat it
                if row.channel not in traced:
                    logger.error("channel %s failed on message %s", row.channel, row.id, exc_info=error)
                    traced.add(row.channel)
                else:
                    logger.error("channel %s failed on message %s: %s", row.channel, row.id, _code(error))
                outcomes.append(self._outcome(row, Status.FAILED, begun, error=error, cause=f"bug: {_cause(error)}"))
            if message is not None:
                self._notify(message, None, error)
        return outcomes, errors

    # -- recording -------------------------------------------------------------------------

    def _record(self, outcomes: list[Outcome]) -> None:
        """Write outcomes (of any of this process's threads); kept in the journal while the store is down."""
        try:
            self.lifecycle.finish(self._store(), outcomes, self.worker)
        except Exception as exc:
            if not is_outage(exc):
                raise
            self.health.failed(exc, "recording delivery outcomes")
            self.journal.keep(self.worker, outcomes)
            return
        self.journal.accepted.committed(outcomes)

    def _give_back(self, claimed: list[Claimed], started: datetime, error: Exception) -> None:
        """Claims the worker cannot serve (before any was sent) go back to the queue, as a transient failure.

        Otherwise they would stay ``sending`` while this process lives: its heartbeat renews every
        lease it holds.
        """
        outcomes = []
        for row in claimed:
            target, retry_at = self.retry.after_transient(row.attempts, now_utc())
            cause = f"worker error: {_cause(error)}"
            outcomes.append(self._outcome(row, target, started, error=error, cause=cause, retry_at=retry_at))
        try:
            self._record(outcomes)
            self._after(claimed, outcomes, {row.id: error for row in claimed})
        except Exception:
            logger.exception("could not give back %d claim(s) after a worker error", len(claimed))

    def _after(self, claimed: list[Claimed], outcomes: list[Outcome], errors: dict[str, Exception]) -> None:
        rows = {row.id: row for row in claimed}
        retries: list[tuple[str, str, int | None]] = []
        now = now_utc()
        for outcome in outcomes:
            row = rows[outcome.message_id]
            if outcome.target in (Status.SENT, Status.DELIVERED):
                observe_latency(row.channel, max(row.send_after or row.decided_at, row.decided_at), outcome.finished_at)
            elif outcome.target == Status.QUEUED and row.queue:
                delay = int((outcome.retry_at - now).total_seconds() * 1000) if outcome.retry_at else None
                retries.append((row.queue, row.id, delay if delay and delay > 0 else None))
            elif outcome.target == Status.FAILED:
                error = errors[row.id]
                if isinstance(error, RecipientOptedOut):
                    _safely(self.hooks.opted_out, row, error)
                transition = Transition(row.id, Status.SENDING, Status.FAILED, outcome.finished_at, outcome.cause)
                _safely(self.hooks.failed, row, transition, error)
        if retries:
            _safely(self.hooks.requeue, retries)

    # -- helpers ---------------------------------------------------------------------------

    def _outcome(
        self,
        row: Claimed,
        target: Status,
        started,
        *,
        cause: str,
        error: Exception | None = None,
        provider_id: str | None = None,
        meta: dict[str, Any] | None = None,
        detail: dict[str, Any] | None = None,
        retry_at=None,
    ) -> Outcome:
        detail = dict(detail or {})
        code = getattr(error, "code", None)
        if code:
            detail["code"] = code
        return Outcome(
            message_id=row.id,
            attempt=row.attempts,
            target=target,
            started_at=started,
            finished_at=now_utc(),
            cause=cause,
            channel=row.channel,
            message_type=row.message_type,
            recipient_id=row.recipient_id,
            provider_id=provider_id or getattr(error, "provider_id", None),
            error=_cause(error) if error is not None else None,
            meta=meta,
            detail=detail,
            retry_at=retry_at,
            template_version=row.template_version,
        )

    @staticmethod
    def _accepted(message: OutgoingMessage, result: DeliveryResult, started: datetime) -> Outcome:
        """The outcome of a send the provider took, as the accepted-outcome log keeps it."""
        delivered = result.status == Status.DELIVERED
        return Outcome(
            message_id=message.id,
            attempt=message.attempt,
            target=Status.DELIVERED if delivered else Status.SENT,
            started_at=started,
            finished_at=now_utc(),
            cause="provider confirmed" if delivered else "provider accepted",
            channel=message.channel,
            message_type=message.message_type,
            recipient_id=message.recipient_id,
            provider_id=result.provider_id,
            detail=dict(result.detail),
            template_version=message.template_version,
        )

    def _outgoing(self, row: Claimed) -> OutgoingMessage:
        return OutgoingMessage(
            id=row.id,
            message_type=row.message_type,
            category=row.category,
            channel=row.channel,
            language=row.language,
            locale=row.locale or row.language,
            country=row.country,
            recipient_id=row.recipient_id,
            address=row.address,
            parts=row.content.get("parts", {}),
            unsubscribe_url=self.hooks.unsubscribe_url(row),
            send_after=row.send_after,
            deadline=row.deadline,
            attempt=row.attempts,
            meta=dict(row.meta),
            template_version=row.template_version,
        )

    def _notify(self, message: OutgoingMessage, result: DeliveryResult | None, error: Exception | None) -> None:
        try:
            self.pm.hook.dispatch_delivery_attempted(message=message, result=result, error=error)
        except Exception:
            logger.exception("a dispatch_delivery_attempted hook failed for message %s", message.id)


def _cause(error: BaseException | None) -> str:
    if error is None:
        return ""
    code = getattr(error, "code", None)
    text = str(error).strip().splitlines()
    text = text[0] if text else type(error).__name__
    name = type(error).__name__
    return (f"{name} {code}: {text}" if code else f"{name}: {text}")[:500]


def _code(error: BaseException) -> str:
    """What a log line may say of an error: its kind and code, never its text (it may hold an address)."""
    code = getattr(error, "code", None)
    return f"{type(error).__name__} {code}" if code else type(error).__name__


def _safely(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception:
        logger.exception("delivery callback %s failed", getattr(fn, "__name__", fn))
        return None
