"""The letter channel: one print-ready PDF per letter, and a print batch per run."""

from __future__ import annotations

import csv
import json
import os
import threading
import zipfile
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from dispatch.channels import Channel
from dispatch.errors import TransientDeliveryError
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


class LetterChannel(Channel):
    """Paper letters (SPEC §6): the address sits in the envelope window."""

    name = "letter"
    parts: ClassVar[dict[str, str]] = {"html": "letter.html"}
    settings_class = LetterSettings
    address_kind = "postal"

    def __init__(self, settings: LetterSettings, context) -> None:
        super().__init__(settings, context)
        if settings.batch_format not in ("zip", "pdf"):
            from dispatch.errors import ConfigError

            raise ConfigError("channels.letter.batch_format must be \"zip\" or \"pdf\"")
        self.outbox = context.config.path(settings.outbox) if settings.outbox else context.outbox
        self._lock = threading.Lock()
        self._batch: list[dict[str, Any]] = []

    def head(self, message: OutgoingMessage, today: datetime) -> Any:
        from .layout import LetterHead

        company = self.context.company_for(message.country)
        address = message.address or {}
        formatter = Formatter(locale_for(message.language, message.country,
                                         self.context.config.languages.locales), message.country)
        place = self.settings.place or _city(company.get("address") or [])
        date_line = f"{place}, {formatter.date(today)}" if place else formatter.date(today)
        lines = [address.get("name", ""), address.get("street", ""),
                 f"{address.get('postal_code', '')} {address.get('city', '')}".strip()]
        if address.get("country") and address.get("country") != message.country:
            lines.append(address["country"])
        sender = [company.get("name", ""), *company.get("address", [])]
        contact = " · ".join(x for x in (company.get("phone"), company.get("email"), company.get("website")) if x)
        return LetterHead(
            sender_lines=[s for s in sender if s],
            return_line=", ".join(s for s in sender if s),
            recipient_lines=[line for line in lines if line],
            info_lines=[date_line, message.recipient_id],
            footer=" · ".join(x for x in (company.get("name"), company.get("business_id"), contact) if x),
        )

    async def deliver(self, message: OutgoingMessage) -> DeliveryResult:
        try:
            from .layout import render_letter
        except ImportError as exc:  # the letter extra is missing: keep the letter queued
            raise TransientDeliveryError(f"letters need fpdf2: pip install 'dispatch[letter]' ({exc})") from exc
        pdf, pages = render_letter(self.head(message, now_utc()), message.parts.get("html", ""))
        self.outbox.mkdir(parents=True, exist_ok=True)
        path = self.outbox / f"{message.id}.pdf"
        tmp = path.with_suffix(".pdf.tmp")
        tmp.write_bytes(pdf)
        os.replace(tmp, path)
        entry = {
            "message_id": message.id,
            "recipient_id": message.recipient_id,
            "pages": pages,
            "country": message.country,
            "language": message.language,
            "type": message.message_type,
            "file": path.name,
        }
        with self._lock:
            self._batch.append(entry)
        return DeliveryResult(provider_id=str(path), detail={"pages": pages, "file": str(path)})

    def finish_batch(self) -> dict[str, Any] | None:
        """Write this run's print batch: the PDFs (zip or merged) and a CSV/JSON manifest."""
        with self._lock:
            batch, self._batch = self._batch, []
        if not batch:
            return None
        stamp = now_utc().strftime("%Y%m%dT%H%M%S")
        folder = self.outbox / "batches"
        folder.mkdir(parents=True, exist_ok=True)
        base = folder / f"batch-{stamp}-{batch[0]['message_id'][-6:]}"
        columns = ["message_id", "recipient_id", "pages", "country", "language", "type", "file"]
        with open(f"{base}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(batch)
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


def _city(address_lines: list[str]) -> str:
    if not address_lines:
        return ""
    last = address_lines[-1].strip()
    parts = last.split(" ", 1)
    return parts[1] if len(parts) == 2 and parts[0].replace("-", "").isdigit() else last
