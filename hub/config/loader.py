"""Load hub.toml: read it (and the files it includes), check it, type it.

Every problem is collected, then raised together as :class:`ConfigErrors`,
so an operator fixes a config in one pass, not one error per run. This
module only runs the steps in order and assembles the
:class:`~hub.config.model.Config`; each table's checks and typing live in
the module of that table (settings, accounts, prices, seller, grants,
instances), the reading in :mod:`hub.config.document` and the schema's
wording in :mod:`hub.config.schema`. It must not hold a check of its own
beyond the names that must be unique across a whole array.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from hub.config.accounts import account_errors, account_invoicing_errors, account_problems, check_account, typed_accounts
from hub.config.catalog import Catalog
from hub.config.document import Document, read_document
from hub.config.errors import ConfigError, ConfigErrors
from hub.config.grants import grant_errors, typed_credits, typed_discounts
from hub.config.instances import PLUGIN_ARRAYS, plugin_instances
from hub.config.model import Config, Meter
from hub.config.prices import catalog_errors, price_currency_warnings, reference_errors
from hub.config.raw import RawAccounts, hub_currency, items, text
from hub.config.schema import hub_schema, schema_errors
from hub.config.seller import seller_errors, tax_rates, typed_seller
from hub.config.settings import dunning_settings, hub_errors, hub_settings, invoicing_errors, invoicing_settings
from hub.config.text import control_character_errors
from hub.host import Host
from hub.plugin.types import InstanceConfig

#: the arrays whose tables must have distinct names, and the key naming them
_NAMED_ARRAYS = (("meters", "name"), ("products", "name"), ("accounts", "id"),
                 ("sources", "name"), ("exporters", "name"), ("renderers", "name"))


def load_config(path: str | os.PathLike[str], host: Host, *, check_secrets: bool = False,
                catalog: str | os.PathLike[str] | None = None) -> Config:
    """Load, validate and type the configuration at ``path``.

    :param host: the plugin host, whose types validate the plugin instances.
    :param check_secrets: also require every ``*_env`` variable to be set
        (``hub check`` does; other commands let the instance fail alone).
    :param catalog: a what-if catalog: a TOML file whose ``[[products]]``
        (and ``[[meters]]``, if it has any) replace the configuration's, with
        the same checks; the accounts and their price overrides stay.
    :raises ConfigErrors: with every problem found.
    """
    main = Path(path).resolve()
    errors: list[ConfigError] = []
    doc = read_document(main, errors, Path(catalog).resolve() if catalog is not None else None)
    if doc is None:
        raise ConfigErrors(errors)
    errors.extend(schema_errors(doc))
    # control characters, non-finite floats, integers beyond 64 bits: unless the schema refused the value already
    schema_refused = {(e.file, e.table, e.key) for e in errors}
    errors.extend(e for e in control_character_errors(doc) if (e.file, e.table, e.key) not in schema_refused)
    raw = RawAccounts.of(doc.data)
    # The checks below read the document defensively, so that one run lists
    # their errors together with the schema's.
    # A value the schema refused is not reported a second time.
    refused = {(e.file, e.table, e.key) for e in errors}
    structure = (_duplicate_errors(doc) + hub_errors(doc) + account_errors(doc, raw) + reference_errors(doc)
                 + catalog_errors(doc))
    errors.extend(e for e in structure if (e.file, e.table, e.key) not in refused)
    # Nor are the invoicing checks of a table the schema refused as a whole
    # (a discount with both percent and amount).
    invoicing = account_invoicing_errors(doc) + seller_errors(doc) + invoicing_errors(doc) + grant_errors(doc, raw)
    errors.extend(e for e in invoicing if (e.file, e.table, e.key) not in refused and (e.file, e.table, "") not in refused)
    instances = {array: plugin_instances(doc, array, host, check_secrets, raw.tables, errors) for array in PLUGIN_ARRAYS}
    if errors:
        raise ConfigErrors(errors)
    warnings = tuple(str(w) for w in [*doc.warnings, *price_currency_warnings(doc, raw, hub_currency(doc.data))])
    return replace(_typed(main, doc.data, raw, instances), warnings=warnings, places=_places(doc))


def _places(doc: Document) -> dict[tuple[str, str | int | None], tuple[str, str]]:
    """Where the tables a check after loading may name were written
    (:attr:`Config.places`)."""
    places: dict[tuple[str, str | int | None], tuple[str, str]] = {}
    for i, acc in items(doc.data, "accounts"):
        places.setdefault(("accounts", acc["id"]), doc.locate(["accounts", i])[:2])
    for array in ("credits", "discounts"):
        for i, _ in items(doc.data, array):
            places[(array, i)] = doc.locate([array, i])[:2]
    for name in ("seller", "tax", "invoicing", "hub"):
        places[(name, None)] = doc.locate([name, "x"])[:2]
    return places


def _duplicate_errors(doc: Document) -> list[ConfigError]:
    """A name (an account's id) used by two tables of one array."""
    errors: list[ConfigError] = []
    for array, key in _NAMED_ARRAYS:
        seen: dict[str, str] = {}
        for i, item in items(doc.data, array):
            name = text(item, key)
            file, table, _ = doc.locate([array, i])
            if name is None:
                continue
            if name in seen:
                errors.append(ConfigError(file, table, key, f"{name!r} is already used by {seen[name]}"))
            else:
                seen[name] = f"{table} in {file}"
    return errors


def _typed(main: Path, data: Mapping[str, Any], raw: RawAccounts,
           instances: Mapping[str, list[InstanceConfig]]) -> Config:
    """The :class:`Config` of a document with no problems."""
    settings = hub_settings(data)
    invoicing = invoicing_settings(data)
    meters = {m["name"]: Meter(m["name"], m["aggregation"], m.get("unit"), m.get("description", ""))
              for m in data.get("meters", [])}
    accounts = typed_accounts(data, raw, settings, invoicing)
    catalog = Catalog.from_data(data, {name: m.aggregation for name, m in meters.items()}, raw.tree)
    return Config(
        path=main, hub=settings, meters=meters, accounts=accounts, catalog=catalog,
        sources=tuple(instances["sources"]),  # type: ignore[arg-type]
        exporters=tuple(instances["exporters"]), renderers=tuple(instances["renderers"]), raw=data,
        seller=typed_seller(data), tax_rates=tax_rates(data), invoicing=invoicing, dunning=dunning_settings(data),
        credits=typed_credits(data, accounts), discounts=typed_discounts(data, accounts),
    )


__all__ = ["account_problems", "check_account", "hub_schema", "load_config"]
