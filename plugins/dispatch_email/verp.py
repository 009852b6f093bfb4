"""VERP: a per-message envelope sender that names the message (SPEC §6, §10).

With ``[channels.email] return_path = "bounces@example.fi"`` the message with id
``01JABC...`` is sent ``MAIL FROM:<bounces+01JABC...-K7QX2MVA4D@example.fi>``. Whatever
comes back to that address — a DSN, a plain bounce, an auto-reply — is addressed to
the message it concerns, whichever MTA wrote it.

The address carries authority (a bounce to it suppresses the address the message went
to; a complaint withdraws consent), and a customer sees their own message's VERP
address in its ``Return-Path``. So the id is followed by a keyed tag: the first 50
bits of HMAC-SHA-256(key, message id), in base32. Only dispatch, which holds the key
(derived from the deployment's link secret), can make the address of a message; a
customer who knows their own cannot write a neighbour's.

Parsing back is strict: the local part must be exactly ``<local>+<message id>-<tag>``
with a well-formed dispatch message id (a 26-character ULID, any case), a tag that
verifies (compared in constant time), and the domain must match (case-insensitively).
Anything else is not ours.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from dispatch.errors import ConfigError

#: A dispatch message id: a ULID in Crockford base32 (first character 0-7: 128 bits).
MESSAGE_ID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}", re.IGNORECASE)
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*/=?^_`{|}~.-]{1,48}$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})+$")
#: Characters of the keyed tag: 10 base32 characters are 50 bits of the HMAC.
TAG_LENGTH = 10


def verp_tag(key: bytes, message_id: str) -> str:
    """The keyed tag of ``message_id``: HMAC-SHA-256 under ``key``, first 50 bits, base32 (upper case)."""
    digest = hmac.new(key, message_id.upper().encode("ascii"), hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii")[:TAG_LENGTH]


def is_message_id(value: str) -> bool:
    """True when ``value`` is a well-formed dispatch message id (a ULID)."""
    return MESSAGE_ID.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class ReturnPath:
    """The configured bounce mailbox ``local@domain`` and its per-message VERP addresses."""

    local: str
    domain: str
    #: Returns the key the tags are made with (called when first needed: it may live in the store).
    key: Callable[[], bytes] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, value: str, key: Callable[[], bytes] | None = None) -> ReturnPath:
        """``bounces@example.fi`` → ``ReturnPath("bounces", "example.fi")``; raises :class:`ConfigError`.

        The local part must be plain ASCII without ``+`` (the separator VERP adds) and
        the domain an ASCII host name (write an internationalised one in its ``xn--`` form).
        """
        local, at, domain = value.strip().strip("<>").rpartition("@")
        if not at or not _LOCAL.match(local) or "+" in local or local.startswith(".") or local.endswith("."):
            raise ConfigError(
                f"channels.email.return_path: {value!r} must be local@domain with a plain ASCII local part without '+'"
            )
        if not _DOMAIN.match(domain):
            raise ConfigError(f"channels.email.return_path: {value!r} has no valid ASCII domain")
        return cls(local, domain.lower(), key)

    @property
    def address(self) -> str:
        """The bare mailbox (feedback loops and ARF reports are often sent here)."""
        return f"{self.local}@{self.domain}"

    def _key(self) -> bytes:
        if self.key is None:
            raise ConfigError("channels.email.return_path: no key to tag VERP addresses with")
        return self.key()

    def for_message(self, message_id: str) -> str:
        """The envelope sender of one message: ``local+<message_id>-<tag>@domain``."""
        if not is_message_id(message_id):
            raise ValueError(f"{message_id!r} is not a dispatch message id")
        message_id = message_id.upper()
        return f"{self.local}+{message_id}-{verp_tag(self._key(), message_id)}@{self.domain}"

    def accepts(self, address: str) -> bool:
        """True for the bare mailbox and for a VERP address of this return path whose tag verifies."""
        return self.message_id(address) is not None or self._is_bare(address)

    def message_id(self, address: str) -> str | None:
        """The message id in a VERP address of this return path (upper case) whose tag verifies, or None."""
        local, at, domain = address.strip().strip("<>").rpartition("@")
        if not at or domain.lower() != self.domain:
            return None
        base, plus, suffix = local.rpartition("+")
        message_id, dash, tag = suffix.rpartition("-")
        if not plus or not dash or base.lower() != self.local.lower() or not is_message_id(message_id):
            return None
        message_id = message_id.upper()
        if len(tag) != TAG_LENGTH or not hmac.compare_digest(
            tag.upper().encode("ascii", "replace"), verp_tag(self._key(), message_id).encode("ascii")
        ):
            return None
        return message_id

    def _is_bare(self, address: str) -> bool:
        local, at, domain = address.strip().strip("<>").rpartition("@")
        return bool(at) and domain.lower() == self.domain and local.lower() == self.local.lower()


__all__ = ["MESSAGE_ID", "TAG_LENGTH", "ReturnPath", "is_message_id", "verp_tag"]
