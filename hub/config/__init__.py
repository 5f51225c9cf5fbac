"""hub.toml: loading, validation and the typed configuration.

The rest of the hub imports from here: :func:`load_config`, the typed
:class:`Config` and its parts, :class:`ConfigErrors`, and the account tree
(``Config.tree``, :class:`AccountTree`). Reading the files is
:mod:`hub.config.document`'s, the schema's wording :mod:`hub.config.schema`'s,
and each table's checks and typing live in the module named after it
(settings, accounts, prices and catalog, seller, grants, instances);
:mod:`hub.config.loader` runs them in order.
"""

from hub.config.errors import ConfigError, ConfigErrors
from hub.config.loader import hub_schema, load_config
from hub.config.model import (
    Account,
    Address,
    Config,
    CreditConfig,
    DiscountConfig,
    ExporterInstance,
    HubSettings,
    InvoicingSettings,
    Meter,
    SellerConfig,
    SourceInstance,
)
from hub.config.tree import AccountTree

__all__ = ["Account", "AccountTree", "Address", "Config", "ConfigError", "ConfigErrors", "CreditConfig",
           "DiscountConfig", "ExporterInstance", "HubSettings", "InvoicingSettings", "Meter", "SellerConfig",
           "SourceInstance", "hub_schema", "load_config"]
