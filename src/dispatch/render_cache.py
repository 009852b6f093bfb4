"""Render once per variant, fill in each recipient: what makes bulk rendering fast.

A campaign sends one message type with one data set to many people. Most of each
message is the same for everyone who shares a language, country and a few
low-cardinality facts (kind, status...); only names, addresses, ids and links
differ. So a message is rendered once per *variant* with :class:`Placeholder`
values standing in for those per-person strings, and for every recipient the
placeholders in the cached output are replaced by the person's real values
(HTML-escaped in HTML parts).

This is only correct if the templates treat those values as opaque text, so a
placeholder refuses everything but being printed, concatenated (``~``, ``+``,
``join``) or escaped: any string method, comparison, ``len()``, indexing,
``str()`` or formatting raises :class:`Uncacheable`, and the part is then
rendered normally (and that template is not tried from the cache again). After
the substitution, no placeholder mark may be left in the output — a
transformed placeholder would leave one, and the part is rendered normally
then too. Templates that use plugin filters are never cached (their code is not
ours to vet). ``[templates] render_cache = false`` switches all of this off.

Data must not be able to forge a placeholder (text in a data field that turns into
each person's name after the substitution), so every token carries a random nonce
drawn when the process starts, which no input can know. Text in the output that
merely looks like a mark (a private-use character from the data) makes :func:`split`
refuse the variant, and that part is rendered normally.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from .errors import TemplateLimitExceeded

#: Private-use characters: not whitespace, not line breaks, not changed by escaping or case mapping.
START, END = "\ue000", "\ue001"
_LETTERS = "qXzKwJvYmHtRbNpL"


class Uncacheable(Exception):
    """A template did something with a per-recipient value other than print it."""


def _refuse(self, *args: Any, **kwargs: Any) -> Any:
    raise Uncacheable("a per-recipient value was transformed")


class Placeholder(str):
    """Opaque stand-in text for a per-recipient value (see the module docstring)."""

    __slots__ = ()

    def __html__(self) -> Markup:
        return Markup(str.__str__(self))

    def __bool__(self) -> bool:
        return True

    def __hash__(self) -> int:
        return str.__hash__(self)

    def __add__(self, other: Any) -> Placeholder:
        if not isinstance(other, str):
            raise Uncacheable("a per-recipient value was added to a non-string")
        return Placeholder(str.__add__(str.__str__(self), str.__str__(other)))

    def __radd__(self, other: Any) -> Placeholder:
        if not isinstance(other, str):
            raise Uncacheable("a per-recipient value was added to a non-string")
        return Placeholder(str.__add__(str.__str__(other), str.__str__(self)))

    def __repr__(self) -> str:
        return f"Placeholder({str.__repr__(self)})"


_ALLOWED = {
    "__new__",
    "__init__",
    "__repr__",
    "__hash__",
    "__bool__",
    "__html__",
    "__add__",
    "__radd__",
    "__getattribute__",
    "__setattr__",
    "__delattr__",
    "__class__",
    "__init_subclass__",
    "__subclasshook__",
    "__dir__",
    "__sizeof__",
    "__reduce__",
    "__reduce_ex__",
    "__getnewargs__",
    "__doc__",
    "__slots__",
    "__module__",
    "__qualname__",
    "__ne__",
}
for _name in dir(str):
    if _name not in _ALLOWED and callable(getattr(str, _name)):
        setattr(Placeholder, _name, _refuse)
Placeholder.__ne__ = _refuse  # type: ignore[assignment,method-assign]


def concat(values: Iterable[Any], autoescape: bool) -> str:
    """Jinja's ``~``: a placeholder anywhere keeps the result a placeholder."""
    parts = list(values)
    if not any(isinstance(p, Placeholder) for p in parts):
        from jinja2.runtime import markup_join, str_join

        return markup_join(parts) if autoescape else str_join(parts)
    out = []
    for part in parts:
        if isinstance(part, Placeholder):
            out.append(str.__str__(part))
        elif autoescape and not hasattr(part, "__html__"):
            out.append(str(escape(part)))
        else:
            out.append(str(part))
    return Placeholder("".join(out))


def join(values: Iterable[Any], separator: str = "", attribute: Any = None) -> str:
    """The ``join`` filter, keeping placeholders opaque (no attribute lookups on them)."""
    parts = list(values)
    if attribute is not None or not any(isinstance(p, Placeholder) for p in parts):
        raise UseDefault
    return Placeholder(str(separator).join(str.__str__(p) if isinstance(p, Placeholder) else str(p) for p in parts))


class UseDefault(Exception):
    """Fall back to Jinja's own join filter."""


def _token(index: int) -> str:
    letters = []
    while True:
        index, rest = divmod(index, len(_LETTERS))
        letters.append(_LETTERS[rest])
        if index == 0:
            return "".join(letters) + "a"  # always a lowercase and an uppercase letter


#: Random per process: a token is START + nonce + index letters + END (see the module docstring).
_NONCE = "".join(secrets.choice(_LETTERS) for _ in range(16))
_SPLIT = re.compile(f"({START}{_NONCE}[{_LETTERS}]+a{END})")


def split(template_output: str) -> list[str] | None:
    """Literal text and tokens, alternating (tokens at odd positions); None if a mark was mangled."""
    pieces = _SPLIT.split(template_output)
    if any(START in p or END in p for p in pieces[0::2]):
        return None
    return pieces


def fill(pieces: list[str], values: Mapping[str, str], *, html: bool) -> str | None:
    """Join the pieces with each token replaced by its real value; None for a token without a value."""
    out = pieces[:]
    for i in range(1, len(out), 2):
        value = values.get(out[i])
        if value is None:
            return None
        out[i] = str(escape(value)) if html else value
    return "".join(out)


#: Context fields that differ per person (masked) — the rest of the context is part of the variant key.
RECIPIENT_TEXT = ("id", "name", "email", "phone")
ADDRESS_TEXT = ("name", "street", "postal_code", "city")
MESSAGE_TEXT = ("id", "unsubscribe_url")
#: Per-message links at the top level of the context (masked like MESSAGE_TEXT).
TOP_TEXT = ("unsubscribe_url", "preferences_url")
#: Top-level values that follow from the person (VAT from the postal code): part of the variant key.
TOP_KEYED = ("vat",)
MAX_VARIANTS = 4096


_TOKENS = [START + _NONCE + _token(i) + END for i in range(64)]


def mask_context(context: Mapping[str, Any]) -> tuple[tuple, dict[str, str]]:
    """The variant key of a context, and token → real value for its per-person strings.

    Tokens are handed out in a fixed order to the non-empty per-person fields, so
    every context of one variant gets the same tokens.
    """
    values: dict[str, str] = {}
    key: list[Any] = []
    recipient = context["recipient"]
    for field in RECIPIENT_TEXT:
        value = recipient.get(field)
        key.append(bool(value))
        if value:
            values[_TOKENS[len(values)]] = value
    address = recipient.get("address")
    if address:
        for field in ADDRESS_TEXT:
            value = address.get(field)
            key.append(bool(value))
            if value:
                values[_TOKENS[len(values)]] = value
        key.append(address.get("country"))
    else:
        key.append(None)
    for k, v in recipient.items():
        if k not in RECIPIENT_TEXT and k != "address":
            key.append(v)
    message = context["message"]
    for field in MESSAGE_TEXT:
        value = message.get(field)
        key.append(bool(value))
        if value:
            values[_TOKENS[len(values)]] = value
    for k, v in message.items():
        if k not in MESSAGE_TEXT:
            key.append(v)
    for field in TOP_TEXT:
        value = context.get(field)
        key.append(bool(value))
        if value:
            values[_TOKENS[len(values)]] = value
    for field in TOP_KEYED:
        key.append(context.get(field))
    key.append(id(context["company"]))
    return tuple(key), values


def masked_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """The context with each per-person string replaced by its placeholder (same order as :func:`mask_context`)."""
    tokens = iter(_TOKENS)

    def mask(value: Any) -> Any:
        return Placeholder(next(tokens)) if value else value

    masked = dict(context)
    recipient = dict(context["recipient"])
    for field in RECIPIENT_TEXT:
        recipient[field] = mask(recipient.get(field))
    if recipient.get("address"):
        address = dict(recipient["address"])
        for field in ADDRESS_TEXT:
            address[field] = mask(address.get(field))
        recipient["address"] = address
    message = dict(context["message"])
    for field in MESSAGE_TEXT:
        message[field] = mask(message.get(field))
    masked["recipient"] = recipient
    masked["message"] = message
    for field in TOP_TEXT:
        if field in context:
            masked[field] = mask(context.get(field))
    return masked


def _plain_values(values: Mapping[str, str]) -> bool:
    """Values that whitespace clean-up would not touch, so it can run before they are filled in."""
    return all("\n" not in v and "\r" not in v and v == v.strip() for v in values.values())


class Rendered(dict):
    """Rendered parts; when every part came from one cached variant, ``compact`` says how to
    rebuild them: ``{"v": variant id, "t": token values, "ta": tidy after filling}``."""

    compact: dict[str, Any] | None = None


@dataclass
class Variant:
    """One rendered variant: per part, the pieces (tidied, and raw for values that need tidying)."""

    id: str
    record: dict[str, dict[str, Any]]


def assemble(
    record: Mapping[str, Mapping[str, Any]], values: Mapping[str, str], tidy_after: bool, tidy
) -> dict[str, str]:
    """Rebuild the parts of a message from its variant record and its own values."""
    out = {}
    for part, spec in record.items():
        pieces = spec["raw"] if tidy_after else spec["tidied"]
        text = fill(pieces, values, html=spec["html"])
        if text is None:
            raise ValueError(f"variant part {part} has a token without a value")
        out[part] = tidy(text, spec["filename"]) if tidy_after else text
    return out


class VariantRenderer:
    """Renders through the variant cache, falling back to a plain render part by part."""

    def __init__(self, renderer: Any) -> None:
        self.renderer = renderer
        self.refused: set[tuple[str, str]] = set()
        #: Complete variants by id, for the store to keep next to the messages that use them.
        self.variants: dict[str, dict[str, Any]] = {}

    def render(
        self,
        message_type: str,
        parts: Mapping[str, str],
        language: str,
        country: str,
        context: Mapping[str, Any],
        cache: dict,
        finalize: Callable[[str, str], str] | None = None,
        *,
        version: str = "",
    ) -> Rendered:
        """The parts for one message: from the cached variant, filled in, where possible.

        ``finalize(part, text)`` (the channel's :meth:`~dispatch.channels.Channel.finalize_part`)
        runs once per variant, on its text with the placeholders in it. ``version`` is the
        template set's version (SPEC §5): a variant rendered from other files is never reused.
        """
        variant_key, values = mask_context(context)
        key = (message_type, id(parts), language, country, version, variant_key)
        variant = cache.get(key)
        if variant is None:
            variant = self._render_variant(message_type, parts, language, country, masked_context(context), finalize)
            if len(cache) >= MAX_VARIANTS:
                cache.clear()
            cache[key] = variant
        tidy_after = not _plain_values(values)
        out = Rendered()
        plain: dict[str, str] = {}
        for part, filename in parts.items():
            spec = variant.record.get(part)
            text = None
            if spec is not None:
                text = fill(spec["raw"] if tidy_after else spec["tidied"], values, html=spec["html"])
                if text is not None and tidy_after:
                    text = self.renderer.tidy(text, filename)
                    if finalize is not None:
                        text = finalize(part, text)
            if text is None:
                plain[part] = filename
            else:
                out[part] = text
        if plain:
            rendered = self.renderer.render_parts(message_type, plain, language, country, context)
            out.update({p: finalize(p, t) if finalize else t for p, t in rendered.items()})
        elif variant.id and not (tidy_after and finalize is not None):
            # (Rebuilding from the variant re-applies whitespace clean-up but not ``finalize``,
            # so parts that needed both are stored whole.)
            used = {
                token: values[token]
                for spec in variant.record.values()
                for token in spec["raw"][1::2]
                if token in values
            }
            out.compact = {"v": variant.id, "t": used, "ta": tidy_after}
        ordered = Rendered((part, out[part]) for part in parts)
        ordered.compact = out.compact
        return ordered

    def _render_variant(self, message_type, parts, language, country, masked, finalize=None) -> Variant:
        record: dict[str, dict[str, Any]] = {}
        complete = True
        for part, filename in parts.items():
            name = self.renderer.template_name(message_type, filename)
            if (language, name) in self.refused or self.renderer.uses_plugin_filters(language, name):
                complete = False
                continue
            try:
                raw = self.renderer.render_parts(message_type, {part: filename}, language, country, masked, tidy=False)[
                    part
                ]
            except Uncacheable:
                self.refused.add((language, name))
                complete = False
                continue
            except TemplateLimitExceeded:
                raise  # rendering it again with the real values would only spend the budget twice
            except Exception:  # the plain render raises the real error, with the real values
                complete = False
                continue
            tidied_text = self.renderer.tidy(raw, filename)
            if finalize is not None:
                tidied_text = finalize(part, tidied_text)
            pieces, tidied = split(raw), split(tidied_text)
            if pieces is None or tidied is None:
                complete = False
                continue
            record[part] = {
                "raw": pieces,
                "tidied": tidied,
                "html": filename.endswith((".html", ".htm")),
                "filename": filename,
            }
        variant_id = ""
        if complete:
            digest = hashlib.sha256(json.dumps(record, sort_keys=True, ensure_ascii=False).encode("utf-8"))
            variant_id = digest.hexdigest()[:32]
            if len(self.variants) >= MAX_VARIANTS:
                self.variants.clear()
            self.variants[variant_id] = record
        return Variant(variant_id, record)
