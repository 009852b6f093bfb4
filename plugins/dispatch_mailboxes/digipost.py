"""Digipost (Norway): the REST API v8 as Digipost documents it and its Java client implements it.

Sources: Digipost's API reference (github.com/digipost/digipost-docs,
``source/api/api-reference.rst``) and the official Java client
(github.com/digipost/digipost-api-client-java: ``ApiServiceImpl``,
``RequestMessageSignatureUtil``, ``CryptoUtil``, ``Headers``, ``MediaTypes``,
``ErrorCode``, ``src/main/resources/xsd/api_v8.xsd``):

- every request is signed: headers ``Date`` (RFC 1123), ``X-Digipost-UserId`` (the sender's
  or broker's account id) and, with a body, ``X-Content-SHA256`` (base64 SHA-256 of the
  body); ``X-Digipost-Signature`` is base64 of an RSA signature, SHA256withRSA, with the
  enterprise certificate's private key, over ``METHOD\\n`` + lower-cased path + ``\\n`` + each
  of ``content-md5``, ``date``, ``x-content-sha256``, ``x-digipost-userid`` present, sorted,
  as ``name: value\\n`` + the lower-cased query string + ``\\n``;
- media type ``application/vnd.digipost-v8+xml``, namespace ``http://api.digipost.no/schema/v8``;
- eligibility: ``POST /identification`` with ``<identification><personal-identification-number>``
  answers ``<identification-result><result>`` ``DIGIPOST`` (has a mailbox), ``IDENTIFIED``
  (a person Digipost knows, without a mailbox), ``UNIDENTIFIED`` or ``INVALID``. Digipost
  documents no bulk identification, so people are looked up one at a time (cached);
- sending: ``POST /messages`` as ``multipart/vnd.digipost-v8+xml``: a ``message`` part
  (message id, recipient by fødselsnummer, primary document with uuid, subject and
  ``file-type`` ``pdf``) and the PDF as a part whose file name is the document's uuid.
  The answer ``<message-delivery>`` carries ``status``: ``DELIVERED`` (in the mailbox),
  ``DELIVERED_TO_PRINT`` or ``NOT_COMPLETE``;
- errors: ``<error><error-code>`` (e.g. ``UNKNOWN_RECIPIENT``, ``DUPLICATE_MESSAGE``)
  ``<error-message>`` ``<error-type>``;
- status: ``GET /documents/{sender}/{uuid}/status`` answers ``<document-status status=
  "DELIVERED|NOT_DELIVERED">`` (:meth:`DigipostChannel.document_status`).

The message id and the document uuid derive from dispatch's message id, so a letter sent
twice (a redelivery after a crash) is Digipost's ``DUPLICATE_MESSAGE`` /
``DIGIPOST_MESSAGE_ALREADY_DELIVERED``, which counts as delivered. Not built: the entry
point's link discovery (the paths above are the ones the entry point names), Digipost's
signature on responses (checked by the Java client against Digipost's certificate),
print fallback through Digipost (dispatch prints what no mailbox takes itself).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any, ClassVar
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

from dispatch.errors import ConfigError, TransientDeliveryError
from dispatch.lifecycle import Status
from dispatch.mailboxes import MailboxChannel, MailboxLetter, MailboxRejected
from dispatch.models import DeliveryResult

from .http import Session, retry_later

logger = logging.getLogger("dispatch.digipost")

MEDIA_TYPE = "application/vnd.digipost-v8+xml"
MULTIPART_SUBTYPE = "vnd.digipost-v8+xml"
NS = "http://api.digipost.no/schema/v8"
#: Error codes that mean "this person cannot get it in Digipost": paper instead.
NO_MAILBOX_CODES = frozenset({"UNKNOWN_RECIPIENT", "MISSING_RECIPIENT", "ACCOUNT_DEACTIVATED", "UNKNOWN_USER"})
#: Error codes of a repeated send of the same message: it was delivered the first time.
ALREADY_SENT = frozenset({"DUPLICATE_MESSAGE", "DIGIPOST_MESSAGE_ALREADY_DELIVERED", "MESSAGE_ALREADY_SENT"})
_SIGNED_HEADERS = ("content-md5", "date", "x-content-sha256", "x-digipost-userid")
#: Namespace of the uuids dispatch gives Digipost documents (uuid5 of the message id).
_UUIDS = uuid.UUID("5b0c2f5e-3c59-4d07-9f39-2a1d8f6d0c1e")


@dataclass
class DigipostSettings:
    """``[channels.digipost]``: no ``sender_id`` means Digipost is not used."""

    base_url: str = "https://api.digipost.no"
    #: The sender's (or broker's) Digipost account id: X-Digipost-UserId.
    sender_id: int | None = None
    #: The enterprise certificate's private key as a PEM file (export it from the .p12).
    private_key: str | None = None
    #: Or DIGIPOST_KEY_PASSWORD in the environment.
    private_key_password: str | None = None
    eligibility_ttl_hours: float = 24.0
    timeout: float = 30.0


class DigipostChannel(MailboxChannel):
    """Letters to Digipost mailboxes (see the module docstring)."""

    name = "digipost"
    settings_class = DigipostSettings
    countries: ClassVar[tuple[str, ...]] = ("NO",)

    def __init__(self, settings: DigipostSettings, context) -> None:
        super().__init__(settings, context)
        if settings.sender_id is not None and not settings.private_key:
            raise ConfigError("channels.digipost needs private_key (the enterprise certificate's key, PEM)")
        if settings.eligibility_ttl_hours <= 0:
            raise ConfigError("channels.digipost.eligibility_ttl_hours must be more than 0")
        self._http = Session(settings.timeout)
        self._key: Any = None

    @property
    def configured(self) -> bool:
        return self.settings.sender_id is not None

    async def lookup(self, national_ids: Sequence[str]) -> dict[str, bool]:
        out = {}
        for nid in national_ids:
            number = f"<personal-identification-number>{escape(nid)}</personal-identification-number>"
            body = f'<identification xmlns="{NS}">{number}</identification>'
            status, _headers, answer = await self._request("POST", "/identification", body.encode(), MEDIA_TYPE)
            if status >= 300:
                raise _error(status, answer)
            out[nid] = _text(answer, "result") == "DIGIPOST"
        return out

    async def send_letter(self, letter: MailboxLetter) -> DeliveryResult:
        document = str(uuid.uuid5(_UUIDS, letter.message_id))
        message = (
            f'<message xmlns="{NS}"><message-id>{escape(letter.message_id)}</message-id>'
            f"<recipient><personal-identification-number>{escape(letter.national_id)}"
            f"</personal-identification-number></recipient>"
            f"<primary-document><uuid>{document}</uuid><subject>{escape(letter.subject)}</subject>"
            f"<file-type>pdf</file-type></primary-document></message>"
        ).encode()
        boundary = uuid.uuid4().hex
        body = _multipart(
            boundary, [("message", MEDIA_TYPE, message), (document, "application/octet-stream", letter.pdf)]
        )
        status, _headers, answer = await self._request(
            "POST", "/messages", body, f'multipart/{MULTIPART_SUBTYPE}; boundary="{boundary}"'
        )
        if status >= 300:
            error = _error(status, answer)
            if getattr(error, "code", None) in {f"digipost_{c}" for c in ALREADY_SENT}:
                return DeliveryResult(
                    status=Status.DELIVERED, provider_id=f"digipost:{document}", detail={"repeat": True}
                )
            raise error
        delivered = _text(answer, "status") == "DELIVERED"
        return DeliveryResult(
            status=Status.DELIVERED if delivered else Status.SENT,
            provider_id=f"digipost:{document}",
            detail={"digipost_status": _text(answer, "status") or ""},
        )

    async def receipt(self, message_id: str) -> bool | None:
        """True once Digipost's document status says ``DELIVERED``.

        ``NOT_DELIVERED`` is left as it is (logged): the letter was taken, and printing it now would be
        a second letter the person may also find in Digipost; an operator decides.
        """
        status = await self.document_status(message_id)
        if status == "NOT_DELIVERED":
            logger.warning("Digipost reports letter %s not delivered", message_id)
        return True if status == "DELIVERED" else None

    async def document_status(self, message_id: str) -> str | None:
        """Digipost's ``DELIVERED`` / ``NOT_DELIVERED`` for the letter of ``message_id`` (None: unknown)."""
        document = str(uuid.uuid5(_UUIDS, message_id))
        status, _headers, answer = await self._request(
            "GET", f"/documents/{self.settings.sender_id}/{document}/status", b"", None
        )
        if status == 404:
            return None
        if status >= 300:
            raise _error(status, answer)
        root = _parse(answer)
        return root.get("status") if root is not None else None

    async def aclose(self) -> None:
        await self._http.close()

    # -- signed requests -----------------------------------------------------------------

    async def _request(self, method: str, path: str, body: bytes, content_type: str | None) -> tuple[int, Any, bytes]:
        headers = {
            "Date": formatdate(usegmt=True),
            "X-Digipost-UserId": str(self.settings.sender_id),
            "Accept": MEDIA_TYPE,
        }
        if body:
            headers["X-Content-SHA256"] = base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")
            headers["Content-Type"] = content_type or MEDIA_TYPE
        headers["X-Digipost-Signature"] = base64.b64encode(self._sign(canonical(method, path, headers))).decode()
        session = await self._http.get()
        async with session.request(
            method, self.settings.base_url.rstrip("/") + path, data=body or None, headers=headers
        ) as response:
            return response.status, response.headers, await response.read()

    def _sign(self, text: str) -> bytes:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding

        if self._key is None:
            password = os.environ.get("DIGIPOST_KEY_PASSWORD") or self.settings.private_key_password
            pem = Path(self.context.config.path(self.settings.private_key)).read_bytes()
            self._key = serialization.load_pem_private_key(pem, password.encode() if password else None)
        return self._key.sign(text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())


def canonical(method: str, path: str, headers: dict[str, str], query: str = "") -> str:
    """The string Digipost's request signature covers (``RequestMessageSignatureUtil``)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    signed = "".join(f"{name}: {lowered[name]}\n" for name in sorted(lowered) if name in _SIGNED_HEADERS)
    return f"{method.upper()}\n{path.lower()}\n{signed}{query.lower()}\n"


def _multipart(boundary: str, parts: list[tuple[str, str, bytes]]) -> bytes:
    out = b""
    for filename, content_type, data in parts:
        out += (
            (
                f"--{boundary}\r\nContent-Type: {content_type}\r\n"
                f'Content-Disposition: attachment; filename="{filename}"\r\n\r\n'
            ).encode()
            + data
            + b"\r\n"
        )
    return out + f"--{boundary}--\r\n".encode()


def _parse(answer: bytes) -> ET.Element | None:
    try:
        return ET.fromstring(answer) if answer else None
    except ET.ParseError:
        return None


def _text(answer: bytes, tag: str) -> str | None:
    root = _parse(answer)
    if root is None:
        return None
    found = root.find(f"{{{NS}}}{tag}")
    if found is None:
        found = root.find(tag)
    return (found.text or "").strip() if found is not None else None


def _error(status: int, answer: bytes) -> Exception:
    code = _text(answer, "error-code")
    text = f"Digipost answered {status}" + (f" {code}" if code else "")
    if retry_later(status):
        return TransientDeliveryError(text, code=f"digipost_{code or status}")
    if status in (401, 403) and code not in NO_MAILBOX_CODES:  # our signature or account: the deployment's to fix
        return TransientDeliveryError(text, code=f"digipost_{code or status}")
    return MailboxRejected(text, code=f"digipost_{code or status}")
