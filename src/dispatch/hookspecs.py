"""Hook specifications: the whole plugin API of dispatch.

A plugin is a module or object with functions marked ``@dispatch.hookimpl`` whose
names match the specs below. Registration hooks receive a ``register`` callback,
so duplicate names are checked in one place (the core), and a plugin may register
any number of things. Implementations may accept fewer arguments than the spec.

Plugins are found through the ``dispatch`` entry-point group; the built-in
channels are plugins of the same shape (see ``plugins/``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .channels import Channel
    from .events import Event
    from .host import Host
    from .messages import MessageType
    from .models import DeliveryResult, OutgoingMessage
    from .registers import Register

hookspec = pluggy.HookspecMarker("dispatch")
hookimpl = pluggy.HookimplMarker("dispatch")


# -- registration --------------------------------------------------------------------


@hookspec
def dispatch_channels(register: Callable[[type[Channel]], None]) -> None:
    """Register channel classes by calling ``register(ChannelClass)``.

    A channel class subclasses :class:`dispatch.channels.Channel`: it names itself
    (``name``), the template parts it needs (``parts``), its settings dataclass
    (read from ``[channels.<name>]``), which recipient address it uses, and an
    ``async deliver()`` that raises :class:`~dispatch.errors.TransientDeliveryError`
    or :class:`~dispatch.errors.PermanentDeliveryError` on failure. Registering
    a name twice is an error.
    """


@hookspec
def dispatch_message_types(register: Callable[[MessageType], None]) -> None:
    """Register message types by calling ``register(MessageType(...))``.

    A type is data: category, required fields and their kinds, allowed channels
    and their default order, and the rules that apply (SPEC §2). Its templates go
    in ``templates/<lang>/<name>/``.
    """


@hookspec
def dispatch_registers(register: Callable[[type[Register]], None]) -> None:
    """Register do-not-contact register classes by calling ``register(RegisterClass)``.

    A register names itself, its country, the channels it covers (``letter``,
    ``phone``) and how it reads the file the company receives; the core stores
    the loaded entries and matches recipients against them.
    """


@hookspec
def dispatch_template_filters(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register extra Jinja filters by calling ``register(name, function)``.

    Filters run inside the sandbox; a name that clashes with a built-in filter is
    an error.
    """


@hookspec
def dispatch_template_roots(register: Callable[[Path], None]) -> None:
    """Register folders of templates by calling ``register(path)``.

    Each folder holds ``fi/``, ``sv/``, ``en/`` like the built-in ``templates/``; a
    plugin that adds message types or channels ships their templates this way.
    Configured ``[templates] paths`` come first, then plugin folders, then the
    built-in set, so a deployment can override any file.
    """


@hookspec
def dispatch_serve_services(register: Callable[[Any], None], dispatcher: Host, options: Mapping[str, Any]) -> None:
    """Add services that ``dispatch serve`` runs beside the web application by calling ``register(service)``.

    A service has ``start()`` and ``stop()`` (plain or ``async``); serve starts each
    before it answers requests and stops each on shutdown. ``options`` holds the
    command-line options of ``serve`` (``smtp_port``, ``smtp_host``). ``dispatcher`` is the
    serving dispatcher's :class:`~dispatch.host.Host` (``channels``, ``config``,
    ``handle_feedback``). The email plugin registers its listener for returned mail
    (DSNs, ARF complaints) here.
    """


@hookspec
def dispatch_web_routes(register: Callable[..., None], dispatcher: Host) -> None:
    """Add web routes to ``dispatch serve`` by calling ``register(path, endpoint, methods=("POST",))``.

    ``path`` is a Starlette path (``/twilio/status``, ``/hooks/{name}``);
    ``endpoint`` takes a :class:`starlette.requests.Request` and returns a
    :class:`starlette.responses.Response` (``async def`` runs on the event loop, a
    plain ``def`` in a thread). ``dispatcher`` is the serving dispatcher's
    :class:`~dispatch.host.Host` (``channels``, ``config``, ``handle_feedback``): a
    provider's callbacks turn what they receive into
    :class:`~dispatch.feedback.ProviderEvent` values for ``dispatcher.handle_feedback``.
    A path registered twice, or one of dispatch's own (``/u/``, ``/preferences/``,
    ``/p/``, ``/operator``, ``/health``, ``/metrics``), is an error.
    """


# -- events --------------------------------------------------------------------------


@hookspec
def dispatch_delivery_attempted(
    message: OutgoingMessage, result: DeliveryResult | None, error: Exception | None
) -> None:
    """Called after every delivery attempt, successful (``result``) or not (``error``).

    For observers: metrics, audit trails, CRM updates. The return value is ignored;
    an exception raised here is logged and does not change the delivery outcome.
    """


@hookspec
def dispatch_event(event: Event) -> None:
    """Called for every event of SPEC §10: each change of a message's state
    (``message.queued``, ``message.sent``, ``message.bounced``...), ``notice.late`` and
    ``consent.changed``.

    ``event.data`` carries ids and codes only, never names, addresses or numbers.
    Runs in the process where the change happened, after it was stored; the return
    value is ignored, and an exception raised here is logged and changes nothing.
    """
