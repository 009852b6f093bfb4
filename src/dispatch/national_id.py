"""National identity numbers (SPEC §3 ``national_id``): checked, normalised, masked, kept out of logs.

A ``national_id`` is used for one thing only: addressing the person's digital mailbox
(Kivra, OmaPosti, Digipost; SPEC §6). Each country's number is checked with its own
checksum by python-stdnum:

- Finland: henkilötunnus, ``DDMMYYCZZZQ`` (``fi.hetu``), the century signs of the
  Population Information Act amendment in force since 1 January 2023 included
  (``-`` ``Y X W V U`` for the 1900s, ``A B C D E F`` for the 2000s; Valtioneuvoston
  asetus väestötietojärjestelmästä 128/2010 §2 as amended by 690/2022). Temporary
  numbers (individual part 900–999) are refused: no mailbox is tied to them.
- Sweden: personnummer (Folkbokföringslagen 1991:481 §18) and samordningsnummer
  (the same form with 60 added to the day, Folkbokföringslagen §18 a); the Luhn
  check digit. Stored as the twelve digits ``YYYYMMDDNNNN`` that Kivra's API takes.
  python-stdnum's ``se.personnummer`` does not know samordningsnummer, so those are
  checked here with its Luhn implementation.
- Norway: fødselsnummer and D-nummer (day + 40), two modulus-11 check digits
  (Folkeregisterforskriften §2-2-1; ``no.fodselsnummer`` accepts both).

Nothing here ever puts the number into an error: a message says which field is wrong
and which country's rule it broke.
"""

from __future__ import annotations

import re
from datetime import date

from stdnum import luhn
from stdnum.exceptions import ValidationError
from stdnum.fi import hetu
from stdnum.no import fodselsnummer
from stdnum.se import personnummer

#: What each country's number is called, for error messages a person can act on.
NAMES = {"FI": "henkilötunnus", "SE": "personnummer or samordningsnummer", "NO": "fødselsnummer or D-nummer"}
MASK = "•"


class InvalidNationalId(ValueError):
    """A national id that is not a valid number for its country (the message never holds the number)."""


def normalise(raw: object, country: str) -> str:
    """The canonical form of ``raw`` as a ``country`` national id, or raise :class:`InvalidNationalId`.

    FI: ``DDMMYYCZZZQ`` upper-case; SE: ``YYYYMMDDNNNN``; NO: eleven digits.
    """
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)  # a JSON number
    if not isinstance(raw, str) or len(raw) > 32:
        raise InvalidNationalId("national_id must be a string")
    text = raw.strip()
    # A spreadsheet that took the number for a number dropped its leading zero (a Norwegian born on
    # the 1st-9th, a Swede born 2000-2009 written without century): put it back; the checksum decides.
    if text.isdigit() and (country, len(text)) in (("NO", 10), ("SE", 9)):
        text = "0" + text
    if country == "FI":
        try:
            return hetu.validate(text)
        except ValidationError:
            raise InvalidNationalId(f"national_id is not a valid {NAMES['FI']}") from None
    if country == "SE":
        return _swedish(text)
    if country == "NO":
        try:
            return fodselsnummer.validate(text)
        except ValidationError:
            raise InvalidNationalId(f"national_id is not a valid {NAMES['NO']}") from None
    raise InvalidNationalId("national_id needs the recipient's country (FI, SE or NO)")


def _swedish(text: str) -> str:
    """Twelve digits for a personnummer or samordningsnummer (``YYMMDD-NNNN``, ``YYYYMMDDNNNN``, ...)."""
    problem = InvalidNationalId(f"national_id is not a valid {NAMES['SE']}")
    compact = personnummer.compact(text) if text else ""
    digits = compact.replace("-", "").replace("+", "")
    if not digits.isdigit() or len(digits) not in (10, 12):
        raise problem
    try:
        luhn.validate(digits[-10:])
    except ValidationError:
        raise problem from None
    if len(digits) == 12:
        year = int(digits[:4])
    else:  # the century follows from the separator: "+" once the person has turned 100
        today = date.today()
        century = today.year // 100 - (1 if int(digits[:2]) > today.year % 100 else 0)
        century -= 1 if compact[-5:-4] == "+" else 0
        year = century * 100 + int(digits[:2])
    month, day = int(digits[-8:-6]), int(digits[-6:-4])
    if day > 60:  # samordningsnummer (Folkbokföringslagen §18 a): the day plus 60
        day -= 60
    try:
        date(year, month, day)
    except ValueError:
        raise problem from None
    return f"{year:04d}{digits[-8:]}"


def mask(value: str | None) -> str | None:
    """``value`` with every character but the last two replaced (``•••••••••16``), for display."""
    if not value:
        return value
    return MASK * max(len(value) - 2, 4) + value[-2:]


# -- a safety net for logs ------------------------------------------------------------------

_CANDIDATES = re.compile(
    r"(?<![\w-])(?:"
    r"\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]"  # henkilötunnus
    r"|(?:19|20)?\d{6}[-+]?\d{4}"  # personnummer / samordningsnummer
    r"|\d{11}"  # fødselsnummer / D-nummer
    r")(?![\w-])",
    re.IGNORECASE,
)


def redact(text: str, placeholder: str = "<national_id>") -> str:
    """``text`` with every string that is a valid FI, SE or NO national id replaced by ``placeholder``.

    Only numbers that pass a country's checksum are replaced, so ids and amounts mostly stay.
    """

    def replace(match: re.Match[str]) -> str:
        candidate = match.group(0)
        for country in ("FI", "SE", "NO"):
            try:
                normalise(candidate, country)
            except InvalidNationalId:
                continue
            return placeholder
        return candidate

    return _CANDIDATES.sub(replace, text)


__all__ = ["NAMES", "InvalidNationalId", "mask", "normalise", "redact"]
