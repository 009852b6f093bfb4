"""A local Digipost REST API (v8) that behaves as Digipost's documentation and Java client say.

- Every request must carry ``Date``, ``X-Digipost-UserId`` and, with a body, ``X-Content-SHA256``
  (base64 SHA-256 of the body), and ``X-Digipost-Signature``: SHA256withRSA over the canonical
  request (``METHOD\\npath\\n`` + signed headers + query ``\\n``), checked with the sender's public key.
  A missing or wrong one → 403 ``<error><error-code>INVALID_SIGNATURE</error-code>...``.
- ``POST /identification``: ``<identification-result><result>DIGIPOST|IDENTIFIED|UNIDENTIFIED``.
- ``POST /messages`` (``multipart/vnd.digipost-v8+xml``): 200 ``<message-delivery>`` with
  ``<status>DELIVERED</status>``; an unknown recipient → 400 ``UNKNOWN_RECIPIENT``; the same
  message id again → 409 ``DUPLICATE_MESSAGE``.
- ``GET /documents/{sender}/{uuid}/status``: ``<document-status status="DELIVERED" .../>``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.policy import HTTP
from typing import Any
from xml.etree import ElementTree as ET

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

NS = "http://api.digipost.no/schema/v8"
MEDIA = "application/vnd.digipost-v8+xml"
SIGNED = ("content-md5", "date", "x-content-sha256", "x-digipost-userid")


@dataclass
class DigipostState:
    sender_id: int
    public_key: Any
    #: Fødselsnumre with a Digipost mailbox; ``identified`` are people Digipost knows without one.
    mailboxes: set[str] = field(default_factory=set)
    identified: set[str] = field(default_factory=set)
    #: People whose letters Digipost takes but has not delivered yet (``NOT_COMPLETE``, then ``NOT_DELIVERED``).
    pending: set[str] = field(default_factory=set)
    received: list[dict[str, Any]] = field(default_factory=list)
    documents: dict[str, str] = field(default_factory=dict)
    identifications: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _error(status: int, code: str, text: str, kind: str = "CLIENT_DATA") -> Response:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><error xmlns="{NS}"><error-code>{code}</error-code>'
        f"<error-message>{text}</error-message><error-type>{kind}</error-type></error>"
    )
    return Response(body, status_code=status, media_type=MEDIA)


def digipost_app(state: DigipostState) -> Starlette:
    async def checked(request: Request) -> tuple[bytes, Response | None]:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        if "date" not in headers:
            return body, _error(400, "MISSING_DATE_HEADER", "Date header is missing")
        if headers.get("x-digipost-userid") != str(state.sender_id):
            return body, _error(403, "UNKNOWN_USER_ID", "Unknown X-Digipost-UserId")
        if body:
            digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
            if headers.get("x-content-sha256") != digest:
                return body, _error(400, "MISSING_CONTENT_HASH", "X-Content-SHA256 missing or wrong")
        signature = headers.get("x-digipost-signature")
        if not signature:
            return body, _error(403, "MISSING_SIGNATURE", "X-Digipost-Signature is missing")
        signed = "".join(f"{name}: {headers[name]}\n" for name in sorted(headers) if name in SIGNED)
        text = f"{request.method.upper()}\n{request.url.path.lower()}\n{signed}{request.url.query.lower()}\n"
        try:
            state.public_key.verify(base64.b64decode(signature), text.encode(), padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return body, _error(403, "INVALID_SIGNATURE", "The request signature is invalid")
        return body, None

    async def identification(request: Request) -> Response:
        body, denied = await checked(request)
        if denied is not None:
            return denied
        number = ET.fromstring(body).findtext(f"{{{NS}}}personal-identification-number") or ""
        with state.lock:
            state.identifications += 1
        result = (
            "DIGIPOST" if number in state.mailboxes else "IDENTIFIED" if number in state.identified else "UNIDENTIFIED"
        )
        return Response(
            f'<identification-result xmlns="{NS}"><result>{result}</result></identification-result>', media_type=MEDIA
        )

    async def messages(request: Request) -> Response:
        body, denied = await checked(request)
        if denied is not None:
            return denied
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/vnd.digipost-v8+xml"):
            return _error(415, "ILLEGAL_CONTENT_TYPE", "expected multipart/vnd.digipost-v8+xml")
        parsed = message_from_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=HTTP)
        parts = {part.get_filename(): part for part in parsed.iter_parts()}
        if "message" not in parts:
            return _error(400, "MISSING_BODYPART_FILENAME", "no message part")
        message = ET.fromstring(parts["message"].get_payload(decode=True))
        message_id = message.findtext(f"{{{NS}}}message-id") or ""
        number = message.findtext(f"{{{NS}}}recipient/{{{NS}}}personal-identification-number") or ""
        document = message.findtext(f"{{{NS}}}primary-document/{{{NS}}}uuid") or ""
        subject = message.findtext(f"{{{NS}}}primary-document/{{{NS}}}subject") or ""
        if document not in parts:
            return _error(400, "DOCUMENTS_AND_FILES_MISMATCH", "no part for the primary document")
        pdf = parts[document].get_payload(decode=True)
        if not pdf.startswith(b"%PDF"):
            return _error(400, "INVALID_PDF_CONTENT", "not a PDF")
        if number not in state.mailboxes:
            return _error(400, "UNKNOWN_RECIPIENT", "The recipient is not a Digipost user")
        with state.lock:
            if any(r["message_id"] == message_id for r in state.received):
                return _error(409, "DUPLICATE_MESSAGE", "A message with this id was already sent")
            state.received.append({"message_id": message_id, "subject": subject, "pdf": pdf, "uuid": document})
            status = "NOT_COMPLETE" if number in state.pending else "DELIVERED"
            state.documents[document] = "NOT_DELIVERED" if number in state.pending else "DELIVERED"
        return Response(
            f'<message-delivery xmlns="{NS}"><message-id>{message_id}</message-id>'
            f"<delivery-method>DIGIPOST</delivery-method><sender-id>{state.sender_id}</sender-id>"
            f"<status>{status}</status><delivery-time>2027-01-11T09:30:00+01:00</delivery-time>"
            f"<primary-document><uuid>{document}</uuid><subject>{subject}</subject><file-type>pdf</file-type>"
            f"</primary-document></message-delivery>",
            media_type=MEDIA,
        )

    async def status(request: Request) -> Response:
        _body, denied = await checked(request)
        if denied is not None:
            return denied
        document = request.path_params["uuid"]
        if document not in state.documents or not re.fullmatch(r"\d+", request.path_params["sender"]):
            return _error(404, "DOCUMENT_NOT_FOUND", "no such document")
        return Response(
            f'<document-status xmlns="{NS}" uuid="{document}" status="{state.documents[document]}"'
            ' channel="DIGIPOST"/>',
            media_type=MEDIA,
        )

    return Starlette(
        routes=[
            Route("/identification", identification, methods=["POST"]),
            Route("/messages", messages, methods=["POST"]),
            Route("/documents/{sender}/{uuid}/status", status, methods=["GET"]),
        ]
    )
