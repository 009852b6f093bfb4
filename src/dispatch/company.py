"""The sender details messages show: ``[company]`` with per-country and per-language values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .config import CompanyConfig
from .models import LANGUAGES

#: Keys that make a mapping a per-language value (bokmål included, so defaults can carry it).
LANGUAGE_KEYS = frozenset(LANGUAGES) | {"nb"}


def company_details(company: CompanyConfig, country: str, language: str | None = None) -> dict[str, Any]:
    """``[company]`` with ``[company.countries.XX]`` applied; values given per language
    (``{fi = ..., en = ...}``) resolved for ``language`` (English, or the first given, when
    ``language`` is None or missing)."""
    values: dict[str, Any] = {
        "name": company.name,
        "email": company.email,
        "phone": company.phone,
        "website": company.website,
        "address": company.address,
        "business_id": company.business_id,
        "business_id_label": company.business_id_label,
        "service_hours": company.service_hours,
        "terms_url": company.terms_url,
        "survey_minutes": company.survey_minutes,
    }
    values.update(company.countries.get(country, {}))
    for key, value in values.items():
        if isinstance(value, Mapping) and value and set(value) <= LANGUAGE_KEYS:
            values[key] = (language and value.get(language)) or value.get("en") or next(iter(value.values()))
    values["address"] = list(values["address"])
    return values
