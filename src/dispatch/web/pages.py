"""The customer's pages: unsubscribe, the preference centre and its short codes, branded errors.

- ``GET /u/<token>`` — the unsubscribe page of a message, in its language, with one button;
- ``POST /u/<token>`` — the button, and RFC 8058 one-click unsubscribe from mail clients
  (``List-Unsubscribe=One-Click``); records a withdrawal in the consent ledger;
- ``GET /preferences/<token>`` — the preference centre (SPEC §11) in the message's
  language (``?lang=`` switches); ``POST`` saves it: one ledger entry per change;
- ``GET /p/<code>`` — a short code printed on a letter: on to the preference page.

GET never changes anything. Pages are templates: ``templates/<lang>/_web/`` holds
each language's texts, ``templates/_shared/web_*.html`` the markup.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from prometheus_client import Counter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ..errors import DispatchError
from ..links import ExpiredToken, InvalidToken
from ..store import now_utc
from .preferences import MARKETING_CHANNELS, changes_from_form, current_preferences, masked_addresses

if TYPE_CHECKING:
    from ..dispatcher import Dispatcher

logger = logging.getLogger("dispatch.web")

CSRF_COOKIE = "dispatch_csrf"
LANGUAGE_NAMES = {"fi": "Suomi", "sv": "Svenska", "nb": "Norsk bokmål", "en": "English"}
_COUNTRY_OF = {"fi": "FI", "sv": "SE", "nb": "NO", "en": "FI"}

PREFERENCE_CHANGES = Counter(
    "dispatch_preference_changes", "Consent-ledger entries made on the preference page", ["purpose"]
)
UNSUBSCRIBES = Counter("dispatch_unsubscribes", "Withdrawals through unsubscribe links", ["purpose", "one_click"])


class PageError(Exception):
    """An error page to show (status, what went wrong, and in which language if known)."""

    def __init__(self, status: int, kind: str, message: dict[str, Any] | None = None) -> None:
        super().__init__(kind)
        self.status = status
        self.kind = kind
        self.message = message


@dataclass(frozen=True, slots=True)
class _Page:
    """A preference page request, resolved: the message, its recipient and the language shown."""

    token: str
    message: dict[str, Any]
    language: str
    country: str


class Pages:
    """The endpoints of the customer's pages over a :class:`~dispatch.Dispatcher`."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.d = dispatcher
        self.secure_cookies = dispatcher.config.links.base_url.startswith("https:")
        base = urlsplit(dispatcher.config.links.base_url)
        self.origin = f"{base.scheme}://{base.netloc}"
        #: The path the pages are served under behind the proxy (``/dispatch`` in
        #: ``https://energia.example.fi/dispatch``): links in pages start with it.
        self.base_path = base.path.rstrip("/")
        self._wording: dict[str, str] = {}
        self._languages: list[str] | None = None

    # -- rendering ---------------------------------------------------------------------

    def languages(self) -> list[str]:
        """Languages that have the web pages' texts (``_web/text.html``)."""
        if self._languages is None:
            found = []
            for language in LANGUAGE_NAMES:
                env = self.d.renderer.environment(language, _COUNTRY_OF[language])
                try:
                    env.get_template("_web/text.html")
                except Exception:  # a missing or broken language is simply not offered
                    continue
                found.append(language)
            self._languages = found
        return self._languages

    def render(self, name: str, language: str, country: str, status: int = 200, **context: Any) -> HTMLResponse:
        env = self.d.renderer.environment(language, country)
        values = {
            "company": self.d.company(country, language),
            "language": language,
            "languages": [(code, LANGUAGE_NAMES[code]) for code in self.languages()],
            "switch_url": None,
            "base_path": self.base_path,
            **context,
        }
        html = env.get_template(name).render(values)
        return HTMLResponse(
            html,
            status_code=status,
            headers={
                "Cache-Control": "no-store",
                "Referrer-Policy": "same-origin",
                "X-Content-Type-Options": "nosniff",
                "X-Frame-Options": "DENY",
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                "frame-ancestors 'none'; base-uri 'none'",
            },
        )

    def error_page(self, request: Request, status: int, kind: str, message: dict[str, Any] | None = None) -> Response:
        """A branded error page, in the message's language when known, else the browser's."""
        if message is not None:
            language, country = message["language"], message["country"]
        else:
            language = negotiate(request.headers.get("accept-language", ""), self.languages())
            country = _COUNTRY_OF.get(language, "FI")
        if language not in self.languages():
            language = "en" if "en" in self.languages() else self.languages()[0]
        return self.render("web_error.html", language, country, status=status, status_code=status, kind=kind)

    def wording_version(self, language: str) -> str:
        """A version of the preference page's wording: a digest of the templates the customer was shown."""
        version = self._wording.get(language)
        if version is None:
            env = self.d.renderer.environment(language, _COUNTRY_OF.get(language, "FI"))
            digest = hashlib.sha256()
            for name in ("_web/text.html", "web_preferences.html", "web_base.html"):
                source, _, _ = env.loader.get_source(env, name)  # type: ignore[union-attr]
                digest.update(source.encode("utf-8"))
            version = self._wording[language] = f"preferences-{language}-{digest.hexdigest()[:12]}"
        return version

    # -- unsubscribe -------------------------------------------------------------------

    async def unsubscribe(self, request: Request) -> Response:
        token = request.path_params["token"]
        form = await request.form() if request.method == "POST" else None
        one_click = form is not None and form.get("List-Unsubscribe") == "One-Click"
        return await run_in_threadpool(self._unsubscribe, token, request.method == "POST", one_click)

    def _unsubscribe(self, token: str, post: bool, one_click: bool) -> Response:
        try:
            message_id = self.d.links.verify_unsubscribe(token)
        except InvalidToken:
            raise PageError(404, "link") from None
        message = self.d.store.message(message_id, content=False)
        if message is None:
            raise PageError(404, "link")
        purpose, channel = self._opt_out_scope(message)
        preferences_url = f"{self.base_path}/preferences/{self.d.links.preferences_token(message_id)}"
        action = f"{self.base_path}/u/{token}"
        context = {"purpose": purpose, "channel": channel, "action": action, "preferences_url": preferences_url}
        if not post:
            return self.render("_web/unsubscribe.html", message["language"], message["country"], **context)
        if not self._withdrawn(message["recipient_id"], purpose, channel):
            self.d.consents.record(
                message["recipient_id"],
                purpose,
                False,
                channel=channel,
                source="unsubscribe_link",
                evidence=f"message {message_id}" + (" one-click" if one_click else ""),
            )
            UNSUBSCRIBES.labels(purpose, str(one_click).lower()).inc()
        logger.info("unsubscribe: %s %s/%s via message %s", message["recipient_id"], purpose, channel, message_id)
        if one_click:
            return Response("", status_code=200)
        return self.render("_web/unsubscribed.html", message["language"], message["country"], **context)

    def _opt_out_scope(self, message: dict[str, Any]) -> tuple[str, str]:
        name = message["message_type"]
        mtype = self.d.types.get(name) if name in self.d.types else None
        if mtype is not None and mtype.subscription:
            return mtype.subscription, "all"
        if mtype is not None and mtype.objection:
            return mtype.objection, "all"
        return "marketing", message["channel"] or "all"

    def _withdrawn(self, recipient_id: str, purpose: str, channel: str) -> bool:
        entries = [
            e
            for e in self.d.consents.history(recipient_id)
            if e["purpose"] == purpose and e["channel"] in (channel, "all")
        ]
        return bool(entries) and not entries[-1]["granted"]

    # -- short codes -------------------------------------------------------------------

    async def short_code(self, request: Request) -> Response:
        code = request.path_params["code"]
        return await run_in_threadpool(self._short_code, code)

    def _short_code(self, code: str) -> Response:
        try:
            message_id = self.d.short_codes.resolve(code)
        except ExpiredToken as exc:
            message = self.d.store.message(exc.message_id, content=False) if exc.message_id else None
            raise PageError(403, "expired", message) from None
        except InvalidToken:
            raise PageError(404, "link") from None
        token = self.d.links.preferences_token(message_id)
        location = f"{self.base_path}/preferences/{token}"
        return RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})

    # -- preference centre ---------------------------------------------------------------

    def _resolve(self, token: str, requested_language: str | None) -> _Page:
        try:
            message_id = self.d.links.verify_preferences(token)
        except ExpiredToken as exc:
            message = self.d.store.message(exc.message_id, content=False) if exc.message_id else None
            raise PageError(403, "expired", message) from None
        except InvalidToken:
            raise PageError(404, "link") from None
        message = self.d.store.message(message_id)
        if message is None or not ((message.get("content") or {}).get("inputs") or {}).get("recipient"):
            raise PageError(404, "link")
        language = requested_language if requested_language in self.languages() else message["language"]
        if language not in self.languages():
            language = "en"
        return _Page(token, message, language, message["country"])

    async def preferences(self, request: Request) -> Response:
        token = request.path_params["token"]
        language = request.query_params.get("lang")
        if request.method == "GET":
            nonce = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(18)
            response = await run_in_threadpool(self._show, token, language, nonce, request.query_params.get("saved"))
            if request.cookies.get(CSRF_COOKIE) != nonce:
                response.set_cookie(
                    CSRF_COOKIE,
                    nonce,
                    httponly=True,
                    samesite="strict",
                    secure=self.secure_cookies,
                    path=self.base_path or "/",
                )
            return response
        form = await request.form()
        fields = {key: form.getlist(key) for key in form}
        origin = request.headers.get("origin")
        same_origin = origin is None or origin in (self.origin, f"{request.url.scheme}://{request.url.netloc}")
        return await run_in_threadpool(
            self._save, token, language, fields, request.cookies.get(CSRF_COOKIE, ""), same_origin
        )

    def _state(self, page: _Page):
        d = self.d
        person = d.parse_recipient(page.message["content"]["inputs"]["recipient"])
        ledger = d.consents.for_recipients([person.id]).get(person.id, ())
        notice_order = d.message_type("price_change").channels if "price_change" in d.types else ()
        channels = [c for c in MARKETING_CHANNELS if c in d.channels]
        state = current_preferences(
            person,
            ledger,
            usable=lambda c: c in d.channels and d.channels[c].address(person) is not None,
            notice_order=notice_order,
            marketing_channels=channels,
            now=now_utc(),
            offer_paper=d.digital_first is not None,  # SPEC §6: "I want paper letters" (wt-24)
        )
        return person, state, channels

    def _show(self, token: str, language: str | None, nonce: str, saved: str | None) -> Response:
        page = self._resolve(token, language)
        person, state, channels = self._state(page)
        wording = self.wording_version(page.language)
        return self.render(
            "web_preferences.html",
            page.language,
            page.country,
            prefs=state,
            marketing_channels=channels,
            masked=masked_addresses(person),
            action=f"{self.base_path}/preferences/{token}?lang={page.language}",
            switch_url=f"{self.base_path}/preferences/{token}",
            csrf=self.d.links.form_token(token, nonce, wording),
            wording_version=wording,
            saved=saved == "1",
        )

    def _save(self, token: str, language: str | None, fields: dict[str, list[str]], nonce: str, same_origin: bool):
        page = self._resolve(token, language)
        if not same_origin:
            logger.warning("preference form for message %s refused: cross-origin POST", page.message["id"])
            raise PageError(403, "csrf", page.message)
        try:
            wording = self.d.links.verify_form_token("".join(fields.pop("csrf", [])), token, nonce)
        except InvalidToken:
            logger.warning("preference form for message %s refused: CSRF token missing or wrong", page.message["id"])
            raise PageError(403, "csrf", page.message) from None
        person, state, channels = self._state(page)
        try:
            changes = changes_from_form(state, fields, channels)
        except DispatchError:
            raise PageError(400, "form", page.message) from None
        for change in changes:
            self.d.consents.record(
                person.id,
                change.purpose,
                change.granted,
                channel=change.channel,
                source="preference_centre",
                wording_version=wording,
                evidence=f"message {page.message['id']}",
            )
            PREFERENCE_CHANGES.labels(change.purpose).inc()
        logger.info("preferences of %s: %d change(s) via message %s", person.id, len(changes), page.message["id"])
        return RedirectResponse(
            f"{self.base_path}/preferences/{token}?lang={page.language}&saved=1",
            status_code=303,
            headers={"Cache-Control": "no-store"},
        )


def negotiate(header: str, available: list[str]) -> str:
    """The best of ``available`` for an ``Accept-Language`` header (``nb`` also answers ``no``/``nn``)."""
    wanted: list[tuple[float, int, str]] = []
    for index, item in enumerate(header.split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        base = tag.strip().lower().split("-")[0]
        base = "nb" if base in ("no", "nn") else base
        if base in available and quality > 0:
            wanted.append((-quality, index, base))
    if wanted:
        return min(wanted)[2]
    return "en" if "en" in available else (available[0] if available else "en")
