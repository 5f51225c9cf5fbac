"""The rating stage: a period's charges of every account, or of a few
(:func:`rate`), and the open periods' rollups kept for ``hub run``
(:func:`keep_rollups`).

It groups the accounts by time zone, plans which products each group
rates as the catalog lists them and which as a variant (an account's
``itemize`` choice, :func:`regrouped`), takes each product's quantities
from :mod:`hub.rating.product_quantities` and prices them into lines
(:mod:`hub.rating.charge`). Knows the configuration and the rating's
parts; knows nothing of invoices, documents or the CLI.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from hub.config.catalog import Product
from hub.config.model import Config
from hub.periods import Period
from hub.rating.charge import Charge, flat_charge, metered_charge
from hub.rating.connection import IN_LIST_MAX, cyclic_gc_paused, groups, rating_connection
from hub.rating.keys import kept, metered, rollup_key
from hub.rating.product_quantities import product_quantities
from hub.store import rollups

log = logging.getLogger("hub.rating")


def regrouped(config: Config, products: Sequence[Product], ids: Sequence[str]) -> dict[str, set[str]]:
    """Per product, those of ``ids`` whose lines of it are itemized
    otherwise than the product says (the account's ``itemize`` choice,
    :meth:`hub.config.catalog.Catalog.itemized`)."""
    catalog = config.catalog
    choosers = [acc for acc in ids if acc in catalog.itemize] if catalog.itemize else []
    out: dict[str, set[str]] = defaultdict(set)
    for acc in choosers:
        for p in products:
            if catalog.itemized(acc, p) != (p.itemize == "resource"):
                out[p.name].add(acc)
    return dict(out)


@dataclass(frozen=True)
class _Plan:
    """How a rating of ``ids`` rates ``products`` given the accounts'
    itemize choices (:func:`_plan`).

    - ``regrouped``: :func:`regrouped`;
    - ``listed``: the products some of ``ids`` bill as the product lists
      them (not every one itemizes it otherwise);
    - ``variants``: the products some accounts itemize otherwise, with the
      other ``itemize``, rated like any other product (each has its own
      rollup key) for ``variant_accounts``, those accounts."""

    regrouped: dict[str, set[str]]
    listed: list[Product]
    variants: list[Product]
    variant_accounts: list[str]


def _plan(config: Config, products: Sequence[Product], ids: Sequence[str]) -> _Plan:
    other = regrouped(config, products, ids)
    return _Plan(other, [p for p in products if len(other.get(p.name, ())) < len(ids)],
                 [replace(p, itemize="product" if p.itemize == "resource" else "resource")
                  for p in products if p.name in other],
                 sorted(set().union(*other.values())))


def _since_s(value: Any, tz: ZoneInfo) -> int | None:
    if value is None:
        return None
    from hub.config.values import parse_date_or_time

    return int(parse_date_or_time(str(value), tz).timestamp())


def rate(engine: Engine, config: Config, period: Period, accounts: Sequence[str] | None = None,
         now: datetime | None = None) -> list[Charge]:
    """The charges of ``period``, sorted by account, product and resource.

    :param accounts: only these accounts (default: every configured one).
    :param now: the clock for running records of an open period.
    """
    now_s = int((now or datetime.now(timezone.utc)).timestamp())
    rounding = config.hub.rounding
    catalog = config.catalog
    metered_products = metered(config)
    flat = [p for p in catalog if p.is_flat]
    out: list[Charge] = []
    with cyclic_gc_paused(), rating_connection(engine) as conn:
        for tz, ids, base, filter_accounts in groups(config, period, accounts, now_s):
            p0, p1 = base["p0"], base["p1"]
            wanted = set(ids)
            plan = _plan(config, metered_products, ids)
            for product, per_line in product_quantities(conn, config, plan.listed, period, tz, base,
                                                        filter_accounts):
                elsewhere = plan.regrouped.get(product.name, ())
                for (acc, res), (q, n) in per_line.items():
                    if q == 0 or acc not in wanted or acc in elsewhere:
                        continue
                    out.append(metered_charge(config, acc, product, res, q, n, rounding))
            if plan.variants:
                for product, per_line in product_quantities(conn, config, plan.variants, period, tz,
                                                            {**base, "accounts": plan.variant_accounts},
                                                            len(plan.variant_accounts) < IN_LIST_MAX):
                    only = plan.regrouped[product.name]
                    for (acc, res), (q, n) in per_line.items():
                        if q != 0 and acc in only:
                            out.append(metered_charge(config, acc, product, res, q, n, rounding))
            for product in flat:
                for acc in ids:
                    account = config.accounts.get(acc)
                    if account is None or product.name not in (account.extra.get("plans") or ()):
                        continue
                    # ``since`` (a date at midnight in the account's time
                    # zone or an RFC 3339 time) starts the plan
                    since = _since_s(account.extra.get("since"), tz)
                    active = max(0, p1 - max(p0, since if since is not None else p0))
                    active = min(active, p1 - p0)
                    if active == 0:
                        continue
                    out.append(flat_charge(config, acc, product, active, p1 - p0, rounding))
    return sorted(out, key=lambda c: (c.account, c.product, c.resource_id or ""))


def keep_rollups(engine: Engine, config: Config, periods: Sequence[Period], now: datetime | None = None
                 ) -> list[Period]:
    """Rate every account over each of ``periods`` whose rollups the
    writers could keep up to date but that no rating has stored (or that
    are no longer valid); returns the periods it rated.

    ``hub run`` calls it for the open periods of the accounts' schedules:
    a rating early in a period finds little usage to add (it still scans:
    1.9 s on SQLite for the month after 5 M records), and from then
    on every pull keeps the period's rollups, so the account's current
    charges and its closing read a few rows, not the period's records.
    Only time zones with enough accounts to store rollups
    (:data:`hub.rating.connection.IN_LIST_MAX`) count; in an open period,
    only the meters the writers keep (:data:`hub.store.rollups.MAINTAINED`).
    A rating that could not store them (usage changed meanwhile, on
    PostgreSQL) is logged; the next call rates again."""
    now = now or datetime.now(timezone.utc)
    rated = []
    for period in periods:
        if _rollups_missing(engine, config, period, now):
            rate(engine, config, period, now=now)
            rated.append(period)
            if _rollups_missing(engine, config, period, now):
                log.info("rollups of %s not stored: usage changed during the rating; the next run tries again",
                         period)
    return rated


def _rollups_missing(engine: Engine, config: Config, period: Period, now: datetime) -> bool:
    """Whether a rating of every account over ``period`` at ``now`` would
    store a rollup that is not there (:func:`keep_rollups`)."""
    with engine.connect() as conn:
        for tz, ids, base, filter_accounts in groups(config, period, None, int(now.timestamp())):
            plan = _plan(config, metered(config), ids)
            # a rating stores the variants' rollups when it rates them for enough accounts
            to_keep = kept(config, plan.listed + (plan.variants if len(plan.variant_accounts) >= IN_LIST_MAX
                                                  else []), base)
            if filter_accounts or not to_keep:
                continue
            keys = [rollup_key(config, p, period, tz, base) for p in to_keep]
            if set(keys) - set(rollups.valid(conn, keys, base["p1"])):
                return True
    return False
