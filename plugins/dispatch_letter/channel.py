"""The letter channel: a print-ready PDF per letter, and one print batch per run.

Letters are typeset by Typst (see :mod:`dispatch_letter.layout`) on a few threads of
the worker process: Typst releases the GIL, so the shared delivery event loop keeps
serving the other channels, and no child process is started (a spawned process
re-runs the user's ``__main__``). A letter delivered twice (a redelivery after a
crash) replaces its PDF and appears once in the batch.
"""

from __future__ import annotations

import os
import re
import threading
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from babel import Locale

from dispatch.channels import Channel
from dispatch.clock import now_utc
from dispatch.errors import ConfigError, TransientDeliveryError
from dispatch.formatting import locale_for
from dispatch.models import DeliveryResult, OutgoingMessage

from .threads import Typesetters

#: A link printed as text must be short enough to type; longer ones are only in the QR code.
SHORT_URL = 40


@dataclass
class LetterSettings:
    """``[channels.letter]``: where PDFs and print batches go, and how they are made."""

    outbox: str | None = None
    #: "pdf": one PDF per batch, every letter starting on a new page; "zip": the letters' PDFs zipped.
    #: Both come with a manifest (CSV and JSON) beside them.
    batch_format: str = "pdf"
    #: Keep one PDF per letter in the outbox too (needed for "zip").
    letter_files: bool = True
    #: The place printed beside the date ("Helsinki, 1.5.2027"); default: the company's city.
    place: str | None = None
    #: PDF standard of letters and batches: "a-2u" (PDF/A-2u, archivable), "a-2b", "a-3u", or "" for plain PDF.
    pdf_standard: str = "a-2u"
    #: Tag each letter's PDF (a structure tree for screen readers); the print batch is not tagged.
    tagged_pdf: bool = True
    #: Threads that typeset letters (Typst runs without the GIL); 0: as many as the machine has cores, up to 4.
    render_threads: int = 0
    #: Digital mailboxes first (SPEC §6), per country in order, e.g. {SE = ["kivra"], NO = ["digipost"]};
    #: empty: every letter on paper. See dispatch.mailboxes.
    digital_first: dict[str, list[str]] = field(default_factory=dict)
    #: What one paper letter costs per country (postage and print, in the country's currency), for reports.
    postage: dict[str, float] = field(default_factory=dict)


_STANDARDS = ("", "a-1b", "a-2b", "a-2u", "a-2a", "a-3b", "a-3u", "a-3a", "a-4")


class LetterChannel(Channel):
    """Paper letters (SPEC §6): the address sits in the envelope window."""

    name = "letter"
    parts: ClassVar[dict[str, str]] = {"html": "letter.html"}
    settings_class = LetterSettings
    address_kind = "postal"
    #: The digital-first router (dispatch.mailboxes.DigitalFirst), set by the core when configured.
    digital: Any = None

    def __init__(self, settings: LetterSettings, context) -> None:
        super().__init__(settings, context)
        if settings.batch_format not in ("zip", "pdf"):
            raise ConfigError('channels.letter.batch_format must be "zip" or "pdf"')
        if settings.batch_format == "zip" and not settings.letter_files:
            raise ConfigError('channels.letter.batch_format "zip" needs letter_files = true')
        if settings.pdf_standard not in _STANDARDS:
            raise ConfigError(f"channels.letter.pdf_standard must be one of {', '.join(repr(s) for s in _STANDARDS)}")
        if settings.render_threads < 0:
            raise ConfigError("channels.letter.render_threads must be 0 or more")
        self.outbox = context.config.path(settings.outbox) if settings.outbox else context.outbox
        self._lock = threading.Lock()
        self._executor: Typesetters | None = None
        self._labels = None
        #: This run's letters by message id, in order (a redelivered letter is listed once).
        self._batch: dict[str, tuple[dict[str, Any], Any]] = {}

    # -- what is printed ----------------------------------------------------------------

    def labels(self):
        """The ``_layout/letter_*`` templates (loaded on first use)."""
        if self._labels is None:
            from .labels import Labels

            self._labels = Labels(self.context.config)
        return self._labels

    def head(self, message: OutgoingMessage, today: datetime) -> Any:
        """What surrounds the body: sender, return line, window address, date and place, opt-out QR code."""
        from .layout import LetterHead
        from .qr import qr_svg

        company = self.context.company_in(message.country, message.language)
        address = message.address or {}
        labels = self.labels()
        place = self.settings.place or _city(company.get("address") or [])
        info = labels.info(
            message.language,
            message.country,
            place=place,
            today=today,
            customer_number=message.recipient_id,
            message_id=message.id,
        )
        lines = [
            address.get("name", ""),
            address.get("street", ""),
            f"{address.get('postal_code', '')} {address.get('city', '')}".strip(),
        ]
        country = address.get("country")
        if country and country != message.country:  # abroad: the country's name, in capitals, last
            locale = locale_for(message.language, message.country, self.context.config.languages.locales)
            lines.append(_country_name(country, locale).upper())
        sender = [company.get("name", ""), *company.get("address", [])]
        contact = " · ".join(x for x in (company.get("phone"), company.get("email"), company.get("website")) if x)
        head = LetterHead(
            title=message.id,
            language=message.language,
            author=company.get("name", ""),
            sender_lines=[s for s in sender if s],
            return_line=", ".join(s for s in sender if s),
            recipient_lines=[line for line in lines if line],
            info_lines=info,
            footer=" · ".join(x for x in (company.get("name"), _business_id(company), contact) if x),
        )
        link = _opt_out_link(message)
        if link is not None:
            purpose, url = link
            head.qr_svg = qr_svg(url)
            head.qr_alt = url
            head.qr_caption = labels.opt_out(
                message.language,
                message.country,
                purpose=purpose,
                url=url if len(url) <= SHORT_URL else None,
                website=company.get("website", ""),
                phone=company.get("phone", ""),
            )
        return head

    def body(self, message: OutgoingMessage) -> str:
        """The letter's body as Typst markup; a link too long to type becomes a pointer to the QR code."""
        from .markup import html_to_typst

        replacements = {}
        link = _opt_out_link(message)
        if link is not None and len(link[1]) > SHORT_URL:
            replacements[link[1]] = self.labels().qr_note(message.language, message.country)
        return html_to_typst(message.parts.get("html", ""), replacements, keep_last=True)

    def preview_images(self, message: OutgoingMessage) -> list[bytes]:
        """The letter's pages as PNG images (96 ppi), set as they would be printed today."""
        from .layout import render_letter_png

        return render_letter_png(self.head(message, now_utc()), self.body(message))

    # -- delivery -----------------------------------------------------------------------

    async def deliver(self, message: OutgoingMessage) -> DeliveryResult:
        try:
            from .layout import render_letters  # noqa: F401 - needed on the typesetting thread
            from .qr import qr_svg  # noqa: F401 - needed on the typesetting thread
        except ImportError as exc:  # the letter extra is missing: keep the letter queued
            raise TransientDeliveryError(
                f"letters need typst and zxing-cpp: pip install 'dispatch[letter]' ({exc})"
            ) from exc
        today = now_utc()
        # Everything, labels and QR code included, is made on a typesetting thread: the event loop stays free.
        # Letters waiting at the same time are set together (see render_letters and Typesetters.run_together).
        typeset = await self._threads().run_together(lambda: (self.head(message, today), self.body(message)), self._set)
        tried: list[str] = []
        if self.digital is not None:  # SPEC §6: the same PDF to a digital mailbox first (dispatch.mailboxes)
            routed, tried = await self.digital.deliver(message, typeset.pdf, self.context.company_for(message.country))
            if routed is not None:
                return routed
        path = self.outbox / f"{message.id}.pdf"
        if self.settings.letter_files:
            self.outbox.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".pdf.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_bytes(typeset.pdf)
            os.replace(tmp, path)
        entry = {
            "message_id": message.id,
            "recipient_id": message.recipient_id,
            "pages": typeset.pages,
            "country": message.country,
            "postal_country": (message.address or {}).get("country") or message.country,
            "language": message.language,
            "type": message.message_type,
            "file": path.name if self.settings.letter_files else "",
        }
        self._add_to_batch(message.id, entry, typeset)
        detail: dict[str, Any] = {"pages": typeset.pages, **({"route": "paper", "tried": tried} if tried else {})}
        if self.settings.letter_files:
            detail["file"] = str(path)
        return DeliveryResult(provider_id=str(path) if self.settings.letter_files else message.id, detail=detail)

    def _set(self, letters: list[tuple[Any, str]]) -> list[Any]:
        """Typeset letters (head, body) together, on a typesetting thread."""
        from .layout import render_letters

        standard = self.settings.pdf_standard or None
        return render_letters(letters, standard=standard, tagged=self.settings.tagged_pdf)

    def _add_to_batch(self, message_id: str, entry: dict[str, Any], typeset: Any) -> None:
        """List a letter in this run's batch (a redelivered letter keeps its place, with its new pages).

        The letter's own PDF is not kept: the batch takes its pages from the PDF it was set in
        with other letters (:attr:`~dispatch_letter.layout.Typeset.part`), or sets it again from
        head and body when it was set alone.
        """
        with self._lock:
            self._batch[message_id] = (entry, typeset.without_pdf(keep_part=self.settings.batch_format == "pdf"))

    def _threads(self) -> Typesetters:
        """The threads that typeset letters, started on first use."""
        with self._lock:
            if self._executor is None:
                self._executor = Typesetters(self.settings.render_threads or min(4, os.cpu_count() or 1))
            return self._executor

    async def aclose(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.close()

    # -- the print batch ----------------------------------------------------------------

    def finish_batch(self) -> dict[str, Any] | None:
        """Write this run's print batch (one PDF, or a zip of the letters' PDFs) and its manifest."""
        from .layout import BATCH_PART, join_pieces, render_batch
        from .manifest import write_manifest

        with self._lock:
            batch, self._batch = list(self._batch.values()), {}
        if not batch:
            return None
        entries = [entry for entry, _ in batch]
        stamp = now_utc().strftime("%Y%m%dT%H%M%S")
        folder = self.outbox / "batches"
        folder.mkdir(parents=True, exist_ok=True)
        base = folder / f"batch-{stamp}-{entries[0]['message_id'][-6:]}"
        summary = {"letters": len(entries), "pages": sum(e["pages"] for e in entries), "created_at": stamp}
        csv_path, json_path = write_manifest(base, entries, summary)
        if self.settings.batch_format == "pdf":
            standard = self.settings.pdf_standard or None
            # Pieces in the manifest's order: (PDF or future of one, first page, pages). Letters set
            # alone are set again, together, in parts of BATCH_PART letters on the typesetting threads.
            pieces: list[tuple[Any, int, int]] = []
            alone: list[Any] = []

            def set_alone() -> None:
                if alone:
                    letters = list(alone)
                    future = self._threads().submit(lambda: render_batch(letters, standard=standard))
                    pieces.append((future, 0, sum(letter.pages for letter in letters)))
                    alone.clear()

            for _, letter in batch:
                if letter.part is None:
                    alone.append(letter)
                    if len(alone) == BATCH_PART:
                        set_alone()
                    continue
                set_alone()
                pieces.append((letter.part, letter.first_page, letter.pages))
            set_alone()
            target = base.with_suffix(".pdf")
            join_pieces([(p if isinstance(p, bytes) else p.result(), a, n) for p, a, n in pieces], target)
        else:
            target = base.with_suffix(".zip")
            tmp = target.with_suffix(f".zip.{os.getpid()}.tmp")
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:  # PDFs are compressed
                for entry in entries:
                    archive.write(self.outbox / entry["file"], entry["file"])
                archive.write(csv_path, "manifest.csv")
                archive.write(json_path, "manifest.json")
            os.replace(tmp, target)
        return {**summary, "file": str(target), "manifest": str(csv_path)}


def _opt_out_link(message: OutgoingMessage) -> tuple[str, str] | None:
    """("unsubscribe" | "preferences", url) for the QR code, or None."""
    if message.unsubscribe_url:
        return "unsubscribe", message.unsubscribe_url
    preferences = (message.meta or {}).get("preferences_url")
    if isinstance(preferences, str) and preferences:
        return "preferences", preferences
    return None


def _country_name(code: str, locale: str) -> str:
    try:
        return Locale.parse(locale).territories.get(code.upper(), code)
    except (ValueError, TypeError):
        return code


def _city(address_lines: list[str]) -> str:
    """The city of an address's last line: "00100 Helsinki", "111 22 Stockholm", "FI-00100 Helsinki"."""
    if not address_lines:
        return ""
    last = address_lines[-1].strip()
    return _POSTAL_CODE.sub("", last).strip() or last


_POSTAL_CODE = re.compile(r"^(?:[A-Z]{2}-)?\d[\d ]*\s")


def _business_id(company: Mapping[str, Any]) -> str:
    """The business id with what it is called in the letter's language: "Y-tunnus 1234567-8", "Org.nr 556677-8899"."""
    number = company.get("business_id") or ""
    label = company.get("business_id_label") or ""
    return f"{label} {number}".strip() if number else ""
