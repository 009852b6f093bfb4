"""The acceptance page of a written offer (SPEC §13): ``GET``/``POST /offer/<token>``, and
``GET /o/<code>``, the short code a letter prints, which leads there.

``GET`` shows the whole offer as it was sent — product, duration, every price element
with the VAT sentence, the terms, until when it can be accepted, the withdrawal right
of a household — in the offer's language (``?lang=`` switches), with two buttons,
Accept and Decline, in a plain form (no JavaScript). ``GET`` never changes anything.

``POST`` takes the button: same origin only, a CSRF token (signed, bound to this page's
token and the browser's cookie nonce, like the preference centre's) that also carries the
wording version and the content hash shown; then :meth:`dispatch.offers.Offers.accept`
or ``decline``, and a redirect back to the page, which now says what happened.

Refused: a forged or altered token (404), an expired link (403), a form from another
page or another browser (403), an offer past ``valid_until`` (410, the page says the
offer lapsed and no contract was made), a decision on an offer already decided the other
way (409). Accepting twice is answered like the first time and records nothing new.
Pages show no personal data but the masked address the offer went to.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..context import vat_for
from ..errors import DispatchError
from ..links import ExpiredToken, InvalidToken
from ..offers import OfferChanged, OfferClosed, content_hash
from ..store import now_utc
from .pages import CSRF_COOKIE, PageError, Pages
from .preferences import masked_addresses

if TYPE_CHECKING:
    from ..dispatcher import Dispatcher

logger = logging.getLogger("dispatch.web")

#: HTTP status of the page for each state an offer can no longer leave.
_CLOSED_STATUS = {"lapsed": 410, "unsent": 410, "declined": 409, "accepted": 409}


class OfferPages:
    """The acceptance page over a :class:`~dispatch.Dispatcher`, rendered through :class:`Pages`."""

    def __init__(self, dispatcher: Dispatcher, pages: Pages) -> None:
        self.d = dispatcher
        self.pages = pages
        self._wording: dict[str, str] = {}
        self._languages: list[str] | None = None

    def wording_version(self, language: str) -> str:
        """A digest of what the page shows in ``language``: its texts, its markup and the frame."""
        version = self._wording.get(language)
        if version is None:
            names = ("_web/offer.html", "web_offer.html", "web_base.html")
            version = self._wording[language] = self.pages.wording_digest("offer", language, names)
        return version

    def languages(self) -> list[str]:
        """Languages with the offer page's texts (``_web/offer.html``)."""
        if self._languages is None:
            out = []
            for language in self.pages.languages():
                env = self.d.renderer.environment(language, "FI")
                try:
                    env.get_template("_web/offer.html")
                except Exception:  # a language without the texts is not offered
                    continue
                out.append(language)
            self._languages = out
        return self._languages

    # -- the endpoint ------------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        token = request.path_params["token"]
        language = request.query_params.get("lang")
        if request.method == "GET":
            nonce = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(18)
            response = await run_in_threadpool(self._show, token, language, nonce, 200)
            if request.cookies.get(CSRF_COOKIE) != nonce:
                response.set_cookie(
                    CSRF_COOKIE,
                    nonce,
                    httponly=True,
                    samesite="strict",
                    secure=self.pages.secure_cookies,
                    path=self.pages.base_path or "/",
                )
            return response
        form = await request.form()
        fields = {key: form.getlist(key) for key in form}
        origin = request.headers.get("origin")
        same_origin = origin is None or origin in (self.pages.origin, f"{request.url.scheme}://{request.url.netloc}")
        return await run_in_threadpool(
            self._decide, token, language, fields, request.cookies.get(CSRF_COOKIE, ""), same_origin
        )

    async def short_code(self, request: Request) -> Response:
        """``GET /o/<code>``: the short code printed on a letter, on to the acceptance page."""
        return await run_in_threadpool(self._short_code, request.path_params["code"])

    def _short_code(self, code: str) -> Response:
        offers = self.d.offers
        try:
            offer_id, expires = offers.resolve_code(code)
        except ExpiredToken as exc:
            raise PageError(
                403, "expired", _where(offers.book.get(exc.message_id) if exc.message_id else None)
            ) from None
        except InvalidToken:
            raise PageError(404, "link") from None
        location = f"{self.pages.base_path}/offer/{offers.links.token(offer_id, expires)}"
        return RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})

    # -- resolving a token -------------------------------------------------------------------

    def _resolve(self, token: str) -> dict[str, Any]:
        offers = self.d.offers
        try:
            offer_id = offers.links.verify(token)
        except ExpiredToken as exc:
            offer = offers.book.get(exc.message_id) if exc.message_id else None
            raise PageError(403, "expired", _where(offer)) from None
        except InvalidToken:
            raise PageError(404, "link") from None
        offer = offers.book.get(offer_id)
        if offer is None:
            raise PageError(404, "link")
        return offer

    def _language(self, offer: dict[str, Any], requested: str | None) -> str:
        available = self.languages()
        if requested in available:
            return str(requested)
        if offer.get("language") in available:
            return str(offer["language"])
        return "en" if "en" in available else available[0]

    # -- showing -------------------------------------------------------------------------------

    def _show(self, token: str, requested: str | None, nonce: str, status: int):
        offer = self._resolve(token)
        language = self._language(offer, requested)
        now = now_utc()
        state = self.d.offers.state_at(offer, now)
        person = self.d.offers.parse_recipient(offer)
        if content_hash(offer["id"], person, offer["terms"]) != offer["content_hash"]:
            logger.error("offer %s: its stored terms do not match their content hash", offer["id"])
            raise PageError(500, "server", _where(offer))
        wording = self.wording_version(language)
        values = self.d.validate_data("sales_offer", offer["terms"]).localized((language, "en", "fi", "sv"))
        states = {s["state"]: s for s in self.d.offers.book.states(offer["id"])}
        tz = self.d.policy.countries[offer["country"]].tz
        decided = states.get(state)
        masked = masked_addresses(person)
        reached = masked.get(offer.get("channel") or "") or masked.get("email") or masked.get("sms")
        shown_to = reached.shown if reached is not None else None
        if status == 200 and state in _CLOSED_STATUS and state not in ("accepted", "declined"):
            status = _CLOSED_STATUS[state]
        base = self.pages.base_path
        return self.pages.render(
            "web_offer.html",
            language,
            offer["country"],
            status=status,
            offer_id=offer["id"],
            state=state,
            decided_on=decided["at"].astimezone(tz).date() if decided else None,
            lapses_on=offer["valid_until"].astimezone(tz).date(),
            household=person.kind != "business",
            masked=shown_to,
            vat=vat_for(person, self.d.config.vat),
            message={"channel": "web"},
            action=f"{base}/offer/{token}?lang={language}",
            switch_url=f"{base}/offer/{token}",
            languages=[(code, name) for code, name in _names(self.pages) if code in self.languages()],
            csrf=self.d.links.form_token(token, nonce, f"{wording}|{offer['content_hash']}"),
            wording_version=wording,
            **{k: values[k] for k in ("product", "price_elements", "duration", "terms_url", "valid_until", "sold_on")},
            starts_on=values.get("starts_on"),
        )

    # -- deciding ------------------------------------------------------------------------------

    def _decide(self, token: str, requested: str | None, fields: dict[str, list[str]], nonce: str, same_origin: bool):
        offer = self._resolve(token)
        where = _where(offer)
        if not same_origin:
            logger.warning("offer form for %s refused: cross-origin POST", offer["id"])
            raise PageError(403, "csrf", where)
        try:
            shown = self.d.links.verify_form_token("".join(fields.get("csrf", [])), token, nonce)
        except InvalidToken:
            logger.warning("offer form for %s refused: CSRF token missing or wrong", offer["id"])
            raise PageError(403, "csrf", where) from None
        wording, _, digest = shown.partition("|")
        decision = fields.get("decision") or []
        if decision not in (["accept"], ["decline"]):
            raise PageError(400, "form", where)
        offers = self.d.offers
        language = self._language(offer, requested)
        try:
            if decision == ["accept"]:
                offers.accept(offer["id"], content_hash=digest, wording_version=wording)
            else:
                offers.decline(offer["id"], wording_version=wording)
        except OfferClosed as exc:
            logger.info("offer %s: %s refused, the offer is %s", offer["id"], decision[0], exc.state)
            return self._show(token, language, nonce, _CLOSED_STATUS.get(exc.state, 409))
        except OfferChanged:
            logger.warning("offer %s: %s refused, the offer shown is not the offer sent", offer["id"], decision[0])
            raise PageError(409, "form", where) from None
        except DispatchError:
            raise PageError(400, "form", where) from None
        return RedirectResponse(
            f"{self.pages.base_path}/offer/{token}?lang={language}",
            status_code=303,
            headers={"Cache-Control": "no-store"},
        )


def _where(offer: dict[str, Any] | None) -> dict[str, Any] | None:
    """What an error page needs to speak the offer's language."""
    if offer is None or not offer.get("language"):
        return None
    return {"language": offer["language"], "country": offer["country"]}


def _names(pages: Pages) -> list[tuple[str, str]]:
    from .pages import LANGUAGE_NAMES

    return [(code, LANGUAGE_NAMES[code]) for code in pages.languages()]


__all__ = ["OfferPages"]
