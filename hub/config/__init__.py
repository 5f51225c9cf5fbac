"""hub.toml: loading, validation and the typed configuration."""

from hub.config.errors import ConfigError, ConfigErrors
from hub.config.loader import hub_schema, load_config
from hub.config.model import (
    Account,
    Address,
    Config,
    CreditConfig,
    DiscountConfig,
    HubSettings,
    InvoicingSettings,
    Meter,
    SellerConfig,
    SourceInstance,
)

__all__ = ["Account", "Address", "Config", "ConfigError", "ConfigErrors", "CreditConfig", "DiscountConfig",
           "HubSettings", "InvoicingSettings", "Meter", "SellerConfig", "SourceInstance", "hub_schema", "load_config"]
