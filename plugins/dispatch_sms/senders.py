"""Which SMS sender ids a country accepts: checked when ``[channels.sms]`` is loaded.

A sender is an E.164 number (``+358401234567``) or an alphanumeric id (``PohjolaEn``).

- Every country: an alphanumeric originator address holds at most 11 characters
  (3GPP TS 23.040 §9.1.2.5, TP-OA coded in the GSM 7-bit alphabet); all digits would be
  read as a number.
- Finland: Traficom's rules for SMS Sender IDs (traficom.fi, "SMS Sender ID", under
  Regulation 28 on the interoperability of communications networks and services, and
  Regulation 28 L/2025 M in force 4 May 2026): at most 11 characters; use only 0–9, a–z,
  A–Z and the space (å, ä, ö and other characters do not work with every operator's
  interface); no space at the start or end and no two spaces in a row; a protected id is
  3 to 11 characters and must be the organisation's (auxiliary or parallel) business name
  in YTJ. Since 2023 alphanumeric ids can be protected, and under 28 L/2025 M operators
  block or replace ids that are not approved in advance: the id must also be registered or
  authorised through the SMS provider, which this check cannot see.
- Sweden and Norway: the same portable characters (0–9, a–z, A–Z, space), as operators
  there replace or drop others.
"""

from __future__ import annotations

import re

E164 = re.compile(r"\+[1-9][0-9]{6,14}")
#: Characters every operator's interface carries in an alphanumeric sender id.
PORTABLE = re.compile(r"[0-9A-Za-z ]+")
MAX_ALPHANUMERIC = 11
#: Traficom: a protected Finnish SMS Sender ID is 3 to 11 characters.
MIN_FINNISH = 3


def sender_problems(sender: str, country: str) -> list[str]:
    """What is wrong with ``sender`` for messages to ``country`` (empty when nothing is)."""
    if not isinstance(sender, str) or not sender:
        return ["must be a number (+358...) or an alphanumeric id"]
    if sender.startswith("+") or sender.replace(" ", "").isdigit():
        if not E164.fullmatch(sender):
            return [f"{sender!r} is not an E.164 number (+ country code and number, no spaces)"]
        return []
    problems = []
    if len(sender) > MAX_ALPHANUMERIC:
        problems.append(f"{sender!r} has {len(sender)} characters; an alphanumeric sender id has at most 11")
    bad = sorted(set(re.sub(r"[0-9A-Za-z ]", "", sender)))
    if bad:
        problems.append(f"{sender!r} has {''.join(bad)!r}: use only 0-9, a-z, A-Z and spaces")
    if sender != sender.strip() or "  " in sender:
        problems.append(f"{sender!r} must not start or end with a space or hold two spaces in a row")
    if country == "FI" and len(sender) < MIN_FINNISH:
        problems.append(f"{sender!r} is shorter than the 3 characters Traficom registers as an SMS Sender ID")
    return problems
