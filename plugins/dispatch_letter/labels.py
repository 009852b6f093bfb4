"""The letter's own words, from translator-editable templates.

``templates/<lang>/_layout/`` holds, per language:

- ``letter_info.txt``: the information block beside the window, one line each (place
  and date, customer number). Variables: ``place`` (may be empty), ``today`` (use the
  ``date`` filter), ``customer_number``, ``message_id``;
- ``letter_opt_out.txt``: the lines printed beside the QR code. Variables: ``purpose``
  (``"unsubscribe"`` or ``"preferences"``), ``url`` (the link when it is short enough
  to type, else empty), ``website``, ``phone``;
- ``letter_qr_note.txt``: printed in the body instead of a link too long to type
  ("(the QR code at the end of this letter)").

A language without these files uses the English ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import jinja2

from dispatch.config import Config
from dispatch.errors import TemplateError
from dispatch.render import Renderer, builtin_template_dir

FALLBACK = "en"


class Labels:
    """Renders the ``_layout/letter_*`` templates for one language and country."""

    def __init__(self, config: Config) -> None:
        roots = [config.path(p) for p in config.templates.paths] + [builtin_template_dir()]
        self._renderer = Renderer(roots, locales=config.languages.locales)

    def _render(self, name: str, language: str, country: str, context: Mapping[str, Any]) -> list[str]:
        for lang in (language, FALLBACK):
            env = self._renderer.environment(lang, country)
            try:
                template = env.get_template(f"_layout/{name}")
            except jinja2.TemplateNotFound:
                continue
            try:
                text = template.render(context)
            except jinja2.TemplateError as exc:
                raise TemplateError(f"template {lang}/_layout/{name}: {exc}") from None
            return [line.strip() for line in text.splitlines() if line.strip()]
        raise TemplateError(f"template _layout/{name} is missing for {language!r} and {FALLBACK!r}")

    def info(
        self, language: str, country: str, *, place: str, today: datetime, customer_number: str, message_id: str
    ) -> list[str]:
        """The information block's lines."""
        context = {"place": place, "today": today, "customer_number": customer_number, "message_id": message_id}
        return self._render("letter_info.txt", language, country, context)

    def opt_out(
        self, language: str, country: str, *, purpose: str, url: str | None, website: str, phone: str
    ) -> list[str]:
        """The caption beside the opt-out or preferences QR code."""
        context = {"purpose": purpose, "url": url or "", "website": website, "phone": phone}
        return self._render("letter_opt_out.txt", language, country, context)

    def qr_note(self, language: str, country: str) -> str:
        """What the body says instead of a link too long to type."""
        return " ".join(self._render("letter_qr_note.txt", language, country, {}))
