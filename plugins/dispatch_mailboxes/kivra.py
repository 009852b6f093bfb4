"""Kivra (Sweden, Finland): the tenant API of Kivra's Integration Reference.

Built from Kivra's public OpenAPI document and its introduction
(https://developer.kivra.com, source github.com/kivra/developer.kivra.com: ``swagger.yml``,
``_partials/api-introduction.yml``, ``_partials/path-v2-tenantkey-content.yml``):

- authentication: OAuth2 client credentials, ``POST /v1/auth`` with HTTP Basic
  ``client_id:client_secret`` and ``grant_type=client_credentials``; the answer's
  ``access_token`` is sent as ``Authorization: Bearer`` (the old ``token`` scheme was
  removed in 2019) until ``expires_in`` runs out;
- eligibility: ``POST /v2/tenant/{tenantKey}/usermatch/ssn`` with ``{"list": [ssn, ...]}``
  answers the sublist of people who can receive content from the tenant (those who
  opted out of the tenant are left out); a payload may hold about 500,000 numbers
  (10 MB, else 413), so it is also the bulk look-up;
- sending: ``POST /v2/tenant/{tenantKey}/content`` with ``ssn``, ``subject`` (Kivra advises
  30-35 characters, nothing sensitive), ``generated_at``, ``type`` ``"letter"`` and the PDF
  as a base64 ``parts`` entry; ``201 Created`` with the object key in ``kivra-objkey``.
  Content that Kivra *retained* (the recipient not yet a user; only for some types)
  carries ``kivra-retained: true``: taken, not yet delivered;
- errors: ``{"code", "short_message", "long_message"}`` with the code also in
  ``x-error-code``; 4xx fail for the given input, 5xx (and 429, "Too Many Requests")
  are safe to retry. 40032 "User doesn't exist" and 40105 "Invalid Sendrequest" (the
  recipient does not accept the sender) mean no mailbox for us.

Kivra documents no per-content delivery receipt for tenants: the ``201`` *is* the
receipt (the content is in the person's mailbox), so a sent letter is ``delivered`` at
once, and a retained one ``sent``. Kivra's duplicate control drops an identical payload
sent twice (production only), and the PDF is the same bytes on a retry only if it is
not set again — so a letter redelivered after a crash may reach Kivra twice: said here,
not hidden. Swedish numbers go as ``YYYYMMDDNNNN`` (``national_id`` is stored so); Kivra
Finland takes the henkilötunnus as written, on its own base URL (a second deployment
section per country is not supported yet: one Kivra tenant per dispatch configuration).
"""

from __future__ import annotations

import base64
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from dispatch.clock import now_utc
from dispatch.errors import ConfigError, TransientDeliveryError
from dispatch.lifecycle import Status
from dispatch.mailboxes import MailboxChannel, MailboxLetter, MailboxRejected
from dispatch.models import DeliveryResult

from .http import Session, retry_later

logger = logging.getLogger("dispatch.kivra")

#: Kivra's codes that mean "this person has no mailbox that takes our content".
NO_MAILBOX_CODES = frozenset({"40032", "40105", "40024", "40113"})
#: Most numbers per usermatch call (Kivra takes ~500,000 per 10 MB; smaller calls fail more gently).
LOOKUP_BATCH = 10_000


@dataclass
class KivraSettings:
    """``[channels.kivra]``: no ``client_id`` means Kivra is not used."""

    #: https://sender.api.kivra.com (production) or https://sender.sandbox-api.kivra.com
    base_url: str = "https://sender.api.kivra.com"
    client_id: str | None = None
    #: Or KIVRA_CLIENT_SECRET in the environment.
    client_secret: str | None = None
    tenant_key: str | None = None
    #: How long a usermatch answer is trusted before the person is looked up again.
    eligibility_ttl_hours: float = 24.0
    timeout: float = 30.0


class KivraChannel(MailboxChannel):
    """Letters to Kivra mailboxes (see the module docstring)."""

    name = "kivra"
    settings_class = KivraSettings
    countries: ClassVar[tuple[str, ...]] = ("SE", "FI")

    def __init__(self, settings: KivraSettings, context) -> None:
        super().__init__(settings, context)
        self.client_secret = os.environ.get("KIVRA_CLIENT_SECRET") or settings.client_secret
        if settings.client_id and not (self.client_secret and settings.tenant_key):
            raise ConfigError("channels.kivra needs client_secret (or KIVRA_CLIENT_SECRET) and tenant_key")
        if settings.eligibility_ttl_hours <= 0:
            raise ConfigError("channels.kivra.eligibility_ttl_hours must be more than 0")
        self._http = Session(settings.timeout)
        self._token: tuple[str, float] | None = None

    @property
    def configured(self) -> bool:
        return bool(self.settings.client_id)

    @property
    def lookup_batch(self) -> int:
        return LOOKUP_BATCH

    async def lookup(self, national_ids: Sequence[str]) -> dict[str, bool]:
        """Who of ``national_ids`` accepts content from the tenant (one usermatch call)."""
        body = await self._call("POST", "usermatch/ssn", {"list": list(national_ids)})
        matched = set(body.get("list") or []) if isinstance(body, dict) else set()
        return {nid: nid in matched for nid in national_ids}

    async def send_letter(self, letter: MailboxLetter) -> DeliveryResult:
        payload = {
            "ssn": letter.national_id,
            "subject": letter.subject,
            "generated_at": now_utc().date().isoformat(),
            "type": "letter",
            "parts": [
                {
                    "name": f"{letter.message_id}.pdf",
                    "data": base64.b64encode(letter.pdf).decode("ascii"),
                    "content_type": "application/pdf",
                }
            ],
        }
        _body, headers = await self._call("POST", "content", payload, want_headers=True)
        retained = str(headers.get("kivra-retained", "")).lower() == "true"
        return DeliveryResult(
            status=Status.SENT if retained else Status.DELIVERED,
            provider_id=f"kivra:{headers.get('kivra-objkey') or letter.message_id}",
            detail={"retained": True} if retained else {},
        )

    async def aclose(self) -> None:
        await self._http.close()

    # -- the API -------------------------------------------------------------------------

    async def _call(self, method: str, path: str, payload: Any, *, want_headers: bool = False) -> Any:
        url = f"{self.settings.base_url.rstrip('/')}/v2/tenant/{self.settings.tenant_key}/{path}"
        for attempt in (1, 2):
            token = await self._access_token(renew=attempt == 2)
            session = await self._http.get()
            async with session.request(
                method, url, json=payload, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}
            ) as response:
                body = await _json(response)
                if response.status == 401 and attempt == 1:  # the token expired early: authenticate again
                    continue
                if response.status < 300:
                    headers = {key.lower(): value for key, value in response.headers.items()}
                    return (body, headers) if want_headers else body
                raise _error(response.status, body, response.headers)
        raise AssertionError("unreachable")

    async def _access_token(self, *, renew: bool = False) -> str:
        if self._token is not None and not renew and self._token[1] > time.monotonic():
            return self._token[0]
        session = await self._http.get()
        basic = base64.b64encode(f"{self.settings.client_id}:{self.client_secret}".encode()).decode("ascii")
        async with session.post(
            f"{self.settings.base_url.rstrip('/')}/v1/auth",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}", "Accept": "application/json"},
        ) as response:
            body = await _json(response)
            if response.status != 200 or not isinstance(body, dict) or "access_token" not in body:
                # Bad credentials are the deployment's to fix: letters wait (and die after the retries).
                raise TransientDeliveryError(
                    f"Kivra refused the client credentials (HTTP {response.status})",
                    code=f"kivra_{_code(body, response.headers) or response.status}",
                )
        expires = float(body.get("expires_in") or 300)
        self._token = (str(body["access_token"]), time.monotonic() + max(expires - 30, 1))
        return self._token[0]


async def _json(response: Any) -> Any:
    try:
        return await response.json(content_type=None)
    except ValueError:
        return None


def _code(body: Any, headers: Any) -> str | None:
    code = body.get("code") if isinstance(body, dict) else None
    return str(code or headers.get("x-error-code") or "") or None


def _error(status: int, body: Any, headers: Any) -> Exception:
    code = _code(body, headers)
    short = body.get("short_message") if isinstance(body, dict) else None
    text = f"Kivra answered {status}" + (f" {code} {short}" if code else "")
    if retry_later(status):
        return TransientDeliveryError(text, code=f"kivra_{code or status}")
    if code in NO_MAILBOX_CODES:
        return MailboxRejected(text, code=f"kivra_{code}")
    # Any other 4xx fails for this input (Kivra: do not resend it unchanged): the letter goes on paper.
    logger.warning("Kivra refused a letter: %s", text)
    return MailboxRejected(text, code=f"kivra_{code or status}")
