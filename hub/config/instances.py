"""The plugin instances: ``[[sources]]``, ``[[exporters]]`` and
``[[renderers]]``, each validated against the schema its plugin type
declares, with the schema's defaults filled in and, for ``hub check``,
every ``*_env`` secret required to be set.

It owns the keys of an instance that belong to the host (name, type, a
source's interval, an exporter's outbox keys) and asks the plugin host
for the types. It must not know what any plugin does with its options.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Collection

import jsonschema

from hub.config.document import Document
from hub.config.errors import ConfigError
from hub.config.model import ExporterInstance, SourceInstance
from hub.config.raw import items, text
from hub.config.schema import FORMATS, Validator, errors_of, fill_defaults
from hub.config.values import parse_duration
from hub.host import Host
from hub.plugin.types import InstanceConfig

#: arrays holding plugin instances -> the kind of plugin type they name
PLUGIN_ARRAYS = {"sources": "source", "exporters": "exporter", "renderers": "renderer"}
#: keys of a plugin instance that belong to the host, not to the plugin
HOST_INSTANCE_KEYS = ("name", "type", "interval")
#: the keys of an [[exporters]] table that belong to the hub's outbox
EXPORTER_HOST_KEYS = ("accounts", "tags", "events", "max_attempts")


def plugin_instances(doc: Document, array: str, host: Host, check_secrets: bool, account_ids: Collection[str],
                     errors: list[ConfigError]) -> list[InstanceConfig]:
    """Validate each instance of ``array`` against its type's schema; the
    valid ones typed, the problems added to ``errors``.

    :param check_secrets: require every ``*_env`` option's variable to be set.
    :param account_ids: the accounts an exporter may name.
    """
    kind = PLUGIN_ARRAYS[array]
    out: list[InstanceConfig] = []
    for i, item in items(doc.data, array):
        file, table, _ = doc.locate([array, i])
        type_name, name = text(item, "type"), text(item, "name")
        if not type_name or name is None:
            continue  # reported by the schema
        registered = host.type_of(kind, type_name)
        if registered is None:
            errors.append(ConfigError(file, table, "type", _unknown_type(host, kind, type_name)))
            continue
        host_keys = HOST_INSTANCE_KEYS + (EXPORTER_HOST_KEYS if array == "exporters" else ())
        options = {k: v for k, v in item.items() if k not in host_keys}
        schema = registered.type.config_schema
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            errors.append(ConfigError(file, table, "type", f"plugin {registered.plugin.name!r} declares an invalid "
                                                           f"schema for type {type_name!r}: {exc.message}"))
            continue
        option_errors = [
            e for error in Validator(schema, format_checker=FORMATS).iter_errors(options)
            for e in errors_of(error, doc, prefix=[array, i])
        ]
        errors.extend(option_errors)
        if option_errors:
            continue
        options = fill_defaults(schema, options)
        if check_secrets:
            for key, value in options.items():
                if key.endswith("_env") and isinstance(value, str) and not os.environ.get(value):
                    errors.append(ConfigError(file, table, key, f"environment variable {value} is not set"))
        base = dict(name=name, type=type_name, options=options, base_dir=doc.main.parent)
        if array == "sources":
            try:
                interval = parse_duration(item["interval"]) if "interval" in item else None
            except (TypeError, ValueError):
                continue  # reported by the schema
            out.append(SourceInstance(**base, interval=interval))
        elif array == "exporters":
            supported = tuple(registered.type.events)
            events = tuple(item.get("events") or supported)
            unsupported = [e for e in events if e not in supported]
            if unsupported:
                errors.append(ConfigError(file, table, "events", f"type {type_name!r} cannot deliver "
                                          f"{', '.join(unsupported)}; it delivers {', '.join(supported)}"))
                continue
            unknown = [a for a in item.get("accounts", ()) if a not in account_ids]
            if unknown:
                errors.append(ConfigError(file, table, "accounts", f"unknown account {', '.join(map(repr, unknown))}"))
                continue
            out.append(ExporterInstance(**base, accounts=tuple(item.get("accounts", ())),
                                        tags=tuple(item.get("tags", ())), events=events,
                                        max_attempts=int(item.get("max_attempts", 10))))
        else:
            out.append(InstanceConfig(**base))
    return out


def _unknown_type(host: Host, kind: str, type_name: str) -> str:
    """What ``hub check`` says of a type no plugin registers: the closest
    known one, the installed ones, and the plugins that failed to load."""
    known = host.names(kind)
    close = difflib.get_close_matches(type_name, known, n=1)
    failed = [f.plugin for f in host.failures if f.hook in ("load", "register")]
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    hint += f"; installed: {', '.join(known)}" if known else f"; no {kind} type is installed"
    if failed:
        hint += f"; plugins that failed to load: {', '.join(failed)} (see `hub plugins`)"
    return f"unknown {kind} type {type_name!r}{hint}"
