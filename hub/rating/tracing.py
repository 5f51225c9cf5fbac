"""Traceability (``hub trace``): the usage records behind one line, each
with what it adds to the line's quantity.

Reads the records with the rating's own per-record query
(:func:`hub.rating.sql.product_sql`), so the contributions of a line's
records add up to its quantity exactly. Knows the store's records and the
catalog; knows nothing of prices or rollups.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from hub.config.model import Config
from hub.periods import Period
from hub.pricing import to_decimal
from hub.rating.charge import fmt
from hub.rating.connection import index_pays
from hub.rating.keys import aggregation as meter_aggregation
from hub.rating.sql import pieces_of, product_params, product_sql


@dataclass(frozen=True)
class TracedRecord:
    """A usage record behind a charge, and what it adds to the charge.

    - ``seconds``: its seconds inside the period (a running record's to the
      period's end, or to now while the period is open);
    - ``billed_seconds``: for a time-weighted meter, ``seconds`` rounded up
      to the product's granularity plus ``topup``, the minimum top-up
      (0 for the other meters);
    - ``counted``: whether it is part of the line's quantity: a sum meter
      counts the records that start in the period, max and latest the one
      record they pick, unique the first record of each resource;
    - ``contribution``: what it adds to the quantity, in the meter's unit
      (unit-seconds for a time-weighted meter, before the product's ``per``):
      the contributions of a line's records add up to its quantity exactly.
    """

    source: str
    record_id: str
    resource_id: str
    start: datetime
    end: datetime | None
    quantity: Decimal
    seconds: int
    billed_seconds: int
    topup: int
    counted: bool
    contribution: Fraction

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source, "record_id": self.record_id, "resource_id": self.resource_id,
            "start": self.start.isoformat().replace("+00:00", "Z"),
            "end": None if self.end is None else self.end.isoformat().replace("+00:00", "Z"),
            "quantity": fmt(self.quantity), "seconds": self.seconds, "billed_seconds": self.billed_seconds,
            "topup": self.topup, "counted": self.counted, "contribution": fmt(to_decimal(self.contribution)),
        }


def _utc(epoch: int | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc)


def trace(engine: Engine, config: Config, period: Period, account: str, product_name: str,
          resource_id: str | None = None, now: datetime | None = None) -> list[TracedRecord]:
    """The usage records behind ``account``'s charge for ``product_name`` in
    ``period`` (of one resource with ``resource_id``), in start order.

    :raises KeyError: for an unknown product.
    :raises ValueError: for a flat product, which no usage record makes.
    """
    product = config.catalog.product(product_name)
    if product.is_flat or product.meter is None:
        raise ValueError(f"{product_name!r} is a flat plan: no usage record makes its charge")
    aggregation = meter_aggregation(config, product)
    acc = config.accounts.get(account)
    tz = ZoneInfo(acc.timezone if acc else config.hub.timezone)
    p0, p1 = period.epoch_bounds(tz)
    now_s = int((now or datetime.now(timezone.utc)).timestamp())
    params = {"p0": p0, "p1": p1, "run_end": min(now_s, p1), "accounts": [account], "resource": resource_id,
              **product_params(product, period, tz)}
    out = []
    with engine.connect() as conn:
        by_account = index_pays(conn, [account])
        sql = product_sql(aggregation, config.catalog.itemized(account, product), per_record=True,
                          one_resource=resource_id is not None, after_pieces=pieces_of(params), by_account=by_account)
        for row in conn.execute(sql, params).mappings():
            quantity = Decimal(row["quantity"])
            billed = topup = 0
            if aggregation == "time_weighted":
                topup = int(row["topup"])
                billed = int(row["inside"]) + topup
                counted, contribution = billed > 0, Fraction(quantity) * billed
            elif aggregation == "sum":
                counted = row["start_s"] >= p0
                contribution = Fraction(quantity) if counted else Fraction(0)
            else:  # unique: one per resource; max and latest: the record they pick
                counted = row["rank"] == 1
                contribution = Fraction(0) if not counted else Fraction(1) if aggregation == "unique" \
                    else Fraction(quantity)
            out.append(TracedRecord(row["source"], row["record_id"], row["resource_id"], _utc(row["start_s"]),
                                    _utc(row["end_s"]), quantity, int(row["secs"]),
                                    billed, topup, counted, contribution))
    return sorted(out, key=lambda r: (r.start, r.source, r.record_id))
