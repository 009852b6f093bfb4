"""OmaPosti (Finland): letters handed to Posti's iPost service with the recipient's henkilötunnus.

What Posti documents publicly is little, and it is what this module builds:

- OmaPosti receives letters from senders through Posti's iPost print and delivery
  service (https://www.ipost.fi/suunnitteluohje/suunnitteluohje-kirjeiden-lahettamiseen):
  a PDF per letter with an XML message (LetterBundle, version v1x0, mandatory for PDF
  material) whose metadata can carry the recipient's henkilötunnus, the sender
  company's name, its OVT code and the letter's title. "With the henkilötunnus
  letters are forwarded securely to OmaPosti and Suomi.fi Messages"; the material is
  transferred by FTP/SFTP;
- the recipient chooses in OmaPosti from which senders letters come only electronically
  (https://www.posti.fi/sv/kundsupport/egna-uppgifter/omaposti-ta-i-bruk/omaposti-fakturor-brev):
  Posti, not the sender, decides whether a letter goes to OmaPosti or is printed.

Not documented publicly, and so not built: a look-up of who has OmaPosti (there is
none for senders: :meth:`OmaPostiChannel.lookup` answers "unknown" and the letter is
handed over), delivery receipts, and the LetterBundle schema itself (it ships in a zip
of iPost design guides, not as public text). The XML written here carries exactly the
fields Posti names, under element names of our own choosing: a deployment maps them to
the LetterBundle schema its iPost contract comes with before going live.

So OmaPosti is the last digital route of a Finnish letter: the letter is written as
``<message id>.pdf`` and ``<message id>.xml`` into ``dropbox`` (the folder an SFTP job
sends to iPost), counted as ``sent``, and Posti delivers it to OmaPosti or on paper.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from xml.sax.saxutils import escape

from dispatch.errors import ConfigError, TransientDeliveryError
from dispatch.lifecycle import Status
from dispatch.mailboxes import MailboxChannel, MailboxLetter
from dispatch.models import DeliveryResult


@dataclass
class OmaPostiSettings:
    """``[channels.omaposti]``: no ``dropbox`` means OmaPosti is not used."""

    #: The folder whose files go to Posti's iPost (by the deployment's SFTP transfer).
    dropbox: str | None = None
    #: The sender's OVT (EDI) code, as in the iPost contract.
    sender_ovt: str | None = None
    eligibility_ttl_hours: float = 24.0


class OmaPostiChannel(MailboxChannel):
    """Letters handed to Posti's iPost for OmaPosti (see the module docstring)."""

    name = "omaposti"
    settings_class = OmaPostiSettings
    countries: ClassVar[tuple[str, ...]] = ("FI",)

    def __init__(self, settings: OmaPostiSettings, context) -> None:
        super().__init__(settings, context)
        if settings.dropbox and not settings.sender_ovt:
            raise ConfigError("channels.omaposti needs sender_ovt (the OVT code of the iPost contract)")

    @property
    def configured(self) -> bool:
        return bool(self.settings.dropbox)

    async def lookup(self, national_ids: Sequence[str]) -> None:
        return None  # Posti offers senders no look-up: it decides at delivery (module docstring)

    async def send_letter(self, letter: MailboxLetter) -> DeliveryResult:
        folder = Path(self.context.config.path(self.settings.dropbox))
        company = letter.sender
        meta = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            "<Letter>"
            f"<LetterId>{escape(letter.message_id)}</LetterId>"
            f"<File>{escape(letter.message_id)}.pdf</File>"
            f"<RecipientPersonalIdentityCode>{escape(letter.national_id)}</RecipientPersonalIdentityCode>"
            f"<SenderName>{escape(str(company.get('name', '')))}</SenderName>"
            f"<SenderOvt>{escape(self.settings.sender_ovt or '')}</SenderOvt>"
            f"<Title>{escape(letter.subject)}</Title>"
            f"<Language>{escape(letter.language)}</Language>"
            "</Letter>\n"
        )
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for suffix, data in ((".pdf", letter.pdf), (".xml", meta.encode("utf-8"))):  # the XML last: it completes
                target = folder / f"{letter.message_id}{suffix}"
                tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
                tmp.write_bytes(data)
                os.replace(tmp, target)
        except OSError as exc:
            raise TransientDeliveryError(f"cannot write to the iPost folder: {exc.strerror}", code="dropbox") from None
        return DeliveryResult(
            status=Status.SENT, provider_id=f"ipost:{letter.message_id}", detail={"handed_to": "ipost"}
        )
