"""The plugin host: discovery, registration and the guard around plugin code.

The host is built by :func:`build_host`, never at import time. It loads every
entry point of the ``hub.plugins`` group (the bundled plugins included),
collects the types each registers, refuses duplicate type names, and keeps
every failure of plugin code as data.
"""

from __future__ import annotations

import importlib.metadata as md
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pluggy

from hub.plugin import hookspecs
from hub.plugin.types import ExporterType, PluginFailure, PluginType, RendererType, SourceType

T = TypeVar("T")

#: registration hook name -> the record type it must return
REGISTRATION_HOOKS: dict[str, type[PluginType]] = {
    "hub_register_source_types": SourceType,
    "hub_register_exporter_types": ExporterType,
    "hub_register_renderer_types": RendererType,
}


class PluginConflict(Exception):
    """Two plugins registered the same type name for the same kind."""


@dataclass(frozen=True)
class PluginInfo:
    """An installed plugin: its entry-point name and where it comes from."""

    name: str
    distribution: str
    version: str
    module: str


@dataclass(frozen=True)
class RegisteredType:
    """A plugin type together with the plugin that registered it."""

    type: PluginType
    plugin: PluginInfo

    @property
    def kind(self) -> str:
        return self.type.kind  # type: ignore[attr-defined]


@dataclass
class Host:
    """The built plugin host.

    - ``types``: ``(kind, name)`` -> :class:`RegisteredType`, kind being
      ``source``, ``exporter`` or ``renderer``.
    - ``plugins``: the plugins that loaded.
    - ``failures``: every failure of plugin code so far, in order.
    """

    pm: pluggy.PluginManager
    plugins: list[PluginInfo] = field(default_factory=list)
    types: dict[tuple[str, str], RegisteredType] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)

    def type_of(self, kind: str, name: str) -> RegisteredType | None:
        """The registered type ``name`` of ``kind``, or ``None``."""
        return self.types.get((kind, name))

    def names(self, kind: str) -> list[str]:
        """The sorted names of the registered types of ``kind``."""
        return sorted(n for k, n in self.types if k == kind)

    def guard(self, plugin: str, hook: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """Call plugin code; on an exception record a failure and return None.

        This is the one place where the host calls into plugin code.
        """
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - isolating plugin code is the point
            self.failures.append(PluginFailure(plugin, hook, describe(exc)))
            return None


def describe(exc: BaseException, *, one_line: bool = False) -> str:
    """``Type: message`` of an exception, for failure records; ``one_line``:
    only the message's first line (for a log line)."""
    text = str(exc).strip().splitlines()[:1] if one_line else [str(exc)]
    return f"{type(exc).__name__}: {text[0]}" if text and text[0] else type(exc).__name__


def build_host(entry_points: Iterable[md.EntryPoint] | None = None, extra_plugins: Iterable[tuple[str, object]] = ()) -> Host:
    """Build the plugin host.

    :param entry_points: the entry points to load; by default all of the
        ``hub.plugins`` group of the installed distributions.
    :param extra_plugins: ``(name, plugin object)`` pairs registered in
        addition (the conformance kit uses this to test one plugin alone).
    :raises PluginConflict: two plugins register the same type name.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    host = Host(pm)
    if entry_points is None:
        entry_points = md.entry_points(group=hookspecs.ENTRY_POINT_GROUP)
    for ep in sorted(entry_points, key=lambda e: (e.name, e.value)):
        dist = getattr(ep, "dist", None)
        info = PluginInfo(
            name=ep.name,
            distribution=dist.metadata["Name"] if dist is not None else "?",
            version=dist.version if dist is not None else "?",
            module=ep.value,
        )
        plugin = host.guard(ep.name, "load", ep.load)
        if plugin is None:
            continue
        _register(host, info, plugin)
    for name, plugin in extra_plugins:
        _register(host, PluginInfo(name, "(in process)", "", getattr(plugin, "__name__", repr(plugin))), plugin)
    return host


def _register(host: Host, info: PluginInfo, plugin: object) -> None:
    try:
        # Keyed by distribution too: two distributions may both name an entry
        # point "csv"; their types then conflict below, loudly.
        host.pm.register(plugin, name=f"{info.distribution}:{info.name}:{len(host.plugins)}")
    except Exception as exc:  # noqa: BLE001 - a bad plugin is reported, not fatal
        host.failures.append(PluginFailure(info.name, "register", describe(exc)))
        return
    host.plugins.append(info)
    for attr in dir(plugin):
        if host.pm.parse_hookimpl_opts(plugin, attr) is not None and not hasattr(hookspecs, attr):
            host.failures.append(PluginFailure(info.name, attr, f"implements {attr!r}, which is not a hub hook "
                                                               f"(see hub.plugin.hookspecs; misspelt?)"))
    for hook_name, record_type in REGISTRATION_HOOKS.items():
        impl = next((i for i in getattr(host.pm.hook, hook_name).get_hookimpls() if i.plugin is plugin), None)
        if impl is None:
            continue
        returned = host.guard(info.name, hook_name, _records_of, impl.function, record_type)
        if returned is None:
            continue
        for record in returned:
            if not isinstance(record, record_type):
                host.failures.append(
                    PluginFailure(info.name, hook_name, f"returned {record!r}, not a {record_type.__name__}")
                )
                continue
            key = (record_type.kind, record.name)  # type: ignore[attr-defined]
            other = host.types.get(key)
            if other is not None:
                raise PluginConflict(
                    f"{key[0]} type {record.name!r} is registered twice: by plugin {other.plugin.name!r} "
                    f"of distribution {other.plugin.distribution} {other.plugin.version} and by plugin "
                    f"{info.name!r} of distribution {info.distribution} {info.version}; uninstall one of them"
                )
            host.types[key] = RegisteredType(record, info)


def _records_of(hook: Callable[[], Any], record_type: type[PluginType]) -> list[Any]:
    """Call a registration hook and take its records (plugin code, guarded)."""
    returned = hook()
    if returned is None:
        return []
    if isinstance(returned, (str, bytes, Mapping, PluginType)) or not isinstance(returned, Iterable):
        raise TypeError(f"must return a list of {record_type.__name__}, not {type(returned).__name__}")
    return list(returned)
