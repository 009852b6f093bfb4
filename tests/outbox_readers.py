"""Reading what the embedded channels wrote."""

from __future__ import annotations

import email
import json
from email import policy
from pathlib import Path

from pypdf import PdfReader


def read_eml(path: Path) -> email.message.EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=policy.default)


def eml_path(folder: Path, message_id: str) -> Path:
    """The .eml file of ``message_id`` in an outbox folder (named ``<type>-<lang>-<id>.eml``)."""
    [path] = folder.glob(f"*-{message_id}.eml")
    return path


def email_parts(message) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return text.replace("\r\n", "\n"), html.replace("\r\n", "\n")


def json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(str(path)).pages)
