"""The policy engine: pure rules deciding what may be sent (SPEC §4)."""

from .engine import LanguageChains, choose_channel, choose_language, decide, effective_category
from .facts import ConsentView, Contact, Facts, RegisterInfo
from .rules import REASON_CODES, RULES, Situation
from .settings import RULES_VERSION, CountryPolicy, PolicySettings

__all__ = [
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
]
