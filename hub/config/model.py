"""The typed configuration the rest of the hub reads (never raw TOML)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hub.catalog import Catalog
from hub.plugin_types import InstanceConfig

AGGREGATIONS = ("time_weighted", "sum", "max", "unique", "latest")


@dataclass(frozen=True)
class HubSettings:
    """``[hub]``: where the store is and the hub-wide defaults."""

    database: str
    currency: str = "EUR"
    timezone: str = "UTC"
    rounding: str = "half_up"


@dataclass(frozen=True)
class Meter:
    """``[[meters]]``: what is measured and how it aggregates over a period."""

    name: str
    aggregation: str
    unit: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Account:
    """``[[accounts]]``: a billed customer.

    Only the keys the current stages use are typed; the rest of the table is
    kept in ``extra`` until a stage needs it.
    """

    id: str
    name: str
    country: str | None = None
    currency: str = "EUR"
    timezone: str = "UTC"
    parent: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class SourceInstance(InstanceConfig):
    """A ``[[sources]]`` table: a source plugin instance and its pull interval
    (seconds, ``None`` = the scheduler's default)."""

    interval: int | None = None


@dataclass(frozen=True)
class Config:
    """The whole validated configuration.

    - ``path``: the hub.toml it was read from; ``base_dir`` its directory.
    - ``raw``: the merged document, for stages not yet typed here.
    - ``catalog``: the products and the accounts' price overrides.
    """

    path: Path
    hub: HubSettings
    meters: Mapping[str, Meter]
    accounts: Mapping[str, Account]
    sources: tuple[SourceInstance, ...]
    exporters: tuple[InstanceConfig, ...]
    renderers: tuple[InstanceConfig, ...]
    raw: Mapping[str, Any]
    catalog: Catalog = field(default_factory=Catalog)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def source(self, name: str) -> SourceInstance:
        """The source instance called ``name``; ``KeyError`` if none."""
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(name)
