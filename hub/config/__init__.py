"""hub.toml: loading, validation and the typed configuration."""

from hub.config.errors import ConfigError, ConfigErrors
from hub.config.loader import hub_schema, load_config
from hub.config.model import Account, Config, HubSettings, Meter, SourceInstance

__all__ = ["Account", "Config", "ConfigError", "ConfigErrors", "HubSettings", "Meter", "SourceInstance",
           "hub_schema", "load_config"]
