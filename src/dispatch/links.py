"""Signed links: unsubscribe and preference URLs carry a MAC so they cannot be forged.

Tokens are short (the message id, an expiry where there is one, and a 96-bit
HMAC-SHA256 tag) because they go into SMS, where every character counts. The
message id leads to the recipient, channel and purpose in the store; nothing
personal is in the URL.

Only the canonical form of a token verifies: a token is re-signed from what it
carries and must equal, character for character, what was presented (base64
decoders drop characters outside their alphabet, so a token with ``é``, ``==``
or ``'();`` appended would otherwise still pass).

Letters get a short code instead (``/p/K7MQ2XWD9H``), since nobody types a
60-character token from paper: :class:`ShortCodes` keeps it in the store with
its message id and expiry.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from itsdangerous import BadSignature
from itsdangerous.signer import HMACAlgorithm, Signer

from .errors import InputError

if TYPE_CHECKING:
    from .store import Store

__all__ = [
    "SHORT_CODE_ALPHABET",
    "BadSignature",
    "ExpiredToken",
    "ExpiringTokens",
    "InvalidToken",
    "LinkSigner",
    "ShortCodes",
]

#: Letters and digits nobody confuses when reading them off paper: no 0/O, 1/I/L.
SHORT_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
SHORT_CODE_LENGTH = 10  # 31**10: about 49.5 bits
_SHORT_CODE_KEY = "short:"


class InvalidToken(InputError):
    """A link token whose signature does not verify, or that is not in its canonical form."""


class ExpiredToken(InvalidToken):
    """A link token that was valid but whose lifetime is over (``message_id``: the message it was for)."""

    def __init__(self, message: str, message_id: str | None = None) -> None:
        super().__init__(message)
        self.message_id = message_id


class _ShortHMAC(HMACAlgorithm):
    """HMAC-SHA256 cut to 96 bits: plenty against forgery of a single link, short in an SMS."""

    def get_signature(self, key: bytes, value: bytes) -> bytes:
        return super().get_signature(key, value)[:12]


def _now(now: datetime | None) -> datetime:
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        raise InputError("now must be timezone-aware")
    return moment


def _b36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


class ExpiringTokens:
    """Tokens ``<subject>.<expiry, base 36>.<96-bit tag>`` that verify in canonical form and until they expire.

    ``what`` names the link in errors ("preference link has expired"). The subject is an id (a
    message's, an offer's): no personal data, no dots.
    """

    def __init__(self, secret: str, salt: str, what: str) -> None:
        if not secret:
            raise InputError("link secret must not be empty")
        self.what = what
        self._signer = Signer(secret, salt=salt, algorithm=_ShortHMAC(hashlib.sha256))

    def sign(self, subject: str, expires: datetime) -> str:
        """A token for ``subject`` that stops working at ``expires``."""
        return self._signer.sign(f"{subject}.{_b36(int(expires.timestamp()))}").decode("ascii")

    def verify(self, token: str, now: datetime | None = None) -> str:
        """The subject of a valid token; :class:`ExpiredToken` once it expired, :class:`InvalidToken` if forged."""
        value = _unsign(self._signer, token, self.what)
        subject, _, expires = value.rpartition(".")
        try:
            moment = datetime.fromtimestamp(int(expires, 36), UTC)
        except (ValueError, OverflowError, OSError):
            raise InvalidToken(f"{self.what} link is not valid") from None
        if not subject or "." in subject:
            raise InvalidToken(f"{self.what} link is not valid")
        if _now(now) >= moment:
            raise ExpiredToken(f"{self.what} link has expired", subject)
        return subject


class LinkSigner:
    """Builds and verifies the signed links put into messages and the tokens of the forms they lead to.

    - ``/u/<token>``: unsubscribe (RFC 8058 one-click target); never expires, because
      the law wants an opt-out to keep working for as long as the message exists;
    - ``/preferences/<token>``: the preference page; expires after ``preferences_lifetime``;
    - form tokens bind a CSRF nonce to one preference-page token.
    """

    def __init__(self, secret: str, base_url: str, *, preferences_lifetime: timedelta = timedelta(days=90)) -> None:
        if not secret:
            raise InputError("link secret must not be empty")
        if preferences_lifetime <= timedelta(0):
            raise InputError("the preference link lifetime must be positive")
        self.base_url = base_url.rstrip("/")
        self.preferences_lifetime = preferences_lifetime
        algorithm = _ShortHMAC(hashlib.sha256)
        self._unsubscribe = Signer(secret, salt="dispatch.unsubscribe", algorithm=algorithm)
        self._preferences = ExpiringTokens(secret, "dispatch.preferences", "preference")
        self._form = Signer(secret, salt="dispatch.form", algorithm=algorithm)

    # -- unsubscribe ---------------------------------------------------------------------

    def unsubscribe_token(self, message_id: str) -> str:
        return self._unsubscribe.sign(message_id).decode("ascii")

    def unsubscribe_url(self, message_id: str) -> str:
        """The one-click unsubscribe URL for a message (RFC 8058 target)."""
        return f"{self.base_url}/u/{self.unsubscribe_token(message_id)}"

    def verify_unsubscribe(self, token: str) -> str:
        """The message id in a token; raises :class:`InvalidToken` when it was forged or altered."""
        message_id = _unsign(self._unsubscribe, token, "unsubscribe")
        if "." in message_id:
            raise InvalidToken("unsubscribe link is not valid")
        return message_id

    # -- preference page -------------------------------------------------------------------

    def preferences_token(self, message_id: str, now: datetime | None = None) -> str:
        """A token for the preference page of the recipient of ``message_id``, valid from ``now`` on."""
        return self._preferences.sign(message_id, _now(now) + self.preferences_lifetime)

    def preferences_url(self, message_id: str, now: datetime | None = None) -> str:
        """The preference-page URL to put in the footer of a message (expires, see ``[links]``)."""
        return f"{self.base_url}/preferences/{self.preferences_token(message_id, now)}"

    def verify_preferences(self, token: str, now: datetime | None = None) -> str:
        """The message id in a preference token.

        Raises :class:`ExpiredToken` when its lifetime is over, :class:`InvalidToken`
        when it was forged, altered or is not in its canonical form.
        """
        return self._preferences.verify(token, now)

    # -- forms -------------------------------------------------------------------------------

    def form_token(self, page_token: str, nonce: str, wording_version: str) -> str:
        """A CSRF token for a form on the page ``page_token``: signs the cookie's ``nonce`` and the wording shown."""
        return self._form.sign(_form_value(page_token, nonce, wording_version)).decode("ascii")

    def verify_form_token(self, form_token: str, page_token: str, nonce: str) -> str:
        """The wording version a valid form token carries; raises :class:`InvalidToken` otherwise.

        Valid means: signed by us, for this page token, and for the nonce in the
        caller's cookie (a signed double-submit token).
        """
        value = _unsign(self._form, form_token, "form")
        parts = value.split("|", 2)
        if len(parts) != 3 or not nonce or not hmac.compare_digest(value, _form_value(page_token, nonce, parts[2])):
            raise InvalidToken("form token does not belong to this page")
        return parts[2]


def _form_value(page_token: str, nonce: str, wording_version: str) -> str:
    page_hash = hashlib.sha256(page_token.encode("utf-8")).hexdigest()[:16]
    nonce_hash = hashlib.sha256(nonce.encode("utf-8")).hexdigest()[:16]
    return f"{page_hash}|{nonce_hash}|{wording_version}"


def _unsign(signer: Signer, token: str, what: str) -> str:
    """Verify ``token`` and accept only the exact form :meth:`Signer.sign` produces."""
    try:
        raw = token.encode("ascii")
        value = signer.unsign(raw)
    except (BadSignature, UnicodeError):
        raise InvalidToken(f"{what} link is not valid") from None
    if not hmac.compare_digest(signer.sign(value), raw):
        raise InvalidToken(f"{what} link is not valid")
    try:
        return value.decode("ascii")
    except UnicodeError:
        raise InvalidToken(f"{what} link is not valid") from None


class ShortCodes:
    """Short, expiring codes for links printed on paper (``/p/K7MQ2XWD9H``).

    A code is random (10 characters of :data:`SHORT_CODE_ALPHABET`), kept in the
    store with the message id and its expiry; it leads to the preference page of
    that message's recipient. Only the exact code, upper case, is accepted.
    """

    def __init__(self, store: Store, base_url: str, *, lifetime: timedelta = timedelta(days=365)) -> None:
        if lifetime <= timedelta(0):
            raise InputError("the short code lifetime must be positive")
        self.store = store
        self.base_url = base_url.rstrip("/")
        self.lifetime = lifetime

    def issue(self, message_id: str, now: datetime | None = None) -> str:
        """A new code for ``message_id``, valid for :attr:`lifetime` from ``now``."""
        expires = (_now(now) + self.lifetime).astimezone(UTC).isoformat()
        record = json.dumps({"message_id": message_id, "expires": expires}, separators=(",", ":"))
        for _ in range(8):
            code = "".join(secrets.choice(SHORT_CODE_ALPHABET) for _ in range(SHORT_CODE_LENGTH))
            if self.store.setting(_SHORT_CODE_KEY + code, lambda: record) == record:
                return code
        raise RuntimeError("could not find a free short code")  # pragma: no cover - 31**10 codes

    def url(self, message_id: str, now: datetime | None = None) -> str:
        """A new short URL for the preference page of ``message_id`` (for letters)."""
        return f"{self.base_url}/p/{self.issue(message_id, now)}"

    def resolve(self, code: str, now: datetime | None = None) -> str:
        """The message id of a code; raises :class:`InvalidToken` (unknown) or :class:`ExpiredToken`."""
        if len(code) != SHORT_CODE_LENGTH or any(c not in SHORT_CODE_ALPHABET for c in code):
            raise InvalidToken("short code is not valid")
        raw = self.store.setting(_SHORT_CODE_KEY + code)
        if raw is None:
            raise InvalidToken("short code is not known")
        record = json.loads(raw)
        if _now(now) >= datetime.fromisoformat(record["expires"]):
            raise ExpiredToken("short code has expired", str(record["message_id"]))
        return str(record["message_id"])


class SignedAsOf:
    """A :class:`LinkSigner` that signs every expiring link as of one moment (previews: the same
    message always renders the same links)."""

    def __init__(self, signer: LinkSigner, moment: datetime) -> None:
        self.signer = signer
        self.moment = moment

    def unsubscribe_url(self, message_id: str) -> str:
        return self.signer.unsubscribe_url(message_id)

    def preferences_url(self, message_id: str, now: datetime | None = None) -> str:
        return self.signer.preferences_url(message_id, now=self.moment)
