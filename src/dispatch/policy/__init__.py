"""The policy engine: pure rules deciding what may be sent (SPEC §4)."""

from .engine import (
    NOTICE_CHANNEL,
    LanguageChains,
    choose_channel,
    choose_language,
    decide,
    effective_category,
    notice_channel,
)
from .facts import ConsentView, Contact, Facts, RegisterInfo, register_is_fresh
from .rules import REASON_CODES, RULES, Situation
from .settings import RULES_VERSION, CountryPolicy, PolicySettings

__all__ = [
    "NOTICE_CHANNEL",
    "REASON_CODES",
    "RULES",
    "RULES_VERSION",
    "ConsentView",
    "Contact",
    "CountryPolicy",
    "Facts",
    "LanguageChains",
    "PolicySettings",
    "RegisterInfo",
    "Situation",
    "choose_channel",
    "choose_language",
    "decide",
    "effective_category",
    "notice_channel",
    "register_is_fresh",
]
