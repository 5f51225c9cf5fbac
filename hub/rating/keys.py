"""Rollup keys and specs: what names a product's stored quantities in a
period (:func:`rollup_key`) and what the writers of usage need to keep
them up to date (:func:`rollup_spec`, read by
:func:`hub.store.rollups.apply_batch`).

A key holds everything a product's quantities depend on but the usage
itself, which the rollup's generation stands for (:mod:`hub.store.rollups`):
the rating revision, the product's parameters, the period, the clock where
it matters and the text of :func:`hub.rating.sql.product_sql`, so a hub
whose rating changed never reads an older hub's rollups.

Knows the catalog's products and meters; knows nothing of prices, nor how
the store keeps or reads the rollups.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from hub.config.catalog import Product
from hub.config.model import Config
from hub.periods import Period
from hub.rating.sql import after_bound_list, pieces_of, product_params, product_sql
from hub.store.rollups import MAINTAINED

#: part of every rollup key (:func:`rollup_key`): change it with any change
#: of how a product's quantities are computed that the SQL text does not
#: show (time-weighted rollups hold what finished records bill, and a
#: closed period's hold its running records too)
ROLLUP_REVISION = "3"


def aggregation(config: Config, product: Product) -> str:
    """The aggregation of ``product``'s meter."""
    meter = config.meters.get(product.meter)
    return meter.aggregation if meter else "time_weighted"


def metered(config: Config) -> list[Product]:
    """The catalog's products priced by a meter's quantity."""
    return [p for p in config.catalog if not p.is_flat and p.meter is not None]


def kept(config: Config, products: Sequence[Product], base: dict[str, Any]) -> list[Product]:
    """Those of ``products`` whose rollups a rating of every account stores
    in the period of ``base``: every one in a closed period, the meters the
    writers keep (:data:`hub.store.rollups.MAINTAINED`) in an open one."""
    closed = base["run_end"] == base["p1"]
    return [p for p in products if closed or aggregation(config, p) in MAINTAINED]


def _holds_running(aggregation: str, base: dict[str, Any], finished_only: bool) -> bool:
    """Whether a key's time-weighted rollups hold the running records too:
    a closed period's do (each billed to the period's end, as the writers
    keep it), an open period's do not (billed to now, which moves on)."""
    return aggregation == "time_weighted" and base["run_end"] == base["p1"] and not finished_only


def rollup_spec(config: Config, product: Product, period: Period, tz: ZoneInfo, base: dict[str, Any]
                ) -> dict[str, Any] | None:
    """What a writer needs to keep ``product``'s rollups of a period (its
    bounds in ``base``) up to date (:func:`hub.store.rollups.rollup_delta_sql`):
    None for a meter that is not additive (:data:`hub.store.rollups.MAINTAINED`).
    ``running``: the rollups hold the running records, billed to the
    period's end (:func:`_holds_running`)."""
    agg = aggregation(config, product)
    if agg not in MAINTAINED:
        return None
    return {"aggregation": agg, "meter": product.meter, "itemized": product.itemize == "resource",
            "g": int(product.granularity), "m": int(product.minimum),
            "bounds": after_bound_list(period, tz, product.minimum), "p0": base["p0"], "p1": base["p1"],
            "running": _holds_running(agg, base, finished_only=False)}


@functools.lru_cache(maxsize=256)
def _product_sql_text(aggregation: str, itemized: bool, after_pieces: int) -> str:
    """:func:`product_sql`'s text, compiled once (half a millisecond each:
    a rating of one account computes a dozen keys)."""
    return str(product_sql(aggregation, itemized, after_pieces=after_pieces))


def rollup_key(config: Config, product: Product, period: Period, tz: ZoneInfo, base: dict[str, Any],
               finished_only: bool = False) -> str:
    """The key of ``product``'s quantities in a period (its bounds in
    ``base``). The clock (``run_end``) is part of it only for the meters
    whose rollups are not kept by the writers; a sum's does not depend on
    it; a time-weighted key holds the finished records only in an open
    period (or with ``finished_only``: the key the writers kept while the
    period was open) and every record, running ones billed to the end, in
    a closed one."""
    agg = aggregation(config, product)
    params = product_params(product, period, tz)
    itemized = product.itemize == "resource"
    sql = _product_sql_text(agg, itemized, pieces_of(params))
    clock = (("to_end" if _holds_running(agg, base, finished_only) else None)
             if agg in MAINTAINED else base["run_end"])
    payload = json.dumps([ROLLUP_REVISION, agg, itemized, params, base["p0"], base["p1"], clock, sql],
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()
