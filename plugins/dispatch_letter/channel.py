"""The letter channel: one print-ready PDF per letter, and a print batch per run.

The PDF is rendered in a worker thread (fpdf2 takes tens of milliseconds per
letter), so the shared delivery event loop keeps serving the other channels. A
letter delivered twice (a redelivery after a crash) replaces its PDF and appears
once in the batch.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import re
import threading
import zipfile
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from babel import Locale

from dispatch.channels import Channel
from dispatch.csv_safety import safe_row
from dispatch.errors import ConfigError, TransientDeliveryError
from dispatch.formatting import Formatter, locale_for
from dispatch.models import DeliveryResult, OutgoingMessage
from dispatch.store import now_utc


@dataclass
class LetterSettings:
    """``[channels.letter]``: where PDFs and print batches go."""

    outbox: str | None = None
    #: "zip": a zip of PDFs with manifest.csv/.json per batch; "pdf": one merged PDF plus manifests.
    batch_format: str = "zip"
    #: The place printed beside the date ("Helsinki, 1.5.2027"); default: the company's city.
    place: str | None = None
    #: Processes that draw PDFs beside the worker (drawing is CPU-bound Python, so threads
    #: cannot share it out); 0 draws them in the worker process itself.
    render_processes: int = 1


class LetterChannel(Channel):
    """Paper letters (SPEC §6): the address sits in the envelope window."""

    name = "letter"
    parts: ClassVar[dict[str, str]] = {"html": "letter.html"}
    settings_class = LetterSettings
    address_kind = "postal"

    def __init__(self, settings: LetterSettings, context) -> None:
        super().__init__(settings, context)
        if settings.batch_format not in ("zip", "pdf"):
            raise ConfigError('channels.letter.batch_format must be "zip" or "pdf"')
        if settings.render_processes < 0:
            raise ConfigError("channels.letter.render_processes must be 0 or more")
        self.outbox = context.config.path(settings.outbox) if settings.outbox else context.outbox
        self._lock = threading.Lock()
        #: This run's letters by message id (a redelivered letter is listed once).
        self._batch: dict[str, dict[str, Any]] = {}

    def head(self, message: OutgoingMessage, today: datetime) -> Any:
        """What surrounds the body: sender, return line, window address, date and place, reference."""
        from .layout import LetterHead

        company = self.context.company_for(message.country)
        address = message.address or {}
        locale = locale_for(message.language, message.country, self.context.config.languages.locales)
        formatter = Formatter(locale, message.country)  # dates in the recipient's country's time zone
        place = self.settings.place or _city(company.get("address") or [])
        # Finnish letters date "1.3.2027"; Swedish and English spell the month out.
        written = formatter.date(today, "medium" if message.language == "fi" else "long")
        date_line = f"{place}, {written}" if place else written
        lines = [
            address.get("name", ""),
            address.get("street", ""),
            f"{address.get('postal_code', '')} {address.get('city', '')}".strip(),
        ]
        country = address.get("country")
        if country and country != message.country:  # abroad: the country's name, in capitals, last
            lines.append(_country_name(country, locale).upper())
        sender = [company.get("name", ""), *company.get("address", [])]
        contact = " · ".join(x for x in (company.get("phone"), company.get("email"), company.get("website")) if x)
        return LetterHead(
            sender_lines=[s for s in sender if s],
            return_line=", ".join(s for s in sender if s),
            recipient_lines=[line for line in lines if line],
            info_lines=[
                date_line,
                f"{CUSTOMER_NUMBER.get(message.language, 'Customer number')}: {message.recipient_id}",
            ],
            footer=" · ".join(x for x in (company.get("name"), company.get("business_id"), contact) if x),
        )

    async def deliver(self, message: OutgoingMessage) -> DeliveryResult:
        try:
            from .layout import render_letter
        except ImportError as exc:  # the letter extra is missing: keep the letter queued
            raise TransientDeliveryError(f"letters need fpdf2: pip install 'dispatch[letter]' ({exc})") from exc
        head = self.head(message, now_utc())
        pool = self._pool()
        loop = asyncio.get_running_loop()
        if pool is None:
            pdf, pages = await asyncio.to_thread(render_letter, head, message.parts.get("html", ""))
        else:
            pdf, pages = await loop.run_in_executor(pool, render_letter, head, message.parts.get("html", ""))
        self.outbox.mkdir(parents=True, exist_ok=True)
        path = self.outbox / f"{message.id}.pdf"
        tmp = path.with_suffix(f".pdf.{os.getpid()}.tmp")
        tmp.write_bytes(pdf)
        os.replace(tmp, path)
        entry = {
            "message_id": message.id,
            "recipient_id": message.recipient_id,
            "pages": pages,
            "country": message.country,
            "postal_country": (message.address or {}).get("country") or message.country,
            "language": message.language,
            "type": message.message_type,
            "file": path.name,
        }
        with self._lock:
            self._batch[message.id] = entry
        return DeliveryResult(provider_id=str(path), detail={"pages": pages, "file": str(path)})

    def _pool(self):
        """The process pool that draws PDFs, started on first use (spawned: no fork of a threaded worker)."""
        if self.settings.render_processes <= 0:
            return None
        with self._lock:
            if getattr(self, "_executor", None) is None:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                self._executor = ProcessPoolExecutor(
                    max_workers=self.settings.render_processes,
                    mp_context=multiprocessing.get_context("spawn"),
                )
            return self._executor

    async def aclose(self) -> None:
        executor = getattr(self, "_executor", None)
        if executor is not None:
            self._executor = None
            await asyncio.to_thread(executor.shutdown)

    def finish_batch(self) -> dict[str, Any] | None:
        """Write this run's print batch: the PDFs (zip or merged) and a CSV/JSON manifest."""
        with self._lock:
            batch, self._batch = list(self._batch.values()), {}
        if not batch:
            return None
        stamp = now_utc().strftime("%Y%m%dT%H%M%S")
        folder = self.outbox / "batches"
        folder.mkdir(parents=True, exist_ok=True)
        base = folder / f"batch-{stamp}-{batch[0]['message_id'][-6:]}"
        columns = ["message_id", "recipient_id", "pages", "country", "postal_country", "language", "type", "file"]
        with open(f"{base}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(safe_row(entry) for entry in batch)  # no spreadsheet formulas
        summary = {"letters": len(batch), "pages": sum(e["pages"] for e in batch), "created_at": stamp}
        with open(f"{base}.json", "w", encoding="utf-8") as handle:
            json.dump({"batch": summary, "letters": batch}, handle, ensure_ascii=False, indent=2)
        if self.settings.batch_format == "zip":
            target = f"{base}.zip"
            with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for entry in batch:
                    archive.write(self.outbox / entry["file"], entry["file"])
                archive.write(f"{base}.csv", "manifest.csv")
                archive.write(f"{base}.json", "manifest.json")
        else:
            from pypdf import PdfWriter

            writer = PdfWriter()
            for entry in batch:
                writer.append(str(self.outbox / entry["file"]))
            target = f"{base}.pdf"
            with open(target, "wb") as handle:
                writer.write(handle)
        return {**summary, "file": target}


#: The label of the customer number in the information block.
CUSTOMER_NUMBER = {"fi": "Asiakasnumero", "sv": "Kundnummer", "nb": "Kundenummer", "en": "Customer number"}


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
