"""Built-in do-not-contact registers: ASML (FI), NIX-Telefon and NIX-Adresserat (SE),
Reservasjonsregisteret (NO).

Each reads the CSV the company receives (phone numbers and/or name and address);
the column names are recognised in English, Finnish, Swedish and Norwegian.
"""

from __future__ import annotations

from collections.abc import Callable

from dispatch import hookimpl
from dispatch.registers import Register


class Asml(Register):
    """ASML (Asiakkuusmarkkinointiliitto) Robinson lists: letters and calls (Finland)."""

    name = "asml"
    title = "ASML kieltorekisteri"
    country = "FI"
    channels = ("letter", "phone")


class NixTelefon(Register):
    """NIX-Telefon: people who do not want sales calls (Sweden)."""

    name = "nix-telefon"
    title = "NIX-Telefon"
    country = "SE"
    channels = ("phone",)


class NixAdresserat(Register):
    """NIX-Adresserat: people who do not want addressed direct mail (Sweden)."""

    name = "nix-adresserat"
    title = "NIX-Adresserat"
    country = "SE"
    channels = ("letter",)


class Reservasjonsregisteret(Register):
    """Reservasjonsregisteret (Brønnøysundregistrene): calls and addressed mail (Norway)."""

    name = "reservasjonsregisteret"
    title = "Reservasjonsregisteret"
    country = "NO"
    channels = ("letter", "phone")


BUILTIN_REGISTERS = (Asml, NixTelefon, NixAdresserat, Reservasjonsregisteret)


@hookimpl
def dispatch_registers(register: Callable[[type[Register]], None]) -> None:
    for cls in BUILTIN_REGISTERS:
        register(cls)
