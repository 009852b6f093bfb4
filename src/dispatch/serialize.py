"""Turning validated values back into plain JSON, and message types from configuration."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from .errors import ConfigError
from .messages import FIELD_KINDS, FieldSpec, Localized, MessageData, MessageType, PriceElement
from .models import CATEGORIES


def to_json(value: Any) -> Any:
    """A JSON-compatible copy of validated data: dates as ISO, decimals as strings."""
    if isinstance(value, PriceElement):
        out = {"name": to_json(value.name), "unit": value.unit, "new": str(value.new)}
        if value.old is not None:
            out["old"] = str(value.old)
        return out
    if isinstance(value, Localized):
        return dict(value.texts)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def data_to_json(data: MessageData) -> dict[str, Any]:
    """Validated message data as JSON; validating it again gives the same values."""
    return {key: to_json(value) for key, value in data.items()}


_TYPE_KEYS = {
    "category",
    "fields",
    "channels",
    "default_order",
    "legal_basis",
    "notice_field",
    "deadline_field",
    "deadline_working_days",
    "subscription",
    "objection",
    "marketing_if_other_product",
    "unsubscribe",
    "sms_max_segments",
    "description",
    "fallback_channels",
}
_LEGAL_BASES = ("contract", "legal_obligation", "consent", "soft_opt_in", "legitimate_interest")


def custom_types(tables: Mapping[str, Mapping[str, Any]]) -> list[MessageType]:
    """Message types declared in ``[message_types.NAME]`` tables of the configuration."""
    out = []
    for name, table in tables.items():
        where = f"message_types.{name}"
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where} must be a table")
        unknown = sorted(set(table) - _TYPE_KEYS)
        if unknown:
            raise ConfigError(f"unknown configuration key(s): {', '.join(where + '.' + k for k in unknown)}")
        category = table.get("category")
        if category not in CATEGORIES:
            raise ConfigError(f"{where}.category must be one of {', '.join(CATEGORIES)}")
        fields = table.get("fields", {})
        if not isinstance(fields, Mapping) or any(k not in FIELD_KINDS for k in fields.values()):
            raise ConfigError(f"{where}.fields must map field names to kinds ({', '.join(FIELD_KINDS)})")
        channels = table.get("channels")
        if not isinstance(channels, list) or not channels or not all(isinstance(c, str) for c in channels):
            raise ConfigError(f"{where}.channels must be a non-empty list of channel names")
        order = table.get("default_order", channels)
        if not isinstance(order, list) or not set(order) <= set(channels):
            raise ConfigError(f"{where}.default_order must list channels from {where}.channels")
        fallbacks = table.get("fallback_channels", [])
        if not isinstance(fallbacks, list) or not set(fallbacks) <= set(channels):
            raise ConfigError(f"{where}.fallback_channels must list channels from {where}.channels")
        basis = table.get(
            "legal_basis",
            {"statutory": "legal_obligation", "service": "legitimate_interest", "marketing": "consent"}[category],
        )
        if basis not in _LEGAL_BASES:
            raise ConfigError(f"{where}.legal_basis must be one of {', '.join(_LEGAL_BASES)}")
        for key in ("notice_field", "deadline_field"):
            if table.get(key) is not None and table[key] not in fields:
                raise ConfigError(f"{where}.{key} must name one of {where}.fields")
        for key in ("subscription", "objection", "description"):
            if table.get(key) is not None and not isinstance(table[key], str):
                raise ConfigError(f"{where}.{key} must be a string")
        for key, least in (("deadline_working_days", 1), ("sms_max_segments", 1)):
            value = table.get(key)
            if value is not None and (type(value) is not int or not least <= value <= 1000):
                raise ConfigError(f"{where}.{key} must be a whole number from {least} to 1000")
        try:
            out.append(
                MessageType(
                    name=name,
                    category=category,
                    fields=tuple(FieldSpec(k, v) for k, v in fields.items()),
                    channels=tuple(channels),
                    default_order=tuple(order),
                    legal_basis=basis,
                    notice_field=table.get("notice_field"),
                    deadline_field=table.get("deadline_field"),
                    deadline_working_days=table.get("deadline_working_days"),
                    subscription=table.get("subscription"),
                    objection=table.get("objection"),
                    marketing_if_other_product=bool(table.get("marketing_if_other_product", False)),
                    unsubscribe=bool(table.get("unsubscribe", category == "marketing")),
                    sms_max_segments=int(table.get("sms_max_segments", 3)),
                    description=str(table.get("description", "")),
                    fallback_channels=tuple(fallbacks),
                )
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return out
