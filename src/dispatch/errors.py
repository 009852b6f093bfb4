"""One error hierarchy for dispatch.

Everything dispatch raises on purpose is a :class:`DispatchError`. Errors caused by
the caller's input (an unknown type, a malformed phone number, a missing data field)
carry a message a person can act on and, where several things are wrong at once,
the list of every problem in :attr:`DispatchError.problems`.

Delivery errors are split into :class:`TransientDeliveryError` (the queue retries)
and :class:`PermanentDeliveryError` (never retried; recorded as a bounce).
"""

from __future__ import annotations

from collections.abc import Iterable


class DispatchError(Exception):
    """Base class of every error dispatch raises on purpose."""

    def __init__(self, message: str, problems: Iterable[str] = ()) -> None:
        self.problems: list[str] = list(problems)
        if self.problems and message.endswith(":"):
            message = message + " " + "; ".join(self.problems)
        super().__init__(message)


class ConfigError(DispatchError):
    """The configuration file or an override is invalid (unknown key, wrong type)."""


class InputError(DispatchError):
    """Base class of errors caused by what the caller passed in."""


class UnknownMessageType(InputError):
    """The message type is not registered."""


class InvalidRecipient(InputError):
    """The recipient mapping is malformed: bad phone, email, date, country or language."""


class UnsupportedCountry(InvalidRecipient):
    """The recipient's country is not one dispatch has rules for."""


class UnsupportedLanguage(InvalidRecipient):
    """The recipient's language is not one dispatch has templates for."""


class InvalidData(InputError):
    """The message data is missing required fields or holds malformed values."""


class UnknownChannel(InputError):
    """A channel name that no plugin provides."""


class ReportRejected(InputError):
    """A provider report that dispatch will not act on (e.g. an email bounce naming an SMS's id)."""


class TemplateError(DispatchError):
    """A template is missing, does not compile, or fails to render."""


class TemplateLimitExceeded(TemplateError):
    """A template ran longer or made more text than a rendered part may (``[templates]`` limits)."""


class TemplateNotFound(TemplateError):
    """No template exists for the type, channel and any language the chain allows."""


class TemplateNotApproved(DispatchError):
    """The template version a message would be rendered from is not approved by a second person,
    or is a translation whose source changed since it was approved (``[templates] require_approval``,
    SPEC §5). Nothing is written."""


class ApprovalRefused(InputError):
    """A proposal or approval of a template version that the four-eyes rule does not allow
    (the proposer approving their own version, nothing proposed, no such template)."""


class PluginError(DispatchError):
    """A plugin is misconfigured or registers something invalid."""


class StoreError(DispatchError):
    """The store could not record or read what was asked."""


class StoreOutage(StoreError):
    """The store cannot answer now: the database is unreachable, or older than the code (a table
    not migrated yet). Raised by the store in its own words, so callers need not know SQLAlchemy."""


class RegisterError(InputError):
    """A do-not-contact register file could not be imported."""


class DeliveryError(DispatchError):
    """Base class of errors raised by a channel while delivering."""

    def __init__(self, message: str, *, code: str | None = None, provider_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.provider_id = provider_id


class TransientDeliveryError(DeliveryError):
    """Delivery failed for a reason that may pass (4xx, timeout, connection refused).

    The queue retries the message with exponential backoff.
    """


class PermanentDeliveryError(DeliveryError):
    """Delivery failed for good (5xx bounce, invalid number, unsubscribed recipient).

    Never retried. A statutory message falls back to another channel (email → letter).
    """


class AddressRejected(PermanentDeliveryError):
    """The provider refused the address itself: an unknown mailbox (SMTP 5.1.x), an invalid or
    unreachable number. Never retried; the address goes on the suppression list (SPEC §10).
    """


class RecipientOptedOut(PermanentDeliveryError):
    """The provider reports that the recipient has opted out (e.g. Twilio 21610, SMS STOP).

    The delivery worker records a withdrawal in the consent ledger.
    """
