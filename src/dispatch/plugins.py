"""The plugin manager: built-in plugins, entry points, and what they register.

Built-in plugins are listed in :data:`BUILTIN_PLUGINS` and loaded by module name
like any third-party plugin; third-party plugins come from the ``dispatch``
entry-point group. Set ``DISPATCH_DISABLE_PLUGIN_AUTOLOAD=1`` to load only the
built-ins, or ``DISPATCH_PLUGINS=name,name`` to load only those entry points.
Set ``DISPATCH_TRACE_HOOKS=1`` to log every hook call.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pluggy

from . import hookspecs
from .channels import Channel
from .errors import PluginError
from .messages import MessageType
from .registers import Register

logger = logging.getLogger("dispatch.plugins")

#: Modules loaded as plugins before any entry point (pytest-style).
BUILTIN_PLUGINS: tuple[str, ...] = (
    "dispatch.builtin_types",
    "dispatch_email",
    "dispatch_sms",
    "dispatch_letter",
    "dispatch_phone",
    "dispatch_registers",
)
ENTRY_POINT_GROUP = "dispatch"


def get_plugin_manager(extra_plugins: Iterable[Any] = (), *, autoload: bool | None = None) -> pluggy.PluginManager:
    """A plugin manager with the hook specs, the built-ins, entry points and ``extra_plugins``."""
    pm = pluggy.PluginManager("dispatch")
    pm.add_hookspecs(hookspecs)
    for name in BUILTIN_PLUGINS:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise PluginError(f"built-in plugin {name!r} cannot be imported: {exc}") from exc
        pm.register(module, name=name.removeprefix("dispatch_").removeprefix("dispatch."))
    if autoload is None:
        autoload = not os.environ.get("DISPATCH_DISABLE_PLUGIN_AUTOLOAD")
    try:
        own_version = metadata.version("dispatch")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from an uninstalled checkout
        own_version = None
    versions: dict[str, str] = {
        name.removeprefix("dispatch_").removeprefix("dispatch."): own_version for name in BUILTIN_PLUGINS if own_version
    }
    if autoload:
        only = {n.strip() for n in os.environ.get("DISPATCH_PLUGINS", "").split(",") if n.strip()}
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if only and ep.name not in only:
                continue
            if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken third-party plugin must say who it is
                raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
            if any(p is plugin for p in pm.get_plugins()):
                continue
            pm.register(plugin, name=ep.name)
            if ep.dist is not None:
                versions[ep.name] = ep.dist.version
    pm.dispatch_versions = versions  # type: ignore[attr-defined]
    for plugin in extra_plugins:
        pm.register(plugin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin hook mismatch: {exc}") from exc
    if os.environ.get("DISPATCH_TRACE_HOOKS"):
        pm.trace.root.setwriter(lambda text: logger.info("hook: %s", text.rstrip()))
        pm.enable_tracing()
    return pm


@dataclass(frozen=True)
class Registered:
    """Everything the plugins registered, checked for duplicates."""

    channels: dict[str, type[Channel]]
    message_types: list[MessageType]
    registers: dict[str, type[Register]]
    filters: dict[str, Callable[..., Any]]
    template_roots: list[Path]


def collect(pm: pluggy.PluginManager, builtin_filters: Iterable[str] = ()) -> Registered:
    """Call the registration hooks and return what they registered."""
    channels: dict[str, type[Channel]] = {}
    types: dict[str, MessageType] = {}
    registers: dict[str, type[Register]] = {}
    filters: dict[str, Callable[..., Any]] = {}
    reserved_filters = set(builtin_filters)

    def register_channel(cls: type[Channel]) -> None:
        if not (isinstance(cls, type) and issubclass(cls, Channel)) or not cls.name:
            raise PluginError(f"{cls!r} is not a Channel subclass with a name")
        if cls.name in channels:
            raise PluginError(f"channel {cls.name!r} is registered twice ({channels[cls.name]!r} and {cls!r})")
        channels[cls.name] = cls

    def register_type(message_type: MessageType) -> None:
        if not isinstance(message_type, MessageType):
            raise PluginError(f"{message_type!r} is not a MessageType")
        if message_type.name in types:
            raise PluginError(f"message type {message_type.name!r} is registered twice")
        types[message_type.name] = message_type

    def register_register(cls: type[Register]) -> None:
        if not (isinstance(cls, type) and issubclass(cls, Register)) or not cls.name:
            raise PluginError(f"{cls!r} is not a Register subclass with a name")
        if cls.name in registers:
            raise PluginError(f"register {cls.name!r} is registered twice")
        registers[cls.name] = cls

    roots: list[Path] = []

    def register_root(path: Path | str) -> None:
        folder = Path(path)
        if not folder.is_dir():
            raise PluginError(f"template folder {str(folder)!r} does not exist")
        if folder not in roots:
            roots.append(folder)

    def register_filter(name: str, function: Callable[..., Any]) -> None:
        if name in filters or name in reserved_filters:
            raise PluginError(f"template filter {name!r} is registered twice")
        if not callable(function):
            raise PluginError(f"template filter {name!r} is not callable")
        filters[name] = function

    pm.hook.dispatch_channels(register=register_channel)
    pm.hook.dispatch_message_types(register=register_type)
    pm.hook.dispatch_registers(register=register_register)
    pm.hook.dispatch_template_filters(register=register_filter)
    pm.hook.dispatch_template_roots(register=register_root)
    return Registered(channels, list(types.values()), registers, filters, roots)


def plugin_info(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    """Loaded plugins with their hooks and distribution versions (for ``dispatch plugins``)."""
    versions = getattr(pm, "dispatch_versions", {})
    out = []
    for plugin in pm.get_plugins():
        name = pm.get_name(plugin) or repr(plugin)
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        out.append(
            {
                "name": name,
                "hooks": hooks,
                "version": versions.get(name),
                "builtin": name in {b.removeprefix("dispatch_").removeprefix("dispatch.") for b in BUILTIN_PLUGINS},
            }
        )
    return out
