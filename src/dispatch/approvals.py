"""Four-eyes approval of template versions, and translations that drift (SPEC §5).

A template *version* is a content hash of every file a message of one type,
language and channel renders from (:meth:`dispatch.render.Renderer.template_version`).
A translator *proposes* the current version (``dispatch templates propose``); a
second person *approves* it (``dispatch templates approve``) — never the person who
proposed that version. Both are append-only rows in the store
(:mod:`dispatch.store.approvals`).

Translations: approving a version in a language other than ``[templates]
source_language`` records the source language's version of the same type and
channel at that moment. When the source changes, the translation is ``stale``
until someone approves it again against the new source.

With ``[templates] require_approval = ["statutory", ...]``, a message of such a
category is refused unless its template version is ``approved``: ``decide()`` lists
reason ``template_unapproved``, ``dispatch()`` raises
:class:`~dispatch.errors.TemplateNotApproved` before anything is written, and a
campaign checks every language and channel once, before its first recipient.
Why four eyes: statutory notices must tell customers of changes "in a transparent and
comprehensible manner" (Directive (EU) 2019/944 Art 10(4), and the national acts that
transpose it; SPEC §4 ``notice_period``), so a change of their text is checked by a
second person before any customer gets it. The four-eyes rule itself is the company's
internal control (no act prescribes it); the record it leaves serves the accountability
of GDPR Art 5(2).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .config import TemplatesConfig
from .errors import ApprovalRefused, InputError, TemplateNotApproved

#: The states of a template version, from best to worst.
APPROVED, STALE, PROPOSED, UNAPPROVED = "approved", "stale", "proposed", "unapproved"
STATES = (APPROVED, STALE, PROPOSED, UNAPPROVED)
#: Seconds a looked-up state is trusted before the store is read again (approvals made by
#: another process are seen within this long; those made through this object at once).
CACHE_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class TemplateState:
    """Where one type × language × channel template version stands."""

    message_type: str
    language: str
    channel: str
    version: str
    state: str
    files: tuple[str, ...] = ()
    proposed_by: str | None = None
    proposed_at: datetime | None = None
    approved_by: str | None = None
    approved_at: datetime | None = None
    #: For a translation: the source version its latest approval was made from, and the source's now.
    source_language: str | None = None
    approved_source_version: str | None = None
    source_version: str | None = None
    comment: str | None = None
    history: tuple[dict[str, Any], ...] = field(default=(), compare=False)

    @property
    def ok(self) -> bool:
        return self.state == APPROVED

    @property
    def label(self) -> str:
        """``price_change/sv/email``."""
        return f"{self.message_type}/{self.language}/{self.channel}"

    def refusal(self) -> str:
        """One line saying why a message in this version may not go, and what to do."""
        where = f"template {self.label} version {self.version}"
        if self.state == STALE:
            return (
                f"{where} is a stale translation: {self.source_language} changed since it was approved "
                f"(was {self.approved_source_version}, now {self.source_version}); check it and approve it again"
            )
        if self.state == PROPOSED:
            return f"{where} is proposed but not approved: a second person must approve it"
        return f"{where} is not approved: propose it, and a second person approves it"


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{what} must be a non-empty name")
    value = " ".join(value.split())
    if len(value) > 128:
        raise InputError(f"{what} is longer than 128 characters")
    return value


class Approvals:
    """Versions, states, proposals and approvals of templates, over a renderer and a store.

    ``store(create)`` returns the store (``create=False``: only if one exists, for ``decide()``).
    """

    def __init__(
        self,
        config: TemplatesConfig,
        renderer: Any,
        channels: Mapping[str, Any],
        store: Callable[[bool], Any],
    ) -> None:
        self.config = config
        self.renderer = renderer
        self.channels = channels
        self._store = store
        self.required_categories = frozenset(config.require_approval)
        self.source_language = config.source_language
        self._cache: dict[tuple[str, str, str], tuple[float, TemplateState]] = {}
        self._lock = threading.Lock()

    # -- versions --------------------------------------------------------------------------

    def has_template(self, message_type: str, language: str, channel: str) -> bool:
        plugin = self.channels.get(channel)
        return plugin is not None and self.renderer.has_parts(message_type, plugin.parts, language)

    def version(self, message_type: str, language: str, channel: str, *, fresh: bool = False) -> str:
        """The current version of one type × language × channel."""
        parts = self.channels[channel].parts
        return self.renderer.template_version(message_type, channel, parts, language, fresh=fresh)

    def required(self, category: str) -> bool:
        """True when messages of ``category`` need an approved template version."""
        return category in self.required_categories

    # -- states ----------------------------------------------------------------------------

    def state(self, message_type: str, language: str, channel: str, *, fresh: bool = False) -> TemplateState:
        """The current version's state, read from the store now."""
        if not self.has_template(message_type, language, channel):
            raise InputError(f"there is no {channel} template for {message_type!r} in {language!r}")
        parts = self.channels[channel].parts
        version, files = self.renderer.template_version_files(message_type, channel, parts, language, fresh=fresh)
        source_version = None
        source = self.source_language
        if language != source and self.has_template(message_type, source, channel):
            source_version = self.version(message_type, source, channel, fresh=fresh)
        store = self._store(False)
        rows = store.template_approvals(message_type, language, channel) if store is not None else []
        return derive_state(message_type, language, channel, version, files, rows, source, source_version)

    def states(
        self,
        message_type: str,
        *,
        languages: Iterable[str] | None = None,
        channels: Iterable[str] | None = None,
        types: Any = None,
        fresh: bool = False,
    ) -> list[TemplateState]:
        """States of every language × channel of ``message_type`` that has a template."""
        channel_names = list(channels) if channels else [c for c in self._type_channels(message_type, types)]
        out = []
        for language in languages or self.renderer.languages():
            for channel in channel_names:
                if channel in self.channels and self.has_template(message_type, language, channel):
                    out.append(self.state(message_type, language, channel, fresh=fresh))
        return out

    def _type_channels(self, message_type: str, types: Any) -> Sequence[str]:
        if types is not None and message_type in types:
            return list(types.get(message_type).channels)
        return list(self.channels)

    # -- proposing and approving -----------------------------------------------------------

    def propose(
        self, message_type: str, language: str, channel: str, *, by: str, now: datetime, comment: str | None = None
    ) -> TemplateState:
        """Record that ``by`` proposes the current version (reads the files again first)."""
        by = _name(by, "--by")
        self.renderer.forget_versions()
        current = self.state(message_type, language, channel, fresh=True)
        self._store(True).add_template_approval(
            action="proposed",
            message_type=message_type,
            language=language,
            channel=channel,
            version=current.version,
            by=by,
            at=now,
            comment=comment,
        )
        return self._forget(message_type, language, channel)

    def approve(
        self, message_type: str, language: str, channel: str, *, by: str, now: datetime, comment: str | None = None
    ) -> TemplateState:
        """Approve the current version as ``by``: refused when ``by`` proposed it, or nobody did.

        A translation's approval records the source language's current version.
        """
        current = self.approvable(message_type, language, channel, by=by)
        by = _name(by, "--by")
        translated = language != self.source_language and current.source_version is not None
        self._store(True).add_template_approval(
            action="approved",
            message_type=message_type,
            language=language,
            channel=channel,
            version=current.version,
            by=by,
            at=now,
            comment=comment,
            source_language=self.source_language if translated else None,
            source_version=current.source_version if translated else None,
        )
        return self._forget(message_type, language, channel)

    def approvable(self, message_type: str, language: str, channel: str, *, by: str) -> TemplateState:
        """The current state, if ``by`` may approve it; else :class:`ApprovalRefused` saying why."""
        by = _name(by, "--by")
        self.renderer.forget_versions()
        current = self.state(message_type, language, channel, fresh=True)
        proposers = {
            row["by"].casefold()
            for row in current.history
            if row["action"] == "proposed" and row["version"] == current.version
        }
        if not proposers:
            raise ApprovalRefused(
                f"template {current.label} version {current.version} was not proposed: "
                "its author proposes it first (dispatch templates propose)"
            )
        if by.casefold() in proposers:  # four eyes: whoever proposed this version may not approve it
            raise ApprovalRefused(
                f"template {current.label} version {current.version}: the person who proposed it cannot "
                "approve it (four eyes); a second person must"
            )
        return current

    def _forget(self, message_type: str, language: str, channel: str) -> TemplateState:
        with self._lock:
            self._cache.clear()
        return self.state(message_type, language, channel)

    # -- the gate --------------------------------------------------------------------------

    def refusal(self, category: str, message_type: str, language: str, channel: str | None) -> TemplateState | None:
        """The state that forbids sending, or None when the message may go (cached briefly)."""
        if not self.required(category) or channel is None or not self.has_template(message_type, language, channel):
            return None
        key = (message_type, language, channel)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is None or cached[0] < now:
            cached = (now + CACHE_SECONDS, self.state(message_type, language, channel))
            with self._lock:
                self._cache[key] = cached
        state = cached[1]
        return None if state.ok else state

    def check_all(self, message_type: str, category: str, channels: Iterable[str]) -> None:
        """Raise :class:`TemplateNotApproved` naming every unapproved or stale language × channel
        of a type whose category needs approval (a campaign's check before its first recipient)."""
        if not self.required(category):
            return
        refused = [
            state
            for language in self.renderer.languages()
            for channel in channels
            if channel in self.channels and (state := self.refusal(category, message_type, language, channel))
        ]
        if refused:
            first = refused[0].refusal()
            more = f" (and {len(refused) - 1} more: {', '.join(s.label for s in refused[1:])})" if refused[1:] else ""
            raise TemplateNotApproved(first + more)


def derive_state(
    message_type: str,
    language: str,
    channel: str,
    version: str,
    files: tuple[str, ...],
    rows: Sequence[Mapping[str, Any]],
    source_language: str,
    source_version: str | None,
) -> TemplateState:
    """The state of ``version`` from the approval rows of its type × language × channel."""
    mine = [r for r in rows if r["version"] == version]
    proposals = [r for r in mine if r["action"] == "proposed"]
    approvals = [r for r in mine if r["action"] == "approved"]
    translated = language != source_language and source_version is not None
    valid = [a for a in approvals if not translated or a["source_version"] == source_version]
    if valid:
        state, approval = APPROVED, valid[-1]
    elif approvals:
        state, approval = STALE, approvals[-1]
    else:
        state, approval = (PROPOSED if proposals else UNAPPROVED), None
    proposal = proposals[-1] if proposals else None
    return TemplateState(
        message_type=message_type,
        language=language,
        channel=channel,
        version=version,
        state=state,
        files=files,
        proposed_by=proposal["by"] if proposal else None,
        proposed_at=proposal["at"] if proposal else None,
        approved_by=approval["by"] if approval else None,
        approved_at=approval["at"] if approval else None,
        source_language=source_language if translated else None,
        approved_source_version=approval["source_version"] if approval else None,
        source_version=source_version if translated else None,
        comment=(approval or proposal or {}).get("comment"),
        history=tuple(dict(r) for r in rows),
    )


__all__ = ["APPROVED", "PROPOSED", "STALE", "STATES", "UNAPPROVED", "Approvals", "TemplateState", "derive_state"]
