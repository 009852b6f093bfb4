"""VERP: a per-message envelope sender that names the message (SPEC §6, §10).

With ``[channels.email] return_path = "bounces@example.fi"`` the message with id
``01JABC...`` is sent ``MAIL FROM:<bounces+01JABC...@example.fi>``. Whatever comes
back to that address — a DSN, a plain bounce, an auto-reply — is addressed to the
message it concerns, whichever MTA wrote it.

Parsing back is strict: the local part must be exactly ``<local>+<message id>``
with a well-formed dispatch message id (a 26-character ULID, any case) and the
domain must match (case-insensitively). Anything else is not ours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dispatch.errors import ConfigError

#: A dispatch message id: a ULID in Crockford base32 (first character 0-7: 128 bits).
MESSAGE_ID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}", re.IGNORECASE)
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*/=?^_`{|}~.-]{1,48}$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})+$")


def is_message_id(value: str) -> bool:
    """True when ``value`` is a well-formed dispatch message id (a ULID)."""
    return MESSAGE_ID.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class ReturnPath:
    """The configured bounce mailbox ``local@domain`` and its per-message VERP addresses."""

    local: str
    domain: str

    @classmethod
    def parse(cls, value: str) -> ReturnPath:
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
        return cls(local, domain.lower())

    @property
    def address(self) -> str:
        """The bare mailbox (feedback loops and ARF reports are often sent here)."""
        return f"{self.local}@{self.domain}"

    def for_message(self, message_id: str) -> str:
        """The envelope sender of one message: ``local+<message_id>@domain``."""
        if not is_message_id(message_id):
            raise ValueError(f"{message_id!r} is not a dispatch message id")
        return f"{self.local}+{message_id}@{self.domain}"

    def accepts(self, address: str) -> bool:
        """True for the bare mailbox and for ``local+<message id>@domain`` (any case in the domain)."""
        return self.message_id(address) is not None or self._is_bare(address)

    def message_id(self, address: str) -> str | None:
        """The message id in a VERP address of this return path (upper case), or None."""
        local, at, domain = address.strip().strip("<>").rpartition("@")
        if not at or domain.lower() != self.domain:
            return None
        base, plus, tag = local.rpartition("+")
        if not plus or base.lower() != self.local.lower() or not is_message_id(tag):
            return None
        return tag.upper()

    def _is_bare(self, address: str) -> bool:
        local, at, domain = address.strip().strip("<>").rpartition("@")
        return bool(at) and domain.lower() == self.domain and local.lower() == self.local.lower()


__all__ = ["MESSAGE_ID", "ReturnPath", "is_message_id"]
