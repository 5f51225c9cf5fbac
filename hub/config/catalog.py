"""The catalog: ``[[products]]`` and the accounts' price overrides, typed
and checked (docs/billing-rules.md, Prices and Lines).

Two entry points, both on the merged hub.toml document (plain TOML data):

- :func:`catalog_problems` lists what is wrong with the catalog beyond what
  the JSON schema can say (tier order, signs, meters and units that do not
  fit together), as ``(json_path, message)`` pairs the config loader turns
  into config errors.
- :meth:`Catalog.from_data` types a catalog that has no problems.

A price the schema refuses (a float, a missing or unknown key, a model that
does not exist) is left to the schema's error: its other checks wait until
it is well-formed, since a mistyped model says nothing reliable about the
meter or the itemization it needs.

It knows the price models (:mod:`hub.pricing`) and the products' tables;
it must not know the rest of hub.toml (where a table was written, the
accounts beyond their prices and itemize choice), nor how usage is rated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hub.config.tree import AccountTree, inherited
from hub.config.values import parse_duration
from hub.pricing import TIME_UNITS, Flat, Package, PerUnit, Price, Tier, Tiered

#: price models a product itemized by resource may use
ITEMIZABLE_MODELS = ("per_unit", "flat")
#: meters whose quantity is the sum of its resources' own (a sum of
#: unit-seconds, of quantities, a count of distinct resources): a line of
#: such a product drills down to its resources exactly, and splitting it
#: per resource changes nothing but the rounding of each line
ADDITIVE = ("time_weighted", "sum", "unique")
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")  # schemas/hub.schema.json, $defs.decimal
_MODEL_KEYS = {
    "per_unit": {"unit_price"},
    "graduated": {"tiers"},
    "volume": {"tiers"},
    "package": {"size", "package_price"},
    "flat": {"amount"},
}

JsonPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Product:
    """A ``[[products]]`` table, with its defaults filled in.

    - ``meter``: the meter it prices; ``None`` only for a flat price.
    - ``per``: the priced unit: ``second`` | ``minute`` | ``hour`` | ``day``
      (time-weighted meters; default ``second``) or ``unit`` (the other
      meters, and flat prices without a meter).
    - ``granularity``, ``minimum``: seconds (defaults 1 and 0).
    - ``free``: the free allowance, in the priced unit (default 0).
    - ``itemize``: ``product`` (one line per account, product and period) or
      ``resource`` (one line per resource).
    - ``currency``: the currency its prices are in, if the product sets one.
    - ``price``: the list price (an account may override it, see
      :meth:`Catalog.price_for`).
    """

    name: str
    price: Price
    meter: str | None = None
    per: str = "unit"
    granularity: int = 1
    minimum: int = 0
    free: Decimal = Decimal(0)
    itemize: str = "product"
    currency: str | None = None
    description: str = ""

    @property
    def is_flat(self) -> bool:
        return isinstance(self.price, Flat)


@dataclass(frozen=True)
class Catalog:
    """The products by name, and each account's overrides (account id ->
    product name -> price)."""

    products: Mapping[str, Product] = field(default_factory=dict)
    overrides: Mapping[str, Mapping[str, Price]] = field(default_factory=dict)
    #: account id -> its ``itemize`` choice (``product`` | ``resource``), its
    #: own or else its parent's (up the tree), if one makes it
    itemize: Mapping[str, str] = field(default_factory=dict)
    #: meter name -> its aggregation
    aggregations: Mapping[str, str] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Product]:
        return iter(self.products.values())

    def __len__(self) -> int:
        return len(self.products)

    def __contains__(self, name: object) -> bool:
        return name in self.products

    def product(self, name: str) -> Product:
        """The product called ``name``; ``KeyError`` if none."""
        return self.products[name]

    def price_for(self, account_id: str, product_name: str) -> Price:
        """The price ``account_id`` pays for ``product_name``: its contract's
        override if it has one, else the product's list price. An account's
        override applies to that account only (not to its children).

        :raises KeyError: for an unknown product.
        """
        product = self.products[product_name]
        return self.overrides.get(account_id, {}).get(product_name, product.price)

    def itemized(self, account_id: str, product: Product) -> bool:
        """Whether ``account_id``'s lines of ``product`` are one per
        resource: the account's ``itemize`` choice (or its parent's) where
        it changes nothing but how the lines are split, else the product's
        own ``itemize``. The choice applies to a product with an
        :data:`ADDITIVE` meter, no free allowance (it comes off each line)
        and, to itemize, a per_unit price: its lines then add up to the
        grouped line but for the rounding of each. A max or latest line
        (one record's quantity per line) or a tiered price (its tiers count
        the line's quantity) keeps the product's lines."""
        choice = self.itemize.get(account_id)
        own = product.itemize == "resource"
        if choice is None or choice == ("resource" if own else "product"):
            return own
        if self.aggregations.get(product.meter or "") not in ADDITIVE or product.free != 0:
            return own
        if choice == "resource" and self.price_for(account_id, product.name).model != "per_unit":
            return own
        return choice == "resource"

    @classmethod
    def from_data(cls, data: Mapping[str, Any], aggregations: Mapping[str, str],
                  tree: AccountTree | None = None) -> Catalog:
        """Type the catalog of a merged hub.toml that has passed the schema
        and :func:`catalog_problems`.

        :param aggregations: each meter's aggregation, by meter name (the
            default ``per`` depends on it).
        :param tree: the accounts' tree (built from ``data`` when not given).
        """

        products = {}
        for item in data.get("products", []):
            meter = item.get("meter")
            default_per = "second" if aggregations.get(meter) == "time_weighted" else "unit"
            products[item["name"]] = Product(
                name=item["name"],
                description=item.get("description", ""),
                meter=meter,
                per=item.get("per", default_per),
                granularity=parse_duration(item.get("granularity", "1s")),
                minimum=parse_duration(item.get("minimum", "0s")),
                free=Decimal(item.get("free", "0")),
                itemize=item.get("itemize", "product"),
                currency=item.get("currency"),
                price=parse_price(item["price"]),
            )
        overrides = {
            acc["id"]: {name: parse_price(table) for name, table in acc["prices"].items()}
            for acc in data.get("accounts", []) if acc.get("prices")
        }
        accounts = {acc["id"]: acc for acc in data.get("accounts", [])}
        tree = tree if tree is not None else AccountTree.from_tables(data.get("accounts", []))
        itemize = {account_id: choice for account_id in accounts
                   if (choice := inherited(accounts, tree, account_id, "itemize")) is not None}
        return cls(products, overrides, itemize, dict(aggregations))


def parse_price(table: Mapping[str, Any]) -> Price:
    """A price table (``{ model = "per_unit", unit_price = "0.0000115" }``)
    typed; ``ValueError`` if it is not well-formed (the schema's shape:
    a known model, exactly its keys, decimals written as strings)."""
    if not isinstance(table, Mapping):
        raise ValueError("a price is a table")
    model = table.get("model")
    if not isinstance(model, str) or model not in _MODEL_KEYS:
        raise ValueError(f"unknown price model {model!r}")
    if set(table) != {"model"} | _MODEL_KEYS[model]:
        raise ValueError(f"a {model} price has exactly the keys model, {', '.join(sorted(_MODEL_KEYS[model]))}")
    if model == "per_unit":
        return PerUnit(_decimal(table["unit_price"]))
    if model == "package":
        return Package(_decimal(table["size"]), _decimal(table["package_price"]))
    if model == "flat":
        return Flat(_decimal(table["amount"]))
    tiers = table["tiers"]
    if not isinstance(tiers, list) or not tiers:
        raise ValueError("tiers is a non-empty array of tables")
    typed = []
    for tier in tiers:
        if not isinstance(tier, Mapping) or "unit_price" not in tier or not set(tier) <= {"up_to", "unit_price"}:
            raise ValueError("a tier has a unit_price and may have an up_to")
        up_to = _decimal(tier["up_to"]) if "up_to" in tier else None
        typed.append(Tier(up_to, _decimal(tier["unit_price"])))
    return Tiered(model, tuple(typed))


def _decimal(value: Any) -> Decimal:
    if not isinstance(value, str) or not _DECIMAL.fullmatch(value):
        raise ValueError(f"{value!r} is not a decimal written as a string")
    return Decimal(value)


# --------------------------------------------------------------------------
# Checks


def catalog_problems(data: Mapping[str, Any]) -> list[tuple[JsonPath, str]]:
    """What is wrong with the catalog of the merged document ``data``, as
    ``(path, message)``; the path is a JSON path into ``data`` such as
    ``("products", 0, "price", "tiers", 1, "up_to")``.

    Reads ``data`` defensively: whatever the schema refuses is skipped here.
    """
    problems: list[tuple[JsonPath, str]] = []
    aggregations = {m["name"]: m.get("aggregation") for m in _tables(data.get("meters"))
                    if isinstance(m.get("name"), str)}
    products: dict[str, tuple[str, Price | None]] = {}  # name -> (itemize, price)
    for i, item in enumerate(data.get("products") or []):
        if not isinstance(item, dict):
            continue
        path: JsonPath = ("products", i)
        price = _price_or_none(item.get("price"))
        if price is not None:
            problems += _price_problems(price, (*path, "price"))
        problems += _product_problems(item, price, aggregations, path)
        if isinstance(item.get("name"), str):
            products.setdefault(item["name"], (item.get("itemize", "product"), price))
    for i, acc in enumerate(data.get("accounts") or []):
        prices = acc.get("prices") if isinstance(acc, dict) else None
        for name, table in prices.items() if isinstance(prices, dict) else ():
            price = _price_or_none(table)
            if price is None or name not in products:
                continue  # refused by the schema, or an unknown product (the loader says so)
            path = ("accounts", i, "prices", name)
            problems += _price_problems(price, path)
            problems += _override_problems(name, price, *products[name], path)
    return problems


def _tables(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _price_or_none(table: Any) -> Price | None:
    try:
        return parse_price(table)
    except ValueError:
        return None


def _price_problems(price: Price, path: JsonPath) -> list[tuple[JsonPath, str]]:
    """Signs and tier order of one well-formed price."""
    problems: list[tuple[JsonPath, str]] = []

    def not_negative(value: Decimal, *key: str | int) -> None:
        if value < 0:
            problems.append(((*path, *key), f"'{value}' must not be negative"))

    if isinstance(price, PerUnit):
        not_negative(price.unit_price, "unit_price")
    elif isinstance(price, Flat):
        not_negative(price.amount, "amount")
    elif isinstance(price, Package):
        if price.size <= 0:
            problems.append(((*path, "size"), f"'{price.size}' must be greater than 0"))
        not_negative(price.package_price, "package_price")
    else:
        last = len(price.tiers) - 1
        previous: Decimal | None = None
        for t, tier in enumerate(price.tiers):
            not_negative(tier.unit_price, "tiers", t, "unit_price")
            key: JsonPath = (*path, "tiers", t, "up_to")
            if tier.up_to is None:
                if t != last:
                    problems.append((key, "required key is missing: only the last tier omits up_to"))
                continue
            if t == last:
                above = " above the tiers before it" if last else ""
                problems.append((key, f"the last tier must omit up_to: it holds every quantity{above}"))
            if previous is None and tier.up_to <= 0:
                problems.append((key, f"'{tier.up_to}' must be greater than 0"))
            elif previous is not None and tier.up_to <= previous:
                problems.append((key, f"'{tier.up_to}' must be greater than the up_to of every tier before it "
                                      f"('{previous}'): tiers go up"))
            previous = tier.up_to if previous is None else max(previous, tier.up_to)
    return problems


def _product_problems(item: Mapping[str, Any], price: Price | None, aggregations: Mapping[str, Any],
                      path: JsonPath) -> list[tuple[JsonPath, str]]:
    problems: list[tuple[JsonPath, str]] = []

    def add(key: str, message: str) -> None:
        problems.append(((*path, key), message))

    granularity = _duration_or_none(item.get("granularity"))
    if granularity is not None and granularity < 1:
        add("granularity", f"{item['granularity']!r} must be at least 1s")
    free = item.get("free")
    if isinstance(free, str) and _DECIMAL.fullmatch(free) and Decimal(free) < 0:
        add("free", f"'{free}' must not be negative")
    if price is None:
        return problems  # the schema has refused it: its model is no guide
    meter, per, itemize = item.get("meter"), item.get("per"), item.get("itemize")
    if meter is None and not isinstance(price, Flat):
        add("meter", f"required key is missing: a {price.model} price needs a meter (only a flat price has none)")
    aggregation = aggregations.get(meter) if isinstance(meter, str) else None
    if aggregation in ("sum", "max", "unique", "latest") and per in TIME_UNITS and not isinstance(price, Flat):
        add("per", f"{per!r} is only for time_weighted meters; meter {meter!r} aggregates by {aggregation}: "
                   f"use per = \"unit\"")
    elif aggregation == "time_weighted" and per == "unit" and not isinstance(price, Flat):
        add("per", f"'unit' is for sum, max, unique and latest meters; meter {meter!r} is time_weighted: "
                   f"use second, minute, hour or day")
    if itemize == "resource" and price.model not in ITEMIZABLE_MODELS:
        add("itemize", f"'resource' needs a per_unit or flat price, not {price.model}")
    return problems


def _override_problems(name: str, price: Price, itemize: Any, listed: Price | None,
                       path: JsonPath) -> list[tuple[JsonPath, str]]:
    """An override keeps what the product's lines rely on: flat stays flat,
    metered stays metered, and an itemized product stays itemizable."""
    key = (*path, "model")
    if listed is not None and isinstance(listed, Flat) != isinstance(price, Flat):
        kind = "flat" if isinstance(listed, Flat) else f"metered ({listed.model})"
        return [(key, f"{price.model!r} does not fit product {name!r}, whose price is {kind}: "
                      f"an override must be {kind.split()[0]} too")]
    if itemize == "resource" and price.model not in ITEMIZABLE_MODELS:
        return [(key, f"{price.model!r} does not fit product {name!r}, which is itemized by resource: "
                      f"use per_unit or flat")]
    return []


def _duration_or_none(value: Any) -> int | None:
    try:
        return parse_duration(value) if isinstance(value, str) else None
    except ValueError:
        return None
