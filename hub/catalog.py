"""The catalog under the import path ``hub.catalog``: re-exports
:mod:`hub.config.catalog`, where the products and prices are typed and
checked. It holds nothing of its own."""

from hub.config.catalog import (
    ADDITIVE,
    ITEMIZABLE_MODELS,
    Catalog,
    JsonPath,
    Product,
    catalog_problems,
    parse_price,
)

__all__ = ["ADDITIVE", "ITEMIZABLE_MODELS", "Catalog", "JsonPath", "Product", "catalog_problems", "parse_price"]
