"""The customer's pages: unsubscribe, the preference centre and its short codes, branded errors.

- ``GET /u/<token>`` — the unsubscribe page of a message, in its language, with one button;
- ``POST /u/<token>`` — the button, and RFC 8058 one-click unsubscribe from mail clients
  (``List-Unsubscribe=One-Click``); records a withdrawal in the consent ledger;
- ``GET /preferences/<token>`` — the preference centre (SPEC §11) in the message's
  language (``?lang=`` switches); ``POST`` saves it: one ledger entry per change;
- ``GET /p/<code>`` — a short code printed on a letter: on to the preference page (any case,
  spaces allowed); ``GET /p`` — a form to type the code in (``?code=`` submits it).

GET never changes anything. Error pages show the company of the message when it is known,
else the one ``[web] brand_hosts`` names for the host asked (``[web] brand_country`` for
others): never one chosen from the browser's language. Pages are templates:
``templates/<lang>/_web/text.html`` holds each language's texts, ``templates/_shared/web_*.html``
the markup.
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
from .preferences import (
    MARKETING_CHANNELS,
    Preferences,
    changes_from_form,
    current_preferences,
    masked_addresses,
    opt_out_summary,
    stop_all_marketing,
)

if TYPE_CHECKING:
    from ..dispatcher import Dispatcher

logger = logging.getLogger("dispatch.web")

CSRF_COOKIE = "dispatch_csrf"
LANGUAGE_NAMES = {"fi": "Suomi", "sv": "Svenska", "nb": "Norsk bokmål", "en": "English"}
_COUNTRY_OF = {"fi": "FI", "sv": "SE", "nb": "NO", "en": "FI"}
#: Opt-out purposes the pages have their own words for (``_web/text.html`` ``opt_out``).
_OPT_OUT_PURPOSES = ("newsletter", "survey")

PREFERENCE_CHANGES = Counter(
    "dispatch_preference_changes", "Consent-ledger entries made on the preference page", ["purpose"]
)
UNSUBSCRIBES = Counter("dispatch_unsubscribes", "Withdrawals through unsubscribe links", ["purpose", "one_click"])


class PageError(Exception):
    """An error page to show (status, what went wrong, and in which language if known).

    ``back`` is the page to return to (the form whose submission failed), linked from the error.
    """

    def __init__(
        self, status: int, kind: str, message: dict[str, Any] | None = None, *, back: str | None = None
    ) -> None:
        super().__init__(kind)
        self.status = status
        self.kind = kind
        self.message = message
        self.back = back


def normalise_short_code(code: str) -> str:
    """A short code as typed (``k7mq 2xwd-9h``) in the form it was issued: upper case, no spaces or dashes."""
    return "".join(c for c in code if not c.isspace() and c not in "-‐‑–").upper()


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

    def brand_country(self, request: Request) -> str:
        """The company (its country) a page shows when no message says: by the host asked, else the default.

        The host is the request's ``Host`` (what the proxy passes on), then the host of
        ``[links] base_url``, looked up in ``[web] brand_hosts``; ``[web] brand_country``
        otherwise. The browser's language never decides it: a Finland-Swedish customer
        reading Swedish must still see the Finnish company.
        """
        web = self.d.config.web
        hosts = (request.headers.get("host", ""), urlsplit(self.d.config.links.base_url).netloc)
        for host in hosts:
            name = host.lower()
            name = name.rsplit(":", 1)[0] if not name.endswith("]") else name  # no port
            country = web.brand_hosts.get(name.rstrip("."))
            if country is not None:
                return country
        return web.brand_country

    def error_page(
        self,
        request: Request,
        status: int,
        kind: str,
        message: dict[str, Any] | None = None,
        back: str | None = None,
    ) -> Response:
        """A branded error page: the message's language and company when known, else the browser's
        language and the host's company (:meth:`brand_country`)."""
        if message is not None:
            language, country = message["language"], message["country"]
        else:
            language = negotiate(request.headers.get("accept-language", ""), self.languages())
            country = self.brand_country(request)
        if language not in self.languages():
            language = "en" if "en" in self.languages() else self.languages()[0]
        return self.render("web_error.html", language, country, status=status, status_code=status, kind=kind, back=back)

    def wording_version(self, language: str) -> str:
        """A version of the preference page's wording: a digest of the templates the customer was shown."""
        version = self._wording.get(language)
        if version is None:
            names = ("_web/text.html", "web_preferences.html", "web_base.html")
            version = self._wording[language] = self.wording_digest("preferences", language, names)
        return version

    def wording_digest(self, page: str, language: str, names: tuple[str, ...]) -> str:
        """``<page>-<language>-<12 hex digits>``: a digest of the templates ``names`` as ``language`` has them."""
        env = self.d.renderer.environment(language, _COUNTRY_OF.get(language, "FI"))
        digest = hashlib.sha256()
        for name in names:
            source, _, _ = env.loader.get_source(env, name)  # type: ignore[union-attr]
            digest.update(source.encode("utf-8"))
        return f"{page}-{language}-{digest.hexdigest()[:12]}"

    # -- unsubscribe -------------------------------------------------------------------

    async def unsubscribe(self, request: Request) -> Response:
        token = request.path_params["token"]
        form = await request.form() if request.method == "POST" else None
        one_click = form is not None and form.get("List-Unsubscribe") == "One-Click"
        language = request.query_params.get("lang")
        return await run_in_threadpool(self._unsubscribe, token, request.method == "POST", one_click, language)

    def _unsubscribe(self, token: str, post: bool, one_click: bool, requested_language: str | None = None) -> Response:
        try:
            message_id = self.d.links.verify_unsubscribe(token)
        except InvalidToken:
            raise PageError(404, "link") from None
        message = self.d.store.message(message_id, content=False)  # the content only for the done page
        if message is None:
            raise PageError(404, "link")
        purpose, channel = self._opt_out_scope(message)
        language = self._language(requested_language, message["language"])
        preferences_url = f"{self.base_path}/preferences/{self.d.links.preferences_token(message_id)}"
        switch_url = f"{self.base_path}/u/{token}"
        context = {
            "purpose": purpose,
            "channel": channel,
            "scope": _scope(purpose, channel),
            "action": f"{switch_url}?lang={language}",
            "switch_url": switch_url,
            "preferences_url": f"{preferences_url}?lang={language}",
        }
        already = self._withdrawn(message["recipient_id"], purpose, channel)
        if not post and not already:
            return self.render("_web/unsubscribe.html", language, message["country"], **context)
        if post and not already:
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
        summary = self._opt_out_summary(self.d.store.message(message_id) or message, purpose, channel)
        return self.render(
            "_web/unsubscribed.html", language, message["country"], already=already, summary=summary, **context
        )

    def _opt_out_summary(self, message: dict[str, Any], purpose: str, channel: str) -> dict[str, Any]:
        """What the done page lists: kinds of message stopped and continuing (None: unknown), the notice channel."""
        state = self._state_of(message)
        if state is None:  # the message no longer holds its recipient: say what stopped, not what goes on
            stopped = opt_out_summary(_NOTHING, purpose, channel, self._marketing_channels()).stopped
            return {"stopped": [k for k in stopped if _known_kind(k)], "continuing": None, "notice_channel": None}
        person, prefs, channels = state
        summary = opt_out_summary(prefs, purpose, channel, channels)
        # Marketing "may continue" only where we could reach them at all (an address for the channel).
        reachable = {f"marketing:{c}" for c in channels if self.d.channels[c].address(person) is not None}
        return {
            "stopped": [k for k in summary.stopped if _known_kind(k)],
            "continuing": [
                k for k in summary.continuing if _known_kind(k) and (not k.startswith("marketing:") or k in reachable)
            ],
            "notice_channel": summary.notice_channel,
        }

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

    def _language(self, requested: str | None, own: str) -> str:
        """The language to show: the one asked for (``?lang=``) if offered, else the message's, else English."""
        if requested in self.languages():
            return str(requested)
        if own in self.languages():
            return own
        return "en" if "en" in self.languages() else self.languages()[0]

    # -- short codes -------------------------------------------------------------------

    async def short_code(self, request: Request) -> Response:
        code = request.path_params.get("code")
        if code is None:  # the form: /p, or /p?code=... when it is sent
            code = request.query_params.get("code")
        return await run_in_threadpool(self._short_code, request, code)

    def _short_code(self, request: Request, code: str | None) -> Response:
        if code is None:
            return self._code_form(request, None, 200)
        normalised = normalise_short_code(code)
        try:
            message_id = self.d.short_codes.resolve(normalised)
        except ExpiredToken as exc:
            message = self.d.store.message(exc.message_id, content=False) if exc.message_id else None
            raise PageError(403, "expired", message) from None
        except InvalidToken:
            return self._code_form(request, code, 404)
        token = self.d.links.preferences_token(message_id)
        location = f"{self.base_path}/preferences/{token}"
        lang = request.query_params.get("lang")
        if lang in self.languages():  # the language the customer chose on the code page
            location += f"?lang={lang}"
        return RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})

    def _code_form(self, request: Request, code: str | None, status: int) -> Response:
        """The page where the code on a letter is typed in; with ``code``, the code did not work."""
        requested = request.query_params.get("lang")
        language = (
            requested
            if requested in self.languages()
            else negotiate(request.headers.get("accept-language", ""), self.languages())
        )
        return self.render(
            "web_short_code.html",
            language,
            self.brand_country(request),
            status=status,
            action=f"{self.base_path}/p",
            switch_url=f"{self.base_path}/p",
            code=(code or "")[:40],  # shown again to correct (autoescaped; the field takes 40 characters)
            failed=code is not None,
        )

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
        return _Page(token, message, self._language(requested_language, message["language"]), message["country"])

    async def preferences(self, request: Request) -> Response:
        token = request.path_params["token"]
        language = request.query_params.get("lang")
        if request.method == "GET":
            nonce = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(18)
            saved = request.query_params.get("saved")
            response = await run_in_threadpool(self._show, token, language, nonce, saved)
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

    def _marketing_channels(self) -> list[str]:
        return [c for c in MARKETING_CHANNELS if c in self.d.channels]

    def _state_of(self, message: dict[str, Any]) -> tuple[Any, Preferences, list[str]] | None:
        """The recipient a message was sent to and their preferences now; None when it holds no recipient."""
        d = self.d
        raw = ((message.get("content") or {}).get("inputs") or {}).get("recipient")
        if not raw:
            return None
        person = d.parse_recipient(raw)
        ledger = d.consents.for_recipients([person.id]).get(person.id, ())
        notice_order = d.message_type("price_change").channels if "price_change" in d.types else ()
        channels = self._marketing_channels()
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

    def _state(self, page: _Page) -> tuple[Any, Preferences, list[str]]:
        state = self._state_of(page.message)
        if state is None:  # _resolve refuses such messages
            raise PageError(404, "link")
        return state

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
            saved=saved if saved in ("1", "0") else None,
        )

    def _save(self, token: str, language: str | None, fields: dict[str, list[str]], nonce: str, same_origin: bool):
        page = self._resolve(token, language)
        back = f"{self.base_path}/preferences/{token}?lang={page.language}"
        shown = {**page.message, "language": page.language}  # errors speak the language the form was in
        if not same_origin:
            logger.warning("preference form for message %s refused: cross-origin POST", page.message["id"])
            raise PageError(403, "csrf", shown, back=back)
        try:
            wording = self.d.links.verify_form_token("".join(fields.pop("csrf", [])), token, nonce)
        except InvalidToken:
            logger.warning("preference form for message %s refused: CSRF token missing or wrong", page.message["id"])
            raise PageError(403, "csrf", shown, back=back) from None
        person, state, channels = self._state(page)
        stop_all = fields.pop("stop_marketing", None)
        try:
            if stop_all is not None:  # the one-click "stop all marketing" button: nothing else
                if stop_all != ["on"] or fields:
                    raise PageError(400, "form", shown, back=back)
                changes = stop_all_marketing(state)
            else:
                changes = changes_from_form(state, fields, channels)
        except DispatchError:
            raise PageError(400, "form", shown, back=back) from None
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
            f"{back}&saved={1 if changes else 0}",
            status_code=303,
            headers={"Cache-Control": "no-store"},
        )


#: Preferences with nothing allowed: the summary's base when the recipient is not known.
_NOTHING = Preferences((), None, frozenset(), False, False, False, False)
_KINDS = frozenset({"newsletter", "survey", *(f"marketing:{c}" for c in MARKETING_CHANNELS)})


def _known_kind(kind: str) -> bool:
    """A kind of message the pages have words for (``_web/text.html`` ``kinds``)."""
    return kind in _KINDS


def _scope(purpose: str, channel: str) -> str:
    """The key of an opt-out's words in ``_web/text.html`` ``opt_out``: what is stopped, and on which channel."""
    if purpose in _OPT_OUT_PURPOSES:
        return purpose
    if purpose == "marketing":
        return f"marketing_{channel}" if channel in MARKETING_CHANNELS else "marketing_all"
    return "other"


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
