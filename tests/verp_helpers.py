"""VERP addresses in tests: the keyed tag of :mod:`dispatch_email.verp` under a fixed test key.

The fixtures under ``fixtures/inbound`` are returned mail as MTAs write it, addressed to
``bounces+<message id>@example.fi``; :func:`tagged` gives each such address the tag a
deployment with :data:`TEST_KEY` would have put in it.
"""

from __future__ import annotations

import re

from dispatch_email.verp import ReturnPath

TEST_KEY = b"dispatch tests: verp key"
_UNTAGGED = re.compile(rb"(bounces)\+([0-7][0-9A-HJKMNP-TV-Z]{25})@(example\.fi)", re.IGNORECASE)


def return_path(value: str = "bounces@example.fi", key: bytes = TEST_KEY) -> ReturnPath:
    """A return path whose tags are made with ``key``."""
    return ReturnPath.parse(value, key=lambda: key)


def verp(message_id: str, key: bytes = TEST_KEY) -> str:
    """The tagged VERP address of ``message_id`` under ``bounces@example.fi``."""
    return return_path(key=key).for_message(message_id)


def tagged(raw: bytes, key: bytes = TEST_KEY) -> bytes:
    """``raw`` with every untagged ``bounces+<id>@example.fi`` given its tag (the id's case kept as written)."""

    def tag(match: re.Match[bytes]) -> bytes:
        local = verp(match.group(2).decode(), key).partition("@")[0]
        return f"{match.group(1).decode()}+{match.group(2).decode()}{local[-11:]}@{match.group(3).decode()}".encode()

    return _UNTAGGED.sub(tag, raw)


def tag_address(address: str, key: bytes = TEST_KEY) -> str:
    """:func:`tagged` for one address."""
    return tagged(address.encode(), key).decode()
