"""Do-not-contact registers: the base class plugins subclass, and matching keys.

A register (ASML in Finland, NIX-Telefon and NIX-Adresserat in Sweden,
Reservasjonsregisteret in Norway) is a list the company receives as a file. A
:class:`Register` subclass says which country and channels it covers and how to
read its file into :class:`RegisterEntry` keys: E.164 phone numbers, or
name+address keys normalised by :func:`address_key`. The store keeps the loaded
entries (:mod:`dispatch.store`); the policy engine only sees which registers list
a recipient.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from .errors import RegisterError
from .models import Recipient
from .recipients import normalise_address_key, normalise_phone


@dataclass(frozen=True, slots=True)
class RegisterEntry:
    """One listed person: ``kind`` is ``phone`` (E.164) or ``address`` (a normalised key)."""

    kind: str
    key: str


def address_key(name: str, street: str, postal_code: str) -> str:
    """The key a name+address is matched by (case, spacing and punctuation ignored)."""
    return normalise_address_key(name, street, postal_code.replace(" ", ""))


def recipient_keys(recipient: Recipient) -> list[RegisterEntry]:
    """The keys under which ``recipient`` could be listed."""
    keys = []
    if recipient.phone:
        keys.append(RegisterEntry("phone", recipient.phone))
    if recipient.address:
        a = recipient.address
        keys.append(RegisterEntry("address", address_key(a.name, a.street, a.postal_code)))
    return keys


class Register:
    """Base class of do-not-contact registers.

    The default :meth:`read` takes a CSV file with a header row holding ``phone``
    and/or ``name``, ``street``, ``postal_code`` columns (any case; common
    Finnish, Swedish and Norwegian column names are recognised). Override it for
    another file format.
    """

    #: Short name used on the command line: ``dispatch registers import NAME FILE``.
    name: ClassVar[str] = ""
    #: The register's proper name, for reports.
    title: ClassVar[str] = ""
    country: ClassVar[str] = ""
    #: Channels whose marketing the register blocks: ``letter`` and/or ``phone``.
    channels: ClassVar[tuple[str, ...]] = ()

    PHONE_COLUMNS: ClassVar[tuple[str, ...]] = (
        "phone",
        "telephone",
        "puhelin",
        "puhelinnumero",
        "telefon",
        "telefonnummer",
        "nummer",
        "msisdn",
    )
    NAME_COLUMNS: ClassVar[tuple[str, ...]] = ("name", "nimi", "namn", "navn")
    STREET_COLUMNS: ClassVar[tuple[str, ...]] = (
        "street",
        "address",
        "osoite",
        "katuosoite",
        "adress",
        "gatuadress",
        "adresse",
        "gateadresse",
    )
    POSTAL_COLUMNS: ClassVar[tuple[str, ...]] = (
        "postal_code",
        "zip",
        "postinumero",
        "postnummer",
        "postnr",
    )

    def read(self, path: Path) -> Iterator[RegisterEntry]:
        """Yield the entries of a register file; raise :class:`RegisterError` naming bad rows."""
        try:
            handle = path.open(newline="", encoding="utf-8-sig")
        except OSError as exc:
            raise RegisterError(f"cannot read register file {str(path)!r}: {exc.strerror}") from None
        with handle:
            sample = handle.read(4096)
            handle.seek(0)
            try:
                dialect = csv.Sniffer().sniff(sample, delimiters=",;\t") if sample else csv.excel
            except csv.Error:
                dialect = csv.excel
            reader = csv.DictReader(handle, dialect=dialect)
            columns = {c.strip().lower(): c for c in (reader.fieldnames or [])}
            phone_col = _pick(columns, self.PHONE_COLUMNS)
            name_col = _pick(columns, self.NAME_COLUMNS)
            street_col = _pick(columns, self.STREET_COLUMNS)
            postal_col = _pick(columns, self.POSTAL_COLUMNS)
            has_address = bool(name_col and street_col and postal_col)
            if not phone_col and not has_address:
                raise RegisterError(
                    f"{path}: no phone column and no name+street+postal_code columns "
                    f"(found: {', '.join(reader.fieldnames or []) or 'no header'})"
                )
            problems: list[str] = []
            for line, row in enumerate(reader, start=2):
                phone = (row.get(phone_col) or "").strip() if phone_col else ""
                if phone:
                    try:
                        yield RegisterEntry("phone", normalise_phone(phone, self.country))
                    except ValueError as exc:
                        problems.append(f"line {line}: {exc}")
                if has_address:
                    name = (row.get(name_col) or "").strip()
                    street = (row.get(street_col) or "").strip()
                    postal = (row.get(postal_col) or "").strip()
                    if name and street and postal:
                        yield RegisterEntry("address", address_key(name, street, postal))
                    elif not phone and (name or street or postal):
                        problems.append(f"line {line}: incomplete name and address")
                if len(problems) >= 20:
                    break
            if problems:
                raise RegisterError(f"{path}: {len(problems)} bad row(s):", problems)


def _pick(columns: dict[str, str], candidates: tuple[str, ...]) -> str | None:
    for candidate in candidates:
        if candidate in columns:
            return columns[candidate]
    return None
