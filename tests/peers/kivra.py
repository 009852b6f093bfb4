"""A local Kivra tenant API that behaves as Kivra's Integration Reference says (developer.kivra.com).

- ``POST /v1/auth``: HTTP Basic ``client_id:client_secret``, form ``grant_type=client_credentials``;
  200 ``{"access_token", "expires_in", "token_type": "bearer"}``, else 401 with Kivra's error body
  (``{"code": 40100, "short_message", "long_message"}``, code also in ``x-error-code``).
- ``POST /v2/tenant/{tenantKey}/usermatch/ssn``: ``{"list": [...]}`` → the eligible sublist.
- ``POST /v2/tenant/{tenantKey}/content``: 201 with ``kivra-objkey``; a person who is not a user → 40032,
  one who does not accept the tenant → 40105; a malformed ssn → 40009; payload checks (subject, type, parts).
- A wrong or expired Bearer token → 401 40015 ("Invalid Token"); another tenant key → 403 40300.

The peer records what it received so tests can check the PDF and metadata that reached "Kivra".
"""

from __future__ import annotations

import base64
import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SSN = re.compile(r"^(\d{12}|\d{6}[-+A-FU-Y]\d{3}[0-9A-Y])$")


@dataclass
class KivraState:
    client_id: str = "dispatch-test"
    client_secret: str = "s3cret"
    tenant_key: str = "1357acbd2468"
    #: People with a Kivra account that accepts the tenant.
    accepting: set[str] = field(default_factory=set)
    #: Everyone with a valid-looking number accepts the tenant (for the demo).
    accept_all: bool = False
    #: People with an account who do not accept (opted out of) the tenant.
    rejecting: set[str] = field(default_factory=set)
    #: Access tokens handed out.
    tokens: set[str] = field(default_factory=set)
    received: list[dict[str, Any]] = field(default_factory=list)
    usermatch_calls: int = 0
    usermatch_numbers: int = 0
    auth_calls: int = 0
    fail_next: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _error(status: int, code: int, short: str, long: str) -> JSONResponse:
    return JSONResponse(
        {"code": code, "short_message": short, "long_message": long},
        status_code=status,
        headers={"x-error-code": str(code)},
    )


def kivra_app(state: KivraState) -> Starlette:
    async def auth(request: Request) -> JSONResponse:
        state.auth_calls += 1
        expected = base64.b64encode(f"{state.client_id}:{state.client_secret}".encode()).decode()
        form = await request.form()
        if request.headers.get("authorization") != f"Basic {expected}":
            return _error(401, 40104, "Invalid Client", "Client authentication failed")
        if form.get("grant_type") != "client_credentials":
            return _error(400, 40103, "Invalid Grant", "The provided authorization grant is invalid")
        token = secrets.token_hex(16)
        state.tokens.add(token)
        return JSONResponse({"access_token": token, "expires_in": 3600, "token_type": "bearer", "scope": ""})

    def authorised(request: Request) -> JSONResponse | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer ") or header[7:] not in state.tokens:
            return _error(401, 40015, "Invalid Token", "Invalid access_token provided")
        if request.path_params["tenant"] != state.tenant_key:
            return _error(403, 40300, "Forbidden", "Access was denied to the given resource")
        return None

    async def usermatch(request: Request) -> JSONResponse:
        if (denied := authorised(request)) is not None:
            return denied
        try:
            body = await request.json()
        except ValueError:
            return _error(400, 40008, "Unprocessable Entity", "The JSON payload was malformed")
        numbers = body.get("list") if isinstance(body, dict) else None
        if not isinstance(numbers, list):
            return _error(400, 40000, "Request validation failed", "list is required")
        with state.lock:
            state.usermatch_calls += 1
            state.usermatch_numbers += len(numbers)
        return JSONResponse({"list": [n for n in numbers if n in state.accepting or state.accept_all]})

    async def content(request: Request) -> JSONResponse:
        if (denied := authorised(request)) is not None:
            return denied
        if state.fail_next:
            status = state.fail_next.pop(0)
            return _error(status, status * 100, "Service Unavailable", "try again later")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, 40008, "Unprocessable Entity", "The JSON payload was malformed")
        if not isinstance(body, dict) or not body.get("subject") or not body.get("type"):
            return _error(400, 40000, "Request validation failed", "subject and type are required")
        ssn = body.get("ssn")
        if not isinstance(ssn, str) or not SSN.match(ssn):
            return _error(400, 40009, "Error in SSN", "SSN not meeting the required format")
        parts = body.get("parts") or []
        if not parts or parts[0].get("content_type") != "application/pdf":
            return _error(400, 40019, "Invalid Files", "invalid files")
        pdf = base64.b64decode(parts[0]["data"])
        if not pdf.startswith(b"%PDF"):
            return _error(400, 40019, "Invalid Files", "invalid files")
        if ssn in state.rejecting:
            return _error(400, 40105, "Invalid Sendrequest", "No sendrequest exists between sender and receiver")
        if ssn not in state.accepting and not state.accept_all:
            return _error(400, 40032, "User doesn't exist", "No user exists with provided SSN")
        key = secrets.token_hex(21)
        with state.lock:
            state.received.append({**body, "pdf": pdf, "key": key})
        return JSONResponse(
            {"subject": body["subject"], "type": body["type"], "generated_at": body.get("generated_at")},
            status_code=201,
            headers={"kivra-objkey": key, "location": f"/v2/tenant/{state.tenant_key}/content/{key}"},
        )

    return Starlette(
        routes=[
            Route("/v1/auth", auth, methods=["POST"]),
            Route("/v2/tenant/{tenant}/usermatch/ssn", usermatch, methods=["POST"]),
            Route("/v2/tenant/{tenant}/content", content, methods=["POST"]),
        ]
    )
