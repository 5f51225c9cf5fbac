"""The catalog's place in hub.toml: ``[[products]]`` against the meters
and the accounts' ``prices``, the catalog's own rules located in their
files, and the warning of a product priced in another currency than an
account billed for it.

The rules of a price itself (tiers, signs, models that fit a meter) are
:mod:`hub.config.catalog`'s; this module only says where they were
broken. It must not know invoicing or the plugins.
"""

from __future__ import annotations

from hub.config.catalog import catalog_problems
from hub.config.document import Document
from hub.config.errors import ConfigError
from hub.config.identifiers import currency_problem
from hub.config.raw import RawAccounts, items, text


def catalog_errors(doc: Document) -> list[ConfigError]:
    """The catalog's own rules (tiers, signs, meters and units that fit;
    see :func:`hub.config.catalog.catalog_problems`), located in their files."""
    return [ConfigError(*doc.locate(path), message) for path, message in catalog_problems(doc.data)]


def reference_errors(doc: Document) -> list[ConfigError]:
    """A product's meter and currency, and the products an account's
    ``prices`` name."""
    errors: list[ConfigError] = []
    data = doc.data
    product_names = {text(p, "name") for _, p in items(data, "products")}
    meter_names = {text(m, "name") for _, m in items(data, "meters")}
    for i, acc in items(data, "accounts"):
        prices = acc.get("prices")
        for product in prices if isinstance(prices, dict) else ():
            if product not in product_names:
                errors.append(doc.error(["accounts", i], f"prices.{product}", f"unknown product {product!r}"))
    for i, prod in items(data, "products"):
        meter = text(prod, "meter")
        if meter is not None and meter not in meter_names:
            errors.append(doc.error(["products", i], "meter", f"unknown meter {meter!r}"))
        problem = currency_problem(text(prod, "currency"))
        if problem:
            errors.append(doc.error(["products", i], "currency", problem))
    return errors


def price_currency_warnings(doc: Document, raw: RawAccounts, default_currency: str) -> list[ConfigError]:
    """A product whose ``currency`` names the currency of its prices is
    billed as is to an account in another currency (the hub converts
    nothing: its amounts are read in the account's currency) unless the
    account gives it a price of its own (``prices``): a warning of ``hub
    check``, not an error (a catalog that names its currency for the
    record keeps working). A flat product counts only for the accounts
    that list it in ``plans``; a metered one for every account (any of
    them may have usage)."""
    priced_in: dict[str, tuple[str, bool]] = {}
    for _, prod in items(doc.data, "products"):
        name, currency, price = text(prod, "name"), text(prod, "currency"), prod.get("price")
        if name is not None and currency is not None:
            priced_in[name] = (currency, isinstance(price, dict) and price.get("model") == "flat")
    if not priced_in:
        return []
    errors = []
    for i, acc in items(doc.data, "accounts"):
        billed_in = raw.currency(text(acc, "id"), default_currency)
        prices = acc.get("prices") if isinstance(acc.get("prices"), dict) else {}
        plans = acc.get("plans") if isinstance(acc.get("plans"), list) else []
        for product, (currency, flat) in priced_in.items():
            if currency != billed_in and product not in prices and (not flat or product in plans):
                errors.append(doc.error(["accounts", i], f"prices.{product}",
                                        f"product {product!r} is priced in {currency} and this account is "
                                        f"billed in {billed_in}: its amounts are billed as {billed_in} as they "
                                        f"are; give it a price in {billed_in} here"))
    return errors
