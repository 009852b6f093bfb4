"""The sender details messages show: ``[company]`` with per-country and per-language values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .config import CompanyConfig

LANGUAGE_KEYS = frozenset({"fi", "sv", "nb", "en"})


def company_details(company: CompanyConfig, country: str, language: str | None = None) -> dict[str, Any]:
    """``[company]`` with ``[company.countries.XX]`` applied; values given per language
    (``{fi = ..., en = ...}``) resolved for ``language``."""
    values: dict[str, Any] = {
        "name": company.name,
        "email": company.email,
        "phone": company.phone,
        "website": company.website,
        "address": list(company.address),
        "business_id": company.business_id,
        "service_hours": company.service_hours,
    }
    values.update(company.countries.get(country, {}))
    if language is not None:
        for key, value in values.items():
            if isinstance(value, Mapping) and value and set(value) <= LANGUAGE_KEYS:
                values[key] = value.get(language) or value.get("en") or next(iter(value.values()))
    return values
