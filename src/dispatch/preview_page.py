"""``dispatch preview``: a message in every language side by side, as the customer sees it.

:func:`build_preview` renders a message type for each (channel, language) with
sample data or the data given, the way :meth:`Dispatcher.preview` does (nothing
is decided or recorded), and asks each channel how its message looks: the email's
sender (:meth:`Channel.preview_headers`), a letter's pages as PNG images
(:meth:`Channel.preview_images`). An SMS gets its segment count
(:func:`dispatch.segments.count_segments`). :func:`render_page` makes one
self-contained HTML page of it (``templates/_shared/preview.html``): inline CSS,
images as ``data:`` URIs, each email's HTML in a sandboxed ``<iframe srcdoc>``,
no JavaScript and nothing fetched from the network.

Bad input — an unknown type, channel, language or country, data that does not
fit the type — raises a :class:`~dispatch.errors.DispatchError` before anything
is rendered. A template that fails in one language is shown as that cell's
error, so a translator sees the other languages still.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .checks import synthetic_data
from .context import needs_unsubscribe
from .errors import DispatchError, InputError, UnknownChannel, UnsupportedLanguage
from .links import LinkSigner
from .models import LANGUAGES, OutgoingMessage
from .policy import effective_category
from .render import SHARED
from .samples import PREVIEW_VARIANTS, apply_variant, sample_data, sample_recipient
from .segments import count_segments

if TYPE_CHECKING:
    from .dispatcher import Dispatcher

#: The template of the page, under ``templates/_shared/``.
PAGE_TEMPLATE = "preview.html"
#: The country a language's sample recipient lives in when none is given.
HOME_COUNTRY = {"fi": "FI", "sv": "SE", "nb": "NO", "en": "NO"}
#: The message id the preview renders with (its links are signed with a throwaway key).
PREVIEW_ID = "PREVIEW0000000000000000000"
LANGUAGE_NAMES = {"fi": "suomi", "sv": "svenska", "nb": "norsk bokmål", "en": "English"}


@dataclass
class Cell:
    """One channel in one language: the rendered parts and what the channel says about them."""

    channel: str
    language: str
    parts: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    #: PNG images of the message (a letter's pages).
    images: list[bytes] = field(default_factory=list)
    #: SMS: characters, encoding, units and segments.
    sms: dict[str, Any] = field(default_factory=dict)
    #: Problems the channel reports (too many segments...) and missing translations.
    warnings: list[str] = field(default_factory=list)
    #: The render failed: why (the other cells are still shown).
    error: str | None = None


@dataclass
class Column:
    """One language, and the country and locale its messages are rendered for."""

    language: str
    country: str
    locale: str


@dataclass
class Preview:
    """A message type rendered for each channel (rows) and language (columns)."""

    message_type: str
    description: str
    data_source: str
    columns: list[Column]
    channels: list[str]
    cells: dict[tuple[str, str], Cell]
    made_at: datetime
    #: The country asked for (None: each language's own).
    country: str | None = None
    #: The variants applied (keys of :data:`dispatch.samples.PREVIEW_VARIANTS`).
    variants: list[str] = field(default_factory=list)

    def cell(self, channel: str, language: str) -> Cell:
        """The cell of ``channel`` in ``language``."""
        return self.cells[(channel, language)]


def build_preview(
    d: Dispatcher,
    message_type: str,
    *,
    channels: Sequence[str] = (),
    languages: Sequence[str] = (),
    country: str | None = None,
    recipient: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    data_source: str | None = None,
    now: datetime | None = None,
    variants: Sequence[str] = (),
) -> Preview:
    """Render ``message_type`` for each of ``channels`` × ``languages`` (default: all of each).

    ``country`` is where the sample recipient lives (default: where each language is
    most used); ``recipient`` replaces the sample recipient (its country is used) and
    ``data`` the sample data. ``variants`` change the recipient or data the way that changes the
    legal text (:data:`dispatch.samples.PREVIEW_VARIANTS`: business, northern-norway,
    other-product, no-name). Raises a :class:`DispatchError` on bad input.
    """
    mtype = d.message_type(message_type)
    variants = list(dict.fromkeys(variants))
    for variant in variants:
        if variant not in PREVIEW_VARIANTS:
            raise InputError(f"unknown variant {variant!r} (known: {', '.join(PREVIEW_VARIANTS)})")
    channels = _channels(d, mtype, channels)
    languages = _languages(languages)
    if country is not None and country not in d.policy.countries:
        raise InputError(f"unknown country {country!r} (known: {', '.join(d.policy.countries)})")
    if recipient is not None:
        if not isinstance(recipient, Mapping):
            raise InputError("the recipient must be a JSON object")
        if country is not None and recipient.get("country") != country:
            raise InputError("give --country or a recipient file, not both (the recipient's country is used)")
        d.parse_recipient({**recipient, "language": languages[0]})
    if data is not None:
        d.validate_data(mtype.name, data)
    now = now or datetime.now(UTC)
    columns: list[Column] = []
    cells: dict[tuple[str, str], Cell] = {}
    made_up = False
    for language in languages:
        if recipient is not None:
            person = {**recipient, "language": language}
        else:
            person = sample_recipient(language, country or HOME_COUNTRY.get(language, "FI"))
            person["language"] = language
        if "northern-norway" in variants:
            person = {**person, "country": "NO"}
        where = str(person["country"])
        values = data
        if values is None:
            try:
                values = sample_data(mtype.name, where, language)
            except KeyError:
                values, made_up = synthetic_data(mtype), True
        for variant in variants:
            try:
                person, values = apply_variant(variant, mtype.name, dict(person), dict(values))
            except ValueError as exc:
                raise InputError(str(exc)) from None
        columns.append(Column(language, where, d.renderer.formatter(language, where).locale))
        for channel in channels:
            cells[(channel, language)] = _cell(d, mtype, channel, language, person, values, now)
    source = data_source or ("made-up data (no sample for this type)" if made_up else "sample data")
    if variants:
        source += " · " + "; ".join(PREVIEW_VARIANTS[v] for v in variants)
    return Preview(mtype.name, mtype.description or "", source, columns, list(channels), cells, now, country, variants)


def _channels(d: Dispatcher, mtype: Any, wanted: Sequence[str]) -> list[str]:
    if not wanted:
        return [c for c in mtype.channels if c in d.channels]
    for channel in wanted:
        if channel not in d.channels:
            raise UnknownChannel(f"unknown channel {channel!r} (known: {', '.join(d.channels)})")
        if channel not in mtype.channels:
            raise InputError(f"{mtype.name} is not sent by {channel} (allowed: {', '.join(mtype.channels)})")
    return list(dict.fromkeys(wanted))


def _languages(wanted: Iterable[str]) -> list[str]:
    wanted = list(dict.fromkeys(wanted))
    for language in wanted:
        if language not in LANGUAGES:
            raise UnsupportedLanguage(f"unknown language {language!r} (known: {', '.join(LANGUAGES)})")
    return wanted or list(LANGUAGES)


def _cell(
    d: Dispatcher,
    mtype: Any,
    channel_name: str,
    language: str,
    person: Mapping[str, Any],
    data: Mapping[str, Any],
    now: datetime,
) -> Cell:
    channel = d.channels[channel_name]
    cell = Cell(channel_name, language)
    if not d.renderer.has_parts(mtype.name, channel.parts, language):
        cell.warnings.append(
            f"no {language} translation of every part ({', '.join(channel.parts.values())}): "
            "the customer gets the fallback language shown here"
        )
    cell.warnings.extend(_approval_warnings(d, mtype, channel_name, language))
    try:
        cell.parts = d.preview(mtype.name, person, data, channel=channel_name, language=language, now=now)
    except DispatchError as exc:
        cell.error = str(exc)
        return cell
    cell.warnings.extend(channel.check_rendered(mtype, cell.parts))
    if channel_name == "sms":
        text = cell.parts.get("text", "")
        cell.sms = {"characters": len(text), **count_segments(text).as_dict()}
    message = _outgoing(d, mtype, channel, language, person, data, cell.parts)
    cell.headers = channel.preview_headers(message)
    try:
        cell.images = channel.preview_images(message)
    except ImportError as exc:  # the letter extra is not installed: show the parts
        cell.warnings.append(f"no image of the {channel_name}: {exc}")
    except DispatchError as exc:
        cell.error = str(exc)
    return cell


def _approval_warnings(d: Dispatcher, mtype: Any, channel: str, language: str) -> list[str]:
    """A stale translation, or a version not approved where the category needs it (SPEC §5)."""
    if not d.approvals.has_template(mtype.name, language, channel):
        return []
    state = d.approvals.state(mtype.name, language, channel)
    if state.state == "stale" or (not state.ok and d.approvals.required(mtype.category)):
        return [state.refusal()]
    return []


def _outgoing(
    d: Dispatcher,
    mtype: Any,
    channel: Any,
    language: str,
    person: Mapping[str, Any],
    data: Mapping[str, Any],
    parts: dict[str, str],
) -> OutgoingMessage:
    """The message as its channel would receive it for delivery (for the channel's own preview)."""
    recipient = d.parse_recipient(person)
    category = effective_category(mtype, d.validate_data(mtype.name, data))
    unsubscribe = None
    if needs_unsubscribe(mtype, category):
        unsubscribe = LinkSigner("preview", d.config.links.base_url).unsubscribe_url(PREVIEW_ID)
    return OutgoingMessage(
        id=PREVIEW_ID,
        message_type=mtype.name,
        category=category,
        channel=channel.name,
        language=language,
        locale=d.renderer.formatter(language, recipient.country).locale,
        country=recipient.country,
        recipient_id=recipient.id,
        address=channel.address(recipient),
        parts=parts,
        unsubscribe_url=unsubscribe,
        meta=channel.prepare(mtype, parts) or {},
    )


def render_page(d: Dispatcher, preview: Preview, *, form_action: str | None = None) -> str:
    """The preview as one self-contained HTML page; ``form_action``: a form to choose languages and channels."""
    env = _environment(d)
    columns = [
        {**column.__dict__, "name": LANGUAGE_NAMES.get(column.language, column.language)} for column in preview.columns
    ]
    rows = []
    for channel in preview.channels:
        cells = []
        for column in preview.columns:
            cell = preview.cell(channel, column.language)
            cells.append(
                {
                    "language": cell.language,
                    "parts": dict(cell.parts),
                    "headers": dict(cell.headers),
                    "images": [_data_uri(image) for image in cell.images],
                    "sms": dict(cell.sms),
                    "warnings": list(cell.warnings),
                    "error": cell.error,
                }
            )
        rows.append({"channel": channel, "cells": cells})
    all_channels = [c for c in d.message_type(preview.message_type).channels if c in d.channels]
    return env.get_template(PAGE_TEMPLATE).render(
        message_type=preview.message_type,
        description=preview.description,
        data_source=preview.data_source,
        made_at=preview.made_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        columns=columns,
        rows=rows,
        form_action=form_action,
        all_languages=[(code, LANGUAGE_NAMES.get(code, code)) for code in LANGUAGES],
        all_channels=all_channels,
        all_countries=list(d.policy.countries),
        country=preview.country,
        variants=list(preview.variants),
        all_variants=[(name, text) for name, text in PREVIEW_VARIANTS.items() if _applies(d, preview, name)],
        variant_links=[(n, url) for n, url in _variant_links(preview, form_action) if _applies(d, preview, n)],
    )


def _applies(d: Dispatcher, preview: Preview, variant: str) -> bool:
    """Whether ``variant`` can change ``preview``'s type (another product only where there is a current one)."""
    if variant == "other-product":  # ("as sampled" and the others apply to every type)
        return "current_product" in d.message_type(preview.message_type).known
    return True


def _variant_links(preview: Preview, form_action: str | None) -> list[tuple[str, str]]:
    """(label, URL) of the page with each variant alone, one click away (only where the page is served)."""
    if not form_action:
        return []
    from urllib.parse import urlencode

    base = [("lang", c.language) for c in preview.columns] + [("channel", c) for c in preview.channels]
    if preview.country:
        base.append(("country", preview.country))
    links = [("as sampled", f"{form_action}?{urlencode(base)}")]
    for name in PREVIEW_VARIANTS:
        links.append((name, f"{form_action}?{urlencode([*base, ('variant', name)])}"))
    return links


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _environment(d: Dispatcher) -> ImmutableSandboxedEnvironment:
    """A sandboxed environment over the ``_shared`` template folders (not the translators' bounded one)."""
    loader = jinja2.FileSystemLoader([str(root / SHARED) for root in d.renderer.roots])
    return ImmutableSandboxedEnvironment(
        loader=loader, autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
